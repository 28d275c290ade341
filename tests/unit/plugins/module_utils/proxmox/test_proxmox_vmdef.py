"""VM definitions from the XC740XD host plan, checked against the Proxmox VE API schema."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from ansible_collections.onprem.gpu_server.plugins.module_utils.proxmox.apischema import (
    QEMU_CONFIG_SET,
    check_parameters,
)
from ansible_collections.onprem.gpu_server.plugins.module_utils.proxmox.vmdef import (
    ProxmoxPlanError,
    mmio64_mib,
    vm_definitions,
)

UNIT = Path(__file__).resolve().parents[3]
REPO = UNIT.parents[1]
SCHEMA = json.loads((UNIT / "fixtures" / "proxmox" / "qemu-api-schema.json").read_text())
PLAN_FILE = REPO / "inventories" / "examples" / "xc740xd" / "host_vars" / "xc740xd" / "host_plan.yml"


@pytest.fixture
def plan():
    return yaml.safe_load(PLAN_FILE.read_text())["host_plan"]


@pytest.fixture
def defs(plan):
    return {d["name"]: d for d in vm_definitions(plan)}


def test_four_vms_in_plan_order(plan):
    result = vm_definitions(plan)
    assert [(d["name"], d["vmid"]) for d in result] == [
        ("trading-orchestrator", 101),
        ("data-pipeline", 102),
        ("llm-inference", 103),
        ("research", 104),
    ]


@pytest.mark.parametrize("name", ["trading-orchestrator", "data-pipeline", "llm-inference", "research"])
def test_every_definition_matches_the_api_schema(defs, name):
    params = defs[name]["params"]
    assert check_parameters(SCHEMA, params) == []
    update = {k: v for k, v in params.items() if k != "vmid"}
    assert check_parameters(SCHEMA, update, QEMU_CONFIG_SET) == []


def test_trading_orchestrator_exact(defs):
    params = defs["trading-orchestrator"]["params"]
    # cores 0-15 plus their hyper-thread siblings 52-67, all on node 0 where gpu1 hangs.
    assert params["affinity"] == "0-15,52-67"
    assert (params["sockets"], params["cores"], params["numa"]) == (1, 16, 1)
    assert params["numa0"] == "cpus=0-15,hostnodes=0,memory=65536,policy=bind"
    assert "numa1" not in params
    assert params["memory"] == "65536"
    assert params["balloon"] == 0
    assert params["hostpci0"] == "0000:3b:00,pcie=1"
    assert "hostpci1" not in params
    assert "args" not in params  # one GPU: OVMF's default window is enough
    assert (params["machine"], params["bios"], params["cpu"]) == ("q35", "ovmf", "host")
    assert params["efidisk0"] == "tier0:1,efitype=4m,pre-enrolled-keys=0"
    assert params["scsi0"] == "tier0:500,iothread=1,discard=on,ssd=1"
    assert params["net0"] == "virtio,bridge=vmbr0,tag=10"


def test_llm_inference_gpus_and_mmio_window(defs):
    params = defs["llm-inference"]["params"]
    assert [params[f"hostpci{i}"] for i in range(3)] == ["0000:5e:00,pcie=1", "0000:af:00,pcie=1", "0000:d8:00,pcie=1"]
    # 3 x (32768 MiB BAR for 20 GiB VRAM + 256 MiB) = 99072 MiB -> 131072 MiB window.
    assert params["args"] == "-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=131072"
    assert params["affinity"] == "28-43,80-95"
    assert params["numa0"] == "cpus=0-15,hostnodes=1,memory=131072,policy=bind"
    assert params["net0"] == "virtio,bridge=vmbr0,tag=20"
    assert any("gpu2" in w and "node 0" in w for w in defs["llm-inference"]["warnings"])


def test_data_pipeline_spans_two_nodes(defs):
    params = defs["data-pipeline"]["params"]
    # cores 16-25 are node 0, 26-27 node 1: memory is split 10:2 and bound to each node.
    assert params["numa0"] == "cpus=0-9,hostnodes=0,memory=81920,policy=bind"
    assert params["numa1"] == "cpus=10-11,hostnodes=1,memory=16384,policy=bind"
    assert "balloon" not in params
    assert params["scsi0"].startswith("/dev/disk/by-id/nvme-INTEL_SSDPECKE064T7_LANDING,backup=0")
    assert any("span NUMA nodes" in w for w in defs["data-pipeline"]["warnings"])


def test_dataset_disk_is_a_note_not_a_parameter(defs):
    research = defs["research"]
    assert [k for k in research["params"] if k[:4] == "scsi" and k[4:].isdigit()] == ["scsi0"]
    assert any("dataset 'lake'" in n for n in research["notes"])


def test_defaults_are_marked_not_in_the_design(defs):
    notes = defs["trading-orchestrator"]["notes"]
    assert "bridge 'vmbr0' (not in the design)" in notes
    assert any("vmids numbered from 101" in n for n in notes)


def test_host_reserve_overcommit_is_a_warning(defs):
    # 52 pinned vCPUs + 4 reserved > 52 cores: the plan report fails on it; VM parameters do not depend on it.
    assert any(
        w.startswith("host_plan.intent.host_reserve.cores: VMs ask for 52") for w in defs["research"]["warnings"]
    )


def test_hugepages_when_the_plan_covers_the_memory(plan):
    plan["intent"]["vms"]["research"]["hugepages_gb"] = 32
    params = {d["name"]: d for d in vm_definitions(plan)}["research"]["params"]
    assert params["hugepages"] == "1024"
    assert params["balloon"] == 0
    assert check_parameters(SCHEMA, params) == []


def test_options_override_defaults(plan):
    result = vm_definitions(
        plan, {"vmids": {"research": 900}, "bridge": "vmbr1", "storage": {"tier0": "nvme-mirror"}, "vmid_base": 200}
    )
    research = result[-1]
    assert research["vmid"] == 900 and result[0]["vmid"] == 201
    assert research["params"]["net0"] == "virtio,bridge=vmbr1,tag=20"
    assert research["params"]["scsi0"].startswith("nvme-mirror:1000,")


def test_gpu_in_two_vms_names_the_variable(plan):
    plan["intent"]["vms"]["research"]["gpus"] = ["gpu1"]
    with pytest.raises(
        ProxmoxPlanError, match=r"host_plan\.intent\.vms\.research\.gpus: GPU 'gpu1' is already assigned"
    ):
        vm_definitions(plan)


def test_core_given_twice_names_the_variable(plan):
    plan["intent"]["vms"]["research"]["cores"] = "40-47"
    with pytest.raises(ProxmoxPlanError, match=r"host_plan\.intent\.vms\.research: core 4[0-3] is already given"):
        vm_definitions(plan)


def test_duplicate_vmid_names_the_variable(plan):
    with pytest.raises(ValueError, match="proxmox_guests_vmids: vmid 101 is given to both"):
        vm_definitions(plan, {"vmids": {"research": 101}})


def test_unknown_option_is_refused(plan):
    with pytest.raises(ValueError, match="unknown option"):
        vm_definitions(plan, {"brigde": "vmbr1"})


def test_no_vms_no_definitions(plan):
    bare = copy.deepcopy(plan)
    del bare["intent"]["vms"]
    assert vm_definitions(bare) == []


@pytest.mark.parametrize(
    ("vram", "expected"),
    [([20], 65536), ([20, 20], 131072), ([20, 20, 20], 131072), ([24, 24, 24, 24], 262144), ([80], 262144)],
)
def test_mmio_window(vram, expected):
    assert mmio64_mib(vram) == expected
