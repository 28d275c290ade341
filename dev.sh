#!/usr/bin/env bash
# Entry points for working on onprem.gpu_server from a checkout.
#
#   ./dev.sh main            set up, build/boot the lab, converge both host profiles, summary
#   ./dev.sh test [STAGE..]  the test suite (default: every stage of the default CI set;
#                            ./dev.sh test labextended runs the extended set)
#   ./dev.sh setup           host packages + pinned virtualenv only
#   ./dev.sh bench           converge timings (stock / pipelining / mitogen) into docs/measurements
#
# Switches (environment):
#   GPU_SERVER_MITOGEN=1|0   use the mitogen strategy (default: on for lab VM work, off elsewhere)
#   LAB_KEEP=1               leave lab VMs running at the end (faster re-runs)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
CACHE="$ROOT/.cache"
PY=python3.11
command -v "$PY" >/dev/null 2>&1 || PY=python3

# The default set: the stages that need no VM, one after another (the lab image builds beside them), then
# two lanes side by side, each on its own VM (run_default).
SERIAL_STAGES=(lint build container)
# bmc, unit and sanity need no VM: they run at the end of the lanes, so that the lanes start sooner (the serial
# stages take longer than the lab image's build).
LAB_LANE=(lab labnetworks bmc unit)
CHECKS_LANE=(profiles labchecks sanity)
DEFAULT_STAGES=("${SERIAL_STAGES[@]}" "${LAB_LANE[@]}" "${CHECKS_LANE[@]}")
# Not in the default set (CI): run with ./dev.sh test labextended.
EXTENDED_STAGES=(labextended)
HOST_PACKAGES=(
  python3 python3-venv python3-pip git rsync ca-certificates openssh-client
  qemu-system-x86 qemu-utils debootstrap fdisk e2fsprogs dosfstools
  docker.io iproute2 procps
  python3-libvirt openssl
  # tests/unit/plugins/module_utils/backup: restic backs up, checks and restores for real
  restic
  # llama-cpp-python built from its source when ../shared/wheels lacks its wheel (lab/llm/wheelhouse.sh)
  cmake g++
)

log() { printf '\n==> %s\n' "$*"; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

setup_host_packages() {
  local missing=()
  for pkg in "${HOST_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || die "missing host packages (run as root or install them): ${missing[*]}"
  log "installing host packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

setup_venv() {
  local stamp="$VENV/.requirements.sha256" want
  want="$(cat requirements.txt requirements-lock.txt | sha256sum | cut -d' ' -f1)"
  if [ -x "$VENV/bin/ansible-playbook" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  log "creating virtualenv $VENV (pinned toolchain)"
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r requirements.txt -c requirements-lock.txt
  echo "$want" >"$stamp"
}

setup_collection_link() {
  # The checkout is the collection: expose it as ansible_collections/onprem/gpu_server.
  local link="$CACHE/collections/ansible_collections/onprem/gpu_server"
  mkdir -p "$(dirname "$link")"
  [ -L "$link" ] || ln -sfn ../../../.. "$link"
}

setup_sanity_bootstrap() {
  # ansible-test fetches a pip bootstrap script from a host this network cannot reach;
  # it uses a cached copy first, so place an offline stand-in there.
  local ver
  ver="$("$VENV/bin/python" - <<'EOF'
import re, ansible_test, pathlib
src = (pathlib.Path(ansible_test.__file__).parent / "_internal/python_requirements.py").read_text()
print(re.search(r"pip='([0-9.]+)'", src).group(1))
EOF
)"
  mkdir -p "$HOME/.ansible/test/cache"
  install -m 0644 lab/tools/get_pip_offline.py "$HOME/.ansible/test/cache/get_pip_${ver//./_}.py"
}

setup() {
  setup_host_packages
  setup_venv
  setup_collection_link
  setup_sanity_bootstrap
  export PATH="$VENV/bin:$PATH"
}

mitogen_env() {
  # One switch: mitogen is an optional speed-up, never required.
  local want="${GPU_SERVER_MITOGEN:-$1}"
  if [ "$want" = "1" ]; then
    local dir
    dir="$("$VENV/bin/python" -c 'import ansible_mitogen, os; print(os.path.dirname(ansible_mitogen.__file__))')"
    export ANSIBLE_STRATEGY_PLUGINS="$dir/plugins/strategy" ANSIBLE_STRATEGY=mitogen_linear
  else
    unset ANSIBLE_STRATEGY_PLUGINS ANSIBLE_STRATEGY
  fi
}

# ---------------------------------------------------------------- test stages
stage_lint() {
  # ansible-lint and Molecule install this collection into ~/.ansible/collections and then prefer that copy;
  # they do not replace one of the same version, so a copy from an older checkout would be linted instead.
  rm -rf "$HOME/.ansible/collections/ansible_collections/onprem/gpu_server"
  ruff check plugins tests lab molecule
  mypy plugins
  yamllint -s .
  ansible-lint
}

stage_unit() {
  # promtool and amtool from Debian's packages judge the alert rules (tests/unit/roles/prometheus).
  lab/tools/prometheus-tools.sh
  pytest -q tests/unit
}

stage_sanity() {
  # Sanity runs on what the collection ships: the built artefact, unpacked
  # (lab tooling, Molecule scenarios and unit tests are not part of it).
  # ansible-test ignores content below hidden directories, so not under .cache/.
  local out tree rc=0
  out="$(mktemp -d "${TMPDIR:-/tmp}/onprem-gpu_server-sanity.XXXXXX")"
  tree="$out/ansible_collections/onprem/gpu_server"
  mkdir -p "$tree"
  ansible-galaxy collection build --force --output-path "$out" . >/dev/null
  tar -xzf "$out"/onprem-gpu_server-*.tar.gz -C "$tree"
  rm -f "$tree/FILES.json"
  (cd "$tree" && ansible-test sanity --venv --requirements --python 3.11 --color no) || rc=$?
  rm -rf "$out"
  return "$rc"
}

stage_build() {
  local out="$CACHE/build"
  rm -rf "$out"
  mkdir -p "$out"
  ansible-galaxy collection build --force --output-path "$out" .
  ansible-galaxy collection install --offline --force -p "$out/installed" "$out"/onprem-gpu_server-*.tar.gz
  (cd "$out" && ANSIBLE_COLLECTIONS_PATH="$out/installed:$VENV/lib/python3.11/site-packages" \
    ansible-doc -t role -l onprem.gpu_server | grep -q '^onprem.gpu_server.base')
  echo "built and installed: $(ls "$out"/onprem-gpu_server-*.tar.gz)"
}

stage_container() {
  lab/container/docker-engine.sh start
  lab/container/build-image.sh
  # The llama.cpp server's wheels for the LLM serving tests (offline install in the container).
  lab/llm/wheelhouse.sh
  mitogen_env 0
  molecule test -s container
}

stage_lab() {
  # The trading profile on a fresh VM: check, converge, idempotence, a reboot, verify.
  python3 lab/vm/labvm.py build
  mitogen_env 1
  molecule test -s lab
}

stage_profiles() {
  # The README's main job for the workstation: converge, then converge again with changed=0. The trading
  # profile's converge and second converge (changed=0) are the lab stage's converge and idempotence steps,
  # on the same playbook. The VM stays up for the labchecks stage.
  LAB_KEEP=1 profiles_converge ai_workstation
}

lab_proof() {
  # One tests/lab playbook against a lab inventory (default: inventories/lab/hosts.yml), timed.
  local start=$SECONDS inventory="${2:-inventories/lab/hosts.yml}"
  log "proof tests/lab/$1.yml"
  # profile_tasks: each task's time and the slowest ones at the end, for the CI time budget.
  if ! ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_tasks ansible-playbook -i "$inventory" "tests/lab/$1.yml"; then
    lab_consoles
    log "proof $1 FAILED after $((SECONDS - start)) s"
    return 1
  fi
  log "proof $1 passed in $((SECONDS - start)) s"
}

lab_consoles() {
  # What the lab VMs printed last on their serial consoles: the only view of a guest that SSH cannot reach.
  local f
  for f in "$CACHE"/lab/run/*/console.log; do
    # Running VMs only (labvm.py removes qemu.pid when it stops one).
    [ -s "$f" ] && [ -e "$(dirname "$f")/qemu.pid" ] || continue
    log "last lines of $f"
    tail -n 40 "$f" | tr -d '\r' | sed 's/\x1b\[[0-9;]*m//g'
  done
}

stage_labchecks() {
  # Playbooks that prove behaviour on the lab VMs beyond a converge (tests/lab/*.yml). Plain SSH where a proof
  # cuts and reopens connections on purpose (firewall lockout, network commit-confirm): mitogen does not
  # survive that.
  python3 lab/vm/labvm.py build
  python3 lab/vm/labvm.py start workstation
  mitogen_env 0
  lab_proof firewall
  lab_proof sshd
  lab_proof fail2ban
  # Plain SSH too: after the firewall proof, mitogen lost its connection across the reboot in the
  # RoCE proof ("ContextService ... refcount was 0") although the VM was up in 40 s.
  lab_proof roce
  # The storage proof needs blank data disks: the trading host on a fresh second VM (new overlay and disks),
  # so the Molecule scenario can keep the first. Mitogen for its module plays; its reboot play picks plain
  # SSH itself. The workstation VM stays up: the replication proof replicates the trading host's classes to it.
  python3 lab/vm/labvm.py stop proofs
  python3 lab/vm/labvm.py start proofs
  mitogen_env 1
  lab_proof storage inventories/lab/proofs.yml
  lab_proof lifecycle_kill inventories/lab/proofs.yml
  lab_proof replication inventories/lab/proofs.yml
  if [ "${LAB_KEEP:-0}" != "1" ]; then
    python3 lab/vm/labvm.py stop proofs
    python3 lab/vm/labvm.py stop workstation
  fi
}

stage_labnetworks() {
  # VLAN bridges with traffic and the network commit-confirm on a fresh trading VM (after the lab stage, whose
  # Molecule scenario leaves none running). Plain SSH: the proof cuts and reopens connections.
  python3 lab/vm/labvm.py build
  python3 lab/vm/labvm.py stop trading
  python3 lab/vm/labvm.py start trading
  mitogen_env 0
  lab_proof networks
  if [ "${LAB_KEEP:-0}" != "1" ]; then
    python3 lab/vm/labvm.py stop trading
  fi
}

stage_bmc() {
  # The bmc role and the rebuild playbook against sushy-tools' Redfish emulators on loopback (lab/redfish/);
  # no VM.
  pytest -q -p no:cacheprovider tests/bmc
}

stage_labextended() {
  # The extended set (not in the default CI run; see README.md): proofs that cost several minutes of
  # reboots, initramfs rebuilds or compiles under emulation each.
  python3 lab/vm/labvm.py build
  python3 lab/vm/labvm.py start workstation
  mitogen_env 1
  lab_proof nic
  # Debian's 535 driver userspace, Docker and the merged daemon.json: about 22 min for the first converge.
  lab_proof gpu_stack
  # The driver's DKMS build against the lab kernel's headers, at native speed in a container, then the
  # module it built loaded into the lab VM's running kernel.
  lab/container/docker-engine.sh start
  lab/container/build-image.sh
  mitogen_env 0
  molecule test -s gpu_dkms
  mitogen_env 1
  lab_proof gpu_dkms_load
  # Both start from a fresh workstation VM and cut and reopen connections or reboot: plain SSH.
  mitogen_env 0
  python3 lab/vm/labvm.py stop workstation
  python3 lab/vm/labvm.py start workstation
  lab_proof netplan
  python3 lab/vm/labvm.py stop workstation
  python3 lab/vm/labvm.py start workstation --smp 4
  lab_proof nic_irq
  python3 lab/vm/labvm.py stop workstation
  mitogen_env 1
  # The snapshot proof needs pool 'lake' and its datasets: the storage proof builds them on a fresh VM.
  python3 lab/vm/labvm.py stop trading
  python3 lab/vm/labvm.py start trading
  lab_proof storage
  lab_proof snapshots
  if [ "${LAB_KEEP:-0}" != "1" ]; then
    python3 lab/vm/labvm.py stop --all
  fi
}

# ---------------------------------------------------------------- main job
converge_profile() {
  # $1 playbook, $2 log file; prints the recap and returns the number of changed tasks via stdout file
  local playbook="$1" logf="$2"
  ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_tasks ansible-playbook -i inventories/lab/hosts.yml "$playbook" | tee "$logf"
}

changed_total() {
  # Sum changed= over the PLAY RECAP lines of a log.
  sed -n '/PLAY RECAP/,$p' "$1" | grep -o 'changed=[0-9]*' | awk -F= '{s += $2} END {print s + 0}'
}

converge_twice() {
  # $1 profile name: converge, converge again, and check that the second run changed nothing.
  local name="$1" pb="playbooks/$1.yml" first second
  log "converge $pb (first run)"
  converge_profile "$pb" "$CACHE/logs/$name.1.log" || return 1
  log "converge $pb (second run: must report changed=0)"
  converge_profile "$pb" "$CACHE/logs/$name.2.log" || return 1
  first="$(changed_total "$CACHE/logs/$name.1.log")"
  second="$(changed_total "$CACHE/logs/$name.2.log")"
  echo "profile $name: first run changed=$first, second run changed=$second" >>"$CACHE/logs/profiles.summary"
  [ "$second" = "0" ] || { echo "NOT IDEMPOTENT: $pb changed=$second on the second run" >&2; return 1; }
}

profiles_converge() {
  # Converge the named profiles (default: both), each on its own VM, at the same time: under emulation each
  # guest keeps about one core busy, and the machine has two.
  local names=("$@") name rc=0 vm pids=()
  [ ${#names[@]} -gt 0 ] || names=(trading_server ai_workstation)
  python3 lab/vm/labvm.py build
  mitogen_env 1
  mkdir -p "$CACHE/logs"
  : >"$CACHE/logs/profiles.summary"
  for name in "${names[@]}"; do
    case "$name" in trading_server) vm=trading ;; ai_workstation) vm=workstation ;; *) die "unknown profile $name" ;; esac
    python3 lab/vm/labvm.py start "$vm"
    if [ "$name" = ai_workstation ]; then
      # The lab workstation serves a tiny model (inventories/lab): llama.cpp's wheels on the controller, the model
      # where the inventory says its models dataset is.
      lab/llm/wheelhouse.sh
      ansible-playbook -i inventories/lab/hosts.yml lab/llm/seed-models.yml
    fi
  done
  if [ ${#names[@]} -eq 1 ]; then
    converge_twice "${names[0]}" || rc=1
  else
    for name in "${names[@]}"; do
      converge_twice "$name" > >(sed -u "s/^/[$name] /") 2>&1 &
      pids+=($!)
    done
    for vm in "${pids[@]}"; do wait "$vm" || rc=1; done
  fi
  while IFS= read -r line; do SUMMARY+=("$line"); done <"$CACHE/logs/profiles.summary"
  if [ "${LAB_KEEP:-0}" != "1" ]; then
    python3 lab/vm/labvm.py stop --all
  fi
  return "$rc"
}

disk_free() {
  # Free space on the filesystem of the checkout: the lab's images and disks live under .cache.
  df -h --output=avail "$ROOT" | tail -n 1 | tr -d ' '
}

# Stage results go to a file (one line each), so that stages run in background lanes report too.
RESULTS=""

run_stage() {
  # $1 stage; runs it in a subshell with -e, appends PASS/FAIL with its time to $RESULTS (print_summary turns a
  # FAIL into the exit status). It returns 0 so that no caller needs "|| true": bash ignores -e in every command
  # of an || list, functions and subshells included, and a failed step inside a stage would then go unnoticed.
  local stage="$1" start=$SECONDS rc
  declare -F "stage_$stage" >/dev/null || die "unknown stage '$stage' (known: ${DEFAULT_STAGES[*]} ${EXTENDED_STAGES[*]})"
  log "stage $stage"
  set +e
  ( set -e; "stage_$stage" ) 2>&1 | tee "$CACHE/logs/stage-$stage.log"
  rc=${PIPESTATUS[0]}
  set -e
  if [ "$rc" -eq 0 ]; then
    echo "PASS $stage ($((SECONDS - start)) s, $(disk_free) free)" >>"$RESULTS"
  else
    echo "FAIL $stage ($((SECONDS - start)) s, exit $rc, $(disk_free) free)" >>"$RESULTS"
    failure_digest "$CACHE/logs/stage-$stage.log" >"$CACHE/logs/stage-$stage.failure"
  fi
}

failure_digest() {
  # The few lines that say why a stage failed, for the end of the run's output (a CI log is often read from its
  # tail): the Ansible task that failed last before each failed proof (or before the end) with its message, and
  # pytest's short summary. Proofs fail tasks on purpose before they pass, so only the last failure counts.
  sed 's/\x1b\[[0-9;]*m//g' "$1" | awk '
    function flush() { if (block != "") printf "%s", block; block = "" }
    /^TASK \[/ { task = $0; n = 0 }
    /^(fatal|failed): \[/ { block = task "\n"; n = 12 }
    n > 0 { block = block $0 "\n"; n--; next }
    /^==> proof .* FAILED/ { flush(); print; printed = 1; next }
    /^NOT IDEMPOTENT|^(FAILED|ERROR) tests\/|^ERROR: / { print }
    END { if (!printed) flush() }
  ' | tail -n 40
}

run_lane() {
  # $1 lane name, then its stages: run in order, output prefixed with the lane's name; a failed stage does not
  # stop the lane's later stages (as in a sequential run).
  local lane="$1" stage
  shift
  for stage in "$@"; do
    run_stage "$stage"
  done > >(sed -u "s/^/[$lane] /") 2>&1
}

run_default() {
  # The default set, arranged for a 2-core machine. The lab image (debootstrap, the ZFS DKMS build, two boots)
  # builds in the background while the stages that need no VM run. Then the VM stages run as two lanes, each on
  # its own VM: under emulation a busy guest keeps about one core busy, so two guests use both.
  local image_log="$CACHE/logs/image-build.log" image_start=$SECONDS image_pid lane_start pids=() pid stage
  mkdir -p "$CACHE/logs"
  log "lab image: building in the background (log: $image_log)"
  python3 lab/vm/labvm.py build >"$image_log" 2>&1 &
  image_pid=$!
  for stage in "${SERIAL_STAGES[@]}"; do
    run_stage "$stage"
  done
  if wait "$image_pid"; then
    echo "PASS lab image ($((SECONDS - image_start)) s, in the background from the start)" >>"$RESULTS"
  else
    echo "FAIL lab image ($((SECONDS - image_start)) s)" >>"$RESULTS"
    cat "$image_log"
  fi
  tail -n 3 "$image_log"
  lane_start=$SECONDS
  log "lanes: [lab] the trading profile, then the VLAN proof, on VM 'trading', then the BMC and unit tests; [checks] the workstation profile and the other lab proofs, then sanity"
  run_lane lab "${LAB_LANE[@]}" &
  pids+=($!)
  run_lane checks "${CHECKS_LANE[@]}" &
  pids+=($!)
  for pid in "${pids[@]}"; do wait "$pid" || true; done
  echo "     lanes together: $((SECONDS - lane_start)) s" >>"$RESULTS"
}

print_summary() {
  local passed failed
  passed="$(grep -c '^PASS' "$RESULTS" || true)"
  failed="$(grep -c '^FAIL' "$RESULTS" || true)"
  for f in "$CACHE"/logs/stage-*.failure; do
    [ -s "$f" ] || continue
    log "why stage $(basename "$f" .failure | sed 's/^stage-//') failed (from $CACHE/logs/$(basename "$f" .failure).log)"
    sed 's/^/  /' "$f"
  done
  log "summary"
  sed 's/^/  /' "$RESULTS"
  [ ${#SUMMARY[@]} -eq 0 ] || printf '  %s
' "${SUMMARY[@]}"
  [ -s "$CACHE/logs/profiles.summary" ] && sed 's/^/  /' "$CACHE/logs/profiles.summary"
  echo "  total: $((SECONDS - RUN_START)) s"
  echo "stages: $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}

SUMMARY=()
cmd="${1:-}"
shift || true
case "$cmd" in
  setup) setup ;;
  test)
    RUN_START=$SECONDS
    setup
    mkdir -p "$CACHE/logs"
    RESULTS="$CACHE/logs/stages.results"
    : >"$RESULTS"
    rm -f "$CACHE"/logs/stage-*.failure
    : >"$CACHE/logs/profiles.summary"
    if [ $# -gt 0 ]; then
      for stage in "$@"; do run_stage "$stage"; done
    else
      run_default
    fi
    print_summary
    ;;
  main)
    setup
    start=$SECONDS
    set +e; profiles_converge; rc=$?; set -e
    log "summary"
    [ ${#SUMMARY[@]} -eq 0 ] || printf '  %s\n' "${SUMMARY[@]}"
    echo "  lab: $(python3 lab/vm/labvm.py status 2>&1 | tr '\n' ' ')"
    echo "  main job took $((SECONDS - start)) s, exit $rc"
    exit $rc
    ;;
  bench) setup; exec "$VENV/bin/python" lab/tools/bench_converge.py "$@" ;;
  *) sed -n '2,13p' "$0"; exit 2 ;;
esac
