"""gpu_facts module: nvidia-smi faked with recorded outputs, sysfs and /proc from fixture trees.

Sources of every nvidia-smi file: tests/unit/fixtures/nvidia-smi/SOURCES.md; of the sysfs trees:
tests/unit/fixtures/sysfs/SOURCES.md.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest
import yaml
from ansible.module_utils import basic
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.testing import patch_module_args

from ansible_collections.onprem.gpu_server.plugins.module_utils.gpu import nvsmi
from ansible_collections.onprem.gpu_server.plugins.modules import gpu_facts

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
NVSMI = FIXTURES / "nvidia-smi"
_spec = importlib.util.spec_from_file_location("sysfs_tree", FIXTURES / "sysfs" / "sysfs_tree.py")
assert _spec and _spec.loader
sysfs_tree = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sysfs_tree)

QUERY = tuple(nvsmi.query_argv())
NO_DRIVER = (9, (NVSMI / "constructed_nvidia-smi_no-driver.txt").read_text(), "")


def recorded(name, rc=0):
    return rc, (NVSMI / name).read_text(), ""


class FakeHost:
    """Answers nvidia-smi argv (after the timeout wrapper) from a table; records every call."""

    def __init__(self, monkeypatch, answers, installed=True):
        self.answers = answers
        self.calls: list[list[str]] = []

        def get_bin_path(module, name, required=False, opt_dirs=None):
            if name == "timeout":
                return "/usr/bin/timeout"
            return f"/usr/bin/{Path(name).name}" if installed else None

        def run_command(module, argv, **kwargs):
            assert kwargs["environ_update"]["LC_ALL"] == "C"
            assert argv[:3] == ["/usr/bin/timeout", "--kill-after=5", str(module.params["timeout"])]
            assert argv[3] == "/usr/bin/nvidia-smi"
            args = tuple(argv[4:])
            self.calls.append(list(args))
            if args not in self.answers:
                raise AssertionError(f"unexpected nvidia-smi call {args}")
            return self.answers[args]

        monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", get_bin_path)
        monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)


def run(capsys, args=None):
    with patch_module_args(dict(args or {}, _ansible_check_mode=True)), pytest.raises(SystemExit):
        gpu_facts.main()
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_facts, "ROOT", str(tmp_path))
    return tmp_path


def x570(root, driver=None):
    """The X570 tree (GTX 1080 Ti at 0b:00.0, GT 710 at 0c:00.0) with ``driver`` bound to both GPUs."""
    shutil.copytree(FIXTURES / "sysfs" / "x570-2x-gtx1080ti-gt710", root, symlinks=True, dirs_exist_ok=True)
    if driver:
        for address in ("0000:0b:00.0", "0000:0c:00.0"):
            sysfs_tree.add_function(root, address, {}, driver=driver)


def proc_version(root, fixture):
    (root / "proc/driver/nvidia").mkdir(parents=True)
    shutil.copy(NVSMI / fixture, root / "proc/driver/nvidia/version")


def test_h100_mig_host(root, monkeypatch, capsys):
    # The H100's function as sysfs would show it (bus id, IDs and NUMA node from the recordings).
    sysfs_tree.add_function(root, "0000:00:09.0", {"class": "0x030200", "vendor": "0x10de", "device": "0x2330",
                                                   "numa_node": "0"}, driver="nvidia")
    host = FakeHost(monkeypatch, {
        QUERY: recorded("h100-sxm5-80gb-mig_query-gpu-all-fields_idle.csv.txt"),
        (): recorded("h100-sxm5-80gb-mig_default-table_idle.txt"),
        ("-L",): recorded("h100-sxm5-80gb-mig_L.txt"),
        ("topo", "-m"): recorded("h100-sxm5-80gb-mig_topo-m.txt"),
    })
    result = run(capsys)
    gpu = result["ansible_facts"]["gpu"]
    assert result["changed"] is False
    assert (gpu["status"], gpu["message"], gpu["fix"]) == ("ok", None, None)
    assert (gpu["driver_version"], gpu["cuda_version"]) == ("590.48.01", "13.1")
    assert gpu["driver_loaded"] is True and gpu["kernel_module_version"] is None and gpu["versions_match"] is None
    [h100] = gpu["gpus"]
    assert h100["name"] == "NVIDIA H100 80GB HBM3" and h100["bus_id"] == "0000:00:09.0"
    assert (h100["memory_total_mib"], h100["power_limit_w"], h100["compute_cap"]) == (81559, 700.0, "9.0")
    assert (h100["mig_mode"], h100["ecc_mode"], h100["numa_node"], h100["source"]) == (True, True, 0, "nvidia-smi")
    assert [d["profile"] for d in h100["mig_devices"]] == ["3g.40gb", "2g.20gb", "1g.10gb", "1g.10gb"]
    assert gpu["mig"]["enabled"] is True and [d["index"] for d in gpu["mig"]["devices"]] == [0, 1, 2, 3]
    assert gpu["topology"]["devices"] == ["GPU0"]
    assert gpu["topology"]["affinity"]["GPU0"]["cpu_affinity"] == "0-19"
    assert host.calls == [list(QUERY), [], ["-L"], ["topo", "-m"]]


def test_h200_without_mig_or_topology_skips_those_calls(root, monkeypatch, capsys):
    proc_version(root, "constructed_proc-driver-nvidia-version_580.173.02.txt")
    host = FakeHost(monkeypatch, {
        QUERY: recorded("h200-sxm_query-gpu-all-fields_idle.csv.txt"),
        (): (0, "", ""),  # a banner without versions: cuda_version stays unknown
    })
    gpu = run(capsys, {"gather_topology": False})["ansible_facts"]["gpu"]
    assert gpu["gpus"][0]["memory_total_mib"] == 143771 and gpu["gpus"][0]["bus_id"] == "0000:83:00.0"
    assert gpu["topology"] is None and gpu["mig"] == {"enabled": False, "devices": []}
    assert gpu["cuda_version"] is None
    # The constructed /proc file says 580.173.02, the recorded CSV 590.48.01: reported, not raised.
    assert (gpu["kernel_module_version"], gpu["versions_match"]) == ("580.173.02", False)
    assert host.calls == [list(QUERY), []]


def test_rtx4090_x8_from_q_when_the_csv_query_is_rejected(root, monkeypatch, capsys):
    # The rejection text is constructed (an older driver refusing a field); the -q output is recorded.
    rejected = (2, 'Field "compute_cap" is not a valid field to query.\n', "")
    FakeHost(monkeypatch, {QUERY: rejected, ("-q",): recorded("rtx4090-x8_q.txt")})
    warned: list[str] = []
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda module, text: warned.append(text))
    gpu = run(capsys, {"gather_topology": False})["ansible_facts"]["gpu"]
    assert gpu["status"] == "ok" and (gpu["driver_version"], gpu["cuda_version"]) == ("550.127.05", "12.4")
    assert len(gpu["gpus"]) == 8
    assert {g["name"] for g in gpu["gpus"]} == {"NVIDIA GeForce RTX 4090"}
    assert {g["memory_total_mib"] for g in gpu["gpus"]} == {24564}
    assert [g["bus_id"] for g in gpu["gpus"]] == [
        "0000:01:00.0", "0000:25:00.0", "0000:41:00.0", "0000:61:00.0",
        "0000:81:00.0", "0000:a1:00.0", "0000:c1:00.0", "0000:e1:00.0"]
    assert gpu["gpus"][0]["uuid"] == "GPU-8ee5f1e0-e705-aac5-6d6e-b97ad59601ef"
    assert "compute_cap" in gpu["warnings"][0] and warned == gpu["warnings"]


def test_no_driver_lists_the_gpus_from_sysfs(root, monkeypatch, capsys):
    x570(root, driver="nouveau")
    host = FakeHost(monkeypatch, {QUERY: NO_DRIVER})
    gpu = run(capsys)["ansible_facts"]["gpu"]
    assert gpu["status"] == "no_driver" and gpu["driver_loaded"] is False
    assert gpu["message"].startswith("NVIDIA-SMI has failed because it couldn't communicate")
    assert "modprobe nvidia" in gpu["fix"]
    assert [(g["bus_id"], g["pci_id"], g["driver"], g["source"]) for g in gpu["gpus"]] == [
        ("0000:0b:00.0", "10de:1b06", "nouveau", "sysfs"), ("0000:0c:00.0", "10de:128b", "nouveau", "sysfs")]
    assert gpu["gpus"][0]["functions"] == ["0000:0b:00.0", "0000:0b:00.1"]
    assert gpu["topology"] is None and host.calls == [list(QUERY)]


def test_no_driver_on_a_vfio_host_needs_no_fix(root, monkeypatch, capsys):
    x570(root, driver="vfio-pci")
    FakeHost(monkeypatch, {QUERY: NO_DRIVER})
    gpu = run(capsys)["ansible_facts"]["gpu"]
    assert gpu["status"] == "no_driver" and {g["driver"] for g in gpu["gpus"]} == {"vfio-pci"}
    assert gpu["fix"].startswith("none needed if intended")


def test_version_mismatch(root, monkeypatch, capsys):
    x570(root, driver="nvidia")
    proc_version(root, "constructed_proc-driver-nvidia-version_580.173.02.txt")
    # 18 is NVML's code for this error; the classification reads the text, not the code.
    FakeHost(monkeypatch, {QUERY: recorded("constructed_nvidia-smi_version-mismatch.txt", rc=18)})
    gpu = run(capsys)["ansible_facts"]["gpu"]
    assert gpu["status"] == "version_mismatch" and gpu["driver_loaded"] is True
    assert (gpu["driver_version"], gpu["kernel_module_version"]) == ("580.178", "580.173.02")
    assert gpu["versions_match"] is False
    assert gpu["kernel_module_open"] is False
    assert gpu["fix"].startswith("reboot to load the new kernel module")
    assert [g["driver"] for g in gpu["gpus"]] == ["nvidia", "nvidia"]


def test_no_device(root, monkeypatch, capsys):
    x570(root, driver="vfio-pci")
    proc_version(root, "constructed_proc-driver-nvidia-version_open_565.57.01.txt")
    FakeHost(monkeypatch, {QUERY: recorded("constructed_nvidia-smi_no-devices.txt", rc=6)})
    gpu = run(capsys)["ansible_facts"]["gpu"]
    assert gpu["status"] == "no_device" and gpu["kernel_module_open"] is True
    assert "vfio-pci" in gpu["fix"] and len(gpu["gpus"]) == 2


def test_nvidia_smi_missing_on_the_lab_vm(root, monkeypatch, capsys):
    shutil.copytree(FIXTURES / "sysfs" / "labvm-q35", root, symlinks=True, dirs_exist_ok=True)
    host = FakeHost(monkeypatch, {}, installed=False)
    gpu = run(capsys)["ansible_facts"]["gpu"]
    assert (gpu["status"], gpu["gpus"], gpu["fix"], gpu["driver_loaded"]) == ("no_nvidia_smi", [], None, False)
    assert gpu["message"] == "nvidia-smi is not in PATH (no NVIDIA GPU on the PCI bus)"
    assert host.calls == []


def test_nvidia_smi_missing_with_gpus_present(root, monkeypatch, capsys):
    x570(root)
    FakeHost(monkeypatch, {}, installed=False)
    gpu = run(capsys, {"nvidia_smi_path": "/opt/nvidia/bin/nvidia-smi"})["ansible_facts"]["gpu"]
    assert gpu["status"] == "no_nvidia_smi" and gpu["message"].startswith("/opt/nvidia/bin/nvidia-smi does not exist")
    assert [g["driver"] for g in gpu["gpus"]] == [None, None] and "nvidia-utils" in gpu["fix"]


def test_hung_nvidia_smi_is_an_error_fact(root, monkeypatch, capsys):
    FakeHost(monkeypatch, {QUERY: (124, "", "")})
    gpu = run(capsys, {"timeout": 7})["ansible_facts"]["gpu"]
    assert gpu["status"] == "error" and "timed out" in gpu["message"] and "Xid" in gpu["fix"]


@pytest.mark.parametrize("timeout", [-1, -30])
def test_negative_timeout_is_refused_before_nvidia_smi_runs(root, monkeypatch, capsys, timeout):
    host = FakeHost(monkeypatch, {QUERY: NO_DRIVER})
    result = run(capsys, {"timeout": timeout})
    assert result["failed"] is True
    assert result["msg"] == (f"timeout: {timeout} is negative: give the seconds each nvidia-smi run may take "
                             "(0 disables the limit; a GPU that has fallen off the bus can make nvidia-smi hang)")
    assert host.calls == []
    assert "ansible_facts" not in result


def test_documentation_matches_argument_spec_examples_and_facts(root, monkeypatch, capsys):
    doc = yaml.safe_load(gpu_facts.DOCUMENTATION)
    spec = gpu_facts.ARGUMENT_SPEC
    assert set(doc["options"]) == set(spec)
    for name, option in doc["options"].items():
        for key in ("type", "default", "choices", "required", "elements"):
            assert option.get(key) == spec[name].get(key), (name, key)
    tasks = yaml.safe_load(gpu_facts.EXAMPLES)
    module_tasks = [t for t in tasks if "onprem.gpu_server.gpu_facts" in t]
    assert len(module_tasks) == 3
    for task in module_tasks:
        assert ArgumentSpecValidator(spec).validate(task["onprem.gpu_server.gpu_facts"] or {}).error_messages == []
    assert all("ansible_facts.gpu." in json.dumps(t) for t in tasks if t not in module_tasks)
    documented = set(yaml.safe_load(gpu_facts.RETURN)["ansible_facts"]["contains"]["gpu"]["contains"])
    FakeHost(monkeypatch, {QUERY: NO_DRIVER})
    assert set(run(capsys)["ansible_facts"]["gpu"]) == documented


def test_recorded_h200_run_gives_what_the_module_returned_on_that_gpu(root, monkeypatch, capsys):
    # tests/device/run.sh on a lent H200 (Firecracker guest, open kernel module 580.159.04): the raw outputs
    # were recorded first, then gpu_facts ran against the same GPU and its facts were kept as JSON. Replaying
    # the raw outputs must give exactly those facts. sysfs was not recorded: the function is rebuilt from
    # what the facts say of it (bound to nvidia, no NUMA node: the guest reports -1).
    prefix = "recorded-here_h200-firecracker"
    sysfs_tree.add_function(root, "0000:00:06.0", {"class": "0x030200", "vendor": "0x10de", "device": "0x2335",
                                                   "numa_node": "-1"}, driver="nvidia")
    proc_version(root, f"{prefix}_proc-driver-nvidia-version.txt")
    host = FakeHost(monkeypatch, {
        QUERY: recorded(f"{prefix}_query-gpu.csv.txt"),
        (): recorded(f"{prefix}_default-table.txt"),
        ("topo", "-m"): recorded(f"{prefix}_topo-m.txt"),
    })
    gpu = run(capsys)["ansible_facts"]["gpu"]
    live = json.loads((NVSMI / f"{prefix}_gpu_facts.json").read_text())
    assert gpu == live
    assert (live["status"], live["versions_match"], live["kernel_module_open"]) == ("ok", True, True)
    assert live["gpus"][0]["memory_total_mib"] == 143771 and live["gpus"][0]["pci_id"] == "10de:2335"
    assert host.calls == [list(QUERY), [], ["topo", "-m"]]
