#!/usr/bin/env bash
# GPU check on a machine with a real NVIDIA GPU and no network (see tests/device/README.md).
# Records nvidia-smi's raw outputs exactly as gpu_facts asks for them, then runs gpu_facts and the
# nvidia_driver and cuda verification steps against the GPU. Everything lands in $OUT.
set -uo pipefail
: "${OUT:?OUT must name the output directory}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export LC_ALL=C LANG=C

RAW=/tmp/gpu-raw
rm -rf "$RAW"; mkdir -p "$RAW"
rec() { # rec FILE CMD...: the command's output, its exit code in FILE.rc
  "${@:2}" >"$RAW/$1" 2>&1; echo $? >"$RAW/$1.rc"
}
fields="$(python3 - "$ROOT" <<'PY'
import ast, pathlib, sys
src = pathlib.Path(sys.argv[1], "plugins/module_utils/gpu/nvsmi.py").read_text()
tree = ast.parse(src)
for node in tree.body:
    if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "QUERY_FIELDS":
        print(",".join(ast.literal_eval(node.value)))
PY
)"
{
  echo "uname: $(uname -r)"
  echo "query fields: $fields"
  cat /proc/driver/nvidia/version
} >"$RAW/host.txt" 2>&1
rec nvidia-smi.txt nvidia-smi
rec nvidia-smi_q.txt nvidia-smi -q
rec nvidia-smi_L.txt nvidia-smi -L
rec nvidia-smi_topo-m.txt nvidia-smi topo -m
rec nvidia-smi_query-gpu.csv nvidia-smi "--query-gpu=$fields" --format=csv,nounits
rec proc-driver-nvidia-version.txt cat /proc/driver/nvidia/version
tar -C "$RAW" -czf "$OUT/raw.tar.gz" .

# ansible-core from a wheel (no network there), the checkout as the collection.
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$ROOT"/.whl/*.whl || exit 1
export PYTHONPATH=/tmp/site PATH="/tmp/site/bin:$PATH"
mkdir -p /tmp/ac/ansible_collections/onprem
ln -sfn "$ROOT" /tmp/ac/ansible_collections/onprem/gpu_server
nvcc="$(command -v nvcc || ls /usr/local/cuda*/bin/nvcc 2>/dev/null | head -n 1)"
export DEVICE_CUDA_VERSION="$("$nvcc" --version | sed -n 's/.*release \([0-9.]*\),.*/\1/p')"
export DEVICE_DRIVER_BRANCH="$(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -n 1 | cut -d. -f1)"
if grep -q 'Open Kernel Module' /proc/driver/nvidia/version; then
  export DEVICE_KERNEL_MODULE=open
else
  export DEVICE_KERNEL_MODULE=proprietary
fi
echo "nvcc $nvcc ($DEVICE_CUDA_VERSION), driver branch $DEVICE_DRIVER_BRANCH, module $DEVICE_KERNEL_MODULE"
: >/tmp/empty-ansible.cfg
export LC_ALL=C.UTF-8 LANG=C.UTF-8
cd "$ROOT" && ANSIBLE_COLLECTIONS_PATH=/tmp/ac ANSIBLE_CONFIG=/tmp/empty-ansible.cfg ANSIBLE_LOCALHOST_WARNING=false \
  python3 -m ansible.cli.playbook -i localhost, tests/device/gpu_verify.yml -e "__cuda_nvcc=$nvcc" -e "ansible_python_interpreter=$(command -v python3)" -v "$@" 2>&1 | tee "$OUT/play.log"
exit "${PIPESTATUS[0]}"
