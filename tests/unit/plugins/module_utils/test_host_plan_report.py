"""The plan report over whole plans: the spec machines' contradictions are found, corrected plans pass."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from ansible_collections.onprem.gpu_server.plugins.module_utils.plan.report import build_report

REPO = Path(__file__).resolve().parents[4]
EXAMPLES = REPO / "inventories" / "examples"
LAB = REPO / "inventories" / "lab" / "host_vars"

# Recorded on the machine this collection was developed on (a 2-vCPU Debian 12 VM, virtio NIC, no
# by-id disks, no GPU) with the setup subset and the sysfs listing of playbooks/plan.yml. Not a lab VM.
RECORDED_BUILD_HOST_FACTS: dict[str, Any] = {
    "distribution": "Debian 12.11",
    "host_listing": {
        "disks_by_id": {},
        "nics": [
            {"driver": None, "mac": "02:42:a5:ca:df:46", "name": "docker0", "pci": None, "speed_mbps": -1},
            {
                "driver": "virtio_net",
                "mac": "02:fc:00:00:00:01",
                "name": "eth0",
                "pci": "0000:00:03.0",
                "speed_mbps": -1,
            },
            {"driver": None, "mac": "52:a3:05:7a:32:25", "name": "ifb0", "pci": None, "speed_mbps": None},
            {"driver": None, "mac": "7a:c1:81:fc:dc:bc", "name": "ifb1", "pci": None, "speed_mbps": None},
            {"driver": None, "mac": "00:00:00:00:00:00", "name": "lo", "pci": None, "speed_mbps": None},
        ],
        "numa_nodes": {"0": "0-1"},
        "pci": [
            {
                "address": "0000:00:00.0",
                "class": "0x060000",
                "device": "0x0d57",
                "driver": None,
                "numa_node": -1,
                "vendor": "0x8086",
            },
            {
                "address": "0000:00:01.0",
                "class": "0xffff00",
                "device": "0x1045",
                "driver": "virtio-pci",
                "numa_node": -1,
                "vendor": "0x1af4",
            },
            {
                "address": "0000:00:02.0",
                "class": "0x018000",
                "device": "0x1042",
                "driver": "virtio-pci",
                "numa_node": -1,
                "vendor": "0x1af4",
            },
            {
                "address": "0000:00:03.0",
                "class": "0x020000",
                "device": "0x1041",
                "driver": "virtio-pci",
                "numa_node": -1,
                "vendor": "0x1af4",
            },
            {
                "address": "0000:00:04.0",
                "class": "0xffff00",
                "device": "0x1053",
                "driver": "virtio-pci",
                "numa_node": -1,
                "vendor": "0x1af4",
            },
            {
                "address": "0000:00:05.0",
                "class": "0xffff00",
                "device": "0x1044",
                "driver": "virtio-pci",
                "numa_node": -1,
                "vendor": "0x1af4",
            },
        ],
    },
    "kernel": "6.18.44-fc-v595",
    "memtotal_mb": 24105,
    "processor_cores": 2,
    "processor_count": 1,
    "processor_threads_per_core": 1,
    "processor_vcpus": 2,
    "product_name": "NA",
}

BUILD_HOST_PLAN: dict[str, Any] = {
    "profile": "ai_workstation",
    "hardware": {
        "cpu": {"model": "AMD EPYC (virtual)", "sockets": 1, "cores_per_socket": 2, "threads_per_core": 1},
        "numa_nodes": [{"id": 0, "cpus": "0-1"}],
        "memory": {"total_gb": 24},
        "nics": {"eth": {"model": "virtio-net", "speed_gbps": 1, "ports": 1, "driver": "virtio_net"}},
    },
}


def load(host: str) -> dict[str, Any]:
    return yaml.safe_load((EXAMPLES / host / "host_vars" / host / "host_plan.yml").read_text())["host_plan"]


def found(findings: list[dict[str, Any]], path: str, *words: str) -> bool:
    return any(f["path"] == path and all(w in f["message"] for w in words) for f in findings)


@pytest.fixture(scope="module")
def xc740xd() -> dict[str, Any]:
    return build_report(load("xc740xd"))


@pytest.fixture(scope="module")
def rtx4090() -> dict[str, Any]:
    return build_report(load("rtx4090"))


XC_ERRORS = [
    ("host_plan.intent.vms", ("over-subscribed", "52 cores + host reserve 4 = 56 > 52")),
    ("host_plan.intent.host_reserve.cores", ("only 0 remain",)),
    ("host_plan.intent.vms", ("416 GiB > 320 GiB",)),
    ("host_plan.hardware.memory.dimms_populated", ("16 modules", "12")),
    ("host_plan.intent.zfs.pools.lake.claimed_failures_tolerated", ("survives 2", "survives 1")),
    ("host_plan.intent.llm_deployments.llama70b-fp16-tp4", ("does not fit", "20.0 GiB")),
    ("host_plan.intent.llm_deployments.llama70b-fp16-tp4.claimed_vram_gb", ("75 GB", "140.0 GB")),
    ("host_plan.intent.llm_deployments.llama405b-2bit", ("does not fit",)),
    ("host_plan.intent.llm_deployments.llama405b-2bit.claimed_vram_gb", ("80 GB", "101.2 GB")),
    ("host_plan.intent.llm_deployments.complex-analysis", ("does not fit", "20.0 GiB")),
    ("host_plan.intent.llm_deployments.news-sentiment.claimed_tok_s", ("200 tok/s", "23.8 tok/s")),
]
XC_WARNINGS = [
    ("host_plan.intent.vms.data-pipeline", ("span NUMA nodes",)),
    ("host_plan.intent.vms.llm-inference", ("gpu2", "node 0")),
    ("host_plan.hardware.memory.dimms", ("16 DIMMs on 12 channels",)),
    ("host_plan.intent.zfs.pools.lake.expected_usable_tb", ("108 TB expected", "102.2 TB", "93.0 TiB")),
    ("host_plan.intent.zfs.pools.lake.disks", ("16 LUNs of 9 TB", "survives 1 drive failure")),
    ("host_plan.intent.llm_deployments.complex-analysis.model", ("no 33B model",)),
    ("host_plan.intent.llm_deployments.llama70b-fp16-tp4.gpus", ("trading-orchestrator",)),
    ("host_plan.intent.landing_zone.disk", ("passed through to VM data-pipeline",)),
    ("host_plan.hardware.power.ups", ("81%",)),
    ("host_plan.hardware.gpus.gpu1.pcie_gen", ("links at gen 3",)),
]


@pytest.mark.parametrize(("path", "words"), XC_ERRORS)
def test_xc740xd_errors(xc740xd: dict[str, Any], path: str, words: tuple[str, ...]) -> None:
    assert found(xc740xd["errors"], path, *words), [e for e in xc740xd["errors"] if e["path"] == path]


@pytest.mark.parametrize(("path", "words"), XC_WARNINGS)
def test_xc740xd_warnings(xc740xd: dict[str, Any], path: str, words: tuple[str, ...]) -> None:
    assert found(xc740xd["warnings"], path, *words), [w for w in xc740xd["warnings"] if w["path"] == path]


def test_xc740xd_dual_actuator_finding_names_its_assumption(xc740xd: dict[str, Any]) -> None:
    error = next(e for e in xc740xd["errors"] if e["path"].endswith("claimed_failures_tolerated"))
    assert "two LUNs" in error["assumption"]
    assert xc740xd["figures"]["zfs"]["lake"]["as_luns"]["luns"] == 16
    assert xc740xd["figures"]["zfs"]["lake"]["usable_bytes"] == 102_226_529_878_016


def test_xc740xd_is_not_ok_and_has_figures(xc740xd: dict[str, Any]) -> None:
    assert xc740xd["ok"] is False
    assert xc740xd["figures"]["memory"]["demand_gib"] == 416
    assert xc740xd["figures"]["numa_pinning"]["requested_cores"] == 56
    assert {t["title"] for t in xc740xd["tables"]} >= {"VMs and CPU pinning", "LLM deployments", "ZFS pools"}


RTX_ERRORS = [
    ("host_plan.intent.llm_deployments.llama70b-fp16", ("does not fit", "24.0 GiB")),
    ("host_plan.intent.llm_deployments.llama70b-fp16.claimed_tok_s", ("40 tok/s", "28.6 tok/s")),
    ("host_plan.intent.llm_deployments.llama405b-quant", ("does not fit",)),
    ("host_plan.hardware.power.circuit", ("120 V 20 A", "1920 W")),
]
RTX_WARNINGS = [
    ("host_plan.intent.network.tcp_buffer_max_bytes", ("64x",)),
    ("host_plan.hardware.power.psus", ("without redundancy",)),
    ("host_plan.intent.md_arrays.models.claimed_read_gbs", ("29 GB/s", "31.5 GB/s")),
]


@pytest.mark.parametrize(("path", "words"), RTX_ERRORS)
def test_rtx4090_errors(rtx4090: dict[str, Any], path: str, words: tuple[str, ...]) -> None:
    assert found(rtx4090["errors"], path, *words), [e for e in rtx4090["errors"] if e["path"] == path]


@pytest.mark.parametrize(("path", "words"), RTX_WARNINGS)
def test_rtx4090_warnings(rtx4090: dict[str, Any], path: str, words: tuple[str, ...]) -> None:
    assert found(rtx4090["warnings"], path, *words)


def corrected_xc740xd() -> dict[str, Any]:
    plan = copy.deepcopy(load("xc740xd"))
    hw, intent = plan["hardware"], plan["intent"]
    hw["memory"]["dimms_populated"] = 16
    for name in [d for d in hw["disks"] if d.startswith("lake")]:
        hw["disks"][name].pop("actuators")
    intent["zfs"]["arc_max_gb"] = 32
    intent["zfs"]["pools"]["lake"]["expected_usable_tb"] = 102
    vms = intent["vms"]
    vms["trading-orchestrator"].update(vcpus=14, cores="2-15", memory_gb=48)
    vms["data-pipeline"].update(vcpus=10, cores="16-25", memory_gb=64)
    vms["llm-inference"].update(gpus=["gpu3", "gpu4"], memory_gb=96)
    intent["llm_deployments"] = {
        "news-sentiment": {
            "model": "Mistral 7B",
            "params_b": 7.3,
            "precision": "fp16",
            "gpus": ["gpu1"],
            "claimed_tok_s": 20,
        },
        "llama70b-int4": {
            "model": "LLaMA 3.1 70B",
            "params_b": 70,
            "precision": "int4",
            "gpus": ["gpu3", "gpu4"],
            "claimed_tok_s": 15,
        },
    }
    return plan


def test_corrected_xc740xd_passes() -> None:
    report = build_report(corrected_xc740xd())
    assert report["errors"] == []
    assert report["ok"] is True


def test_corrected_rtx4090_passes() -> None:
    plan = copy.deepcopy(load("rtx4090"))
    plan["hardware"]["power"]["circuit"] = {"volts": 240, "amps": 20}
    plan["intent"]["llm_deployments"] = {
        "llama70b-int4": {
            "model": "LLaMA 70B",
            "params_b": 70,
            "precision": "int4",
            "gpus": ["gpu1", "gpu2", "gpu3", "gpu4"],
            "claimed_tok_s": 20,
        },
    }
    report = build_report(plan)
    assert report["errors"] == [] and report["ok"] is True


def test_gpu_in_two_vms_is_an_error() -> None:
    plan = corrected_xc740xd()
    plan["intent"]["vms"]["research"]["gpus"] = ["gpu3"]
    report = build_report(plan)
    assert found(report["errors"], "host_plan.intent.vms.research.gpus", "gpu3", "already assigned")


def test_malformed_plan_gets_only_schema_errors() -> None:
    plan = copy.deepcopy(load("xc740xd"))
    plan["hardware"]["gpus"]["gpu1"]["vram_gb"] = "twenty"
    report = build_report(plan)
    assert report["ok"] is False
    assert [e["check"] for e in report["errors"]] == ["schema"]
    assert report["errors"][0]["path"] == "host_plan.hardware.gpus.gpu1.vram_gb"
    assert report["tables"] == [] and report["warnings"] == []


def test_not_a_mapping() -> None:
    report = build_report(None)
    assert report["ok"] is False and report["errors"][0]["check"] == "schema"


@pytest.mark.parametrize("host", ["lab-trading", "lab-workstation"])
def test_lab_plans_pass(host: str) -> None:
    plan = yaml.safe_load((LAB / host / "host_plan.yml").read_text())["host_plan"]
    report = build_report(plan)
    assert report["errors"] == [] and report["warnings"] == []


def test_recorded_facts_match_the_build_host_plan() -> None:
    report = build_report(BUILD_HOST_PLAN, RECORDED_BUILD_HOST_FACTS)
    assert report["ok"] is True, report["errors"]
    table = next(t for t in report["tables"] if t["title"] == "Plan vs host")
    assert ["memory MiB (MemTotal)", "24576", "24105", "ok"] in table["rows"]


def test_recorded_facts_against_a_wrong_plan() -> None:
    plan = copy.deepcopy(BUILD_HOST_PLAN)
    plan["hardware"]["cpu"]["cores_per_socket"] = 4
    plan["hardware"]["numa_nodes"] = [{"id": 0, "cpus": "0-3"}]
    plan["hardware"]["memory"]["total_gb"] = 64
    plan["hardware"]["nics"]["eth"]["driver"] = "ixgbe"
    plan["hardware"]["disks"] = {"d": {"id": "wwn-0x5000c500d0000001", "size_bytes": 10**12, "kind": "sas_hdd"}}
    plan["hardware"]["gpus"] = {
        "gpu1": {"model": "NVIDIA RTX 4000 Ada Generation", "vram_gb": 20, "pci_address": "0000:00:03.0"}
    }
    report = build_report(plan, RECORDED_BUILD_HOST_FACTS)
    errors = report["errors"]
    assert found(errors, "host_plan.hardware.cpu.cores_per_socket", "4 cores per socket", "reports 2")
    assert found(errors, "host_plan.hardware.numa_nodes", "node 0: 0-1")
    assert found(errors, "host_plan.hardware.memory.total_gb", "24105 MiB of 65536 MiB")
    assert found(errors, "host_plan.hardware.nics.eth.ports", "on ixgbe")
    assert found(errors, "host_plan.hardware.disks.d.id", "does not exist")
    assert found(errors, "host_plan.hardware.gpus", "1 GPU(s)", "shows 0")
    assert found(errors, "host_plan.hardware.gpus.gpu1.pci_address", "class 0x020000", "not a GPU")


def test_facts_that_cannot_be_read_are_an_error() -> None:
    report = build_report(BUILD_HOST_PLAN, ["not", "facts"])
    assert found(report["errors"], "host_plan", "could not be read")
