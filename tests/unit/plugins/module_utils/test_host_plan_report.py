"""The plan report over whole plans: the spec machines' contradictions are found, corrected plans pass."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.report import build_report

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
    # The spec's small-model figures are batched throughput per GPU ("Concurrent Users: 10-20+ per GPU (with
    # batching)"), so they are checked against the batched bound, not one stream's.
    (
        "host_plan.intent.llm_deployments.news-sentiment.claimed_tok_s",
        ("200 tok/s in aggregate", "batched bound of 178.8 tok/s", "10 streams", "checked as an aggregate claim"),
    ),
    (
        "host_plan.intent.llm_deployments.fast-qa.claimed_tok_s",
        ("250 tok/s in aggregate", "12.5 tok/s", "1 stream", "checked as an aggregate claim"),
    ),
    (
        "host_plan.intent.llm_deployments.strategy-codegen.claimed_tok_s",
        ("100 tok/s per stream", "memory-bandwidth bound of 13.5 tok/s", "checked as a per-stream claim"),
    ),
    ("host_plan.intent.llm_deployments.llama405b-2bit", ("does not fit in VRAM",)),
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


# The design runs both models with CPU offload ("Can run models larger than 96GB VRAM"): not fitting the GPUs
# is a warning that states the host-RAM bound, and the per-stream tok/s claims are checked against that bound.
RTX_ERRORS = [
    (
        "host_plan.intent.llm_deployments.llama70b-fp16.claimed_tok_s",
        ("40 tok/s per stream", "CPU-offload bound of 8.5 tok/s", "358.4 GB/s", "checked as a per-stream claim"),
    ),
    (
        "host_plan.intent.llm_deployments.llama405b-quant.claimed_tok_s",
        ("10 tok/s per stream", "CPU-offload bound of 3.4 tok/s"),
    ),
    ("host_plan.hardware.power.circuit", ("120 V 20 A", "1920 W")),
]
RTX_WARNINGS = [
    ("host_plan.intent.network.tcp_buffer_max_bytes", ("64x",)),
    ("host_plan.hardware.power.psus", ("without redundancy",)),
    ("host_plan.intent.md_arrays.models.claimed_read_gbs", ("29 GB/s", "31.5 GB/s")),
    (
        "host_plan.intent.llm_deployments.llama70b-fp16.offload",
        ("fits with CPU offload only", "24.0 GiB", "42.4 GB of layers stay in host RAM", "= 8.5 tok/s per stream"),
    ),
    (
        "host_plan.intent.llm_deployments.llama405b-quant.offload",
        ("fits with CPU offload only", "105.8 GB", "358.4 GB/s / 105.8 GB = 3.4 tok/s"),
    ),
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


def test_rtx4090_counts_and_offload_assumption(rtx4090: dict[str, Any]) -> None:
    assert (len(rtx4090["errors"]), len(rtx4090["warnings"])) == (3, 8)
    offload = next(w for w in rtx4090["warnings"] if w["path"].endswith("llama70b-fp16.offload"))
    assert offload["assumption"] == "host memory bandwidth 358.4 GB/s: 8 channels x 5600 MT/s x 8 B"
    figure = rtx4090["figures"]["llm"]["llama70b-fp16"]
    assert figure["fits"] is False and figure["fits_with_offload"] is True and figure["offload_gb"] == 42.4
    table = next(t for t in rtx4090["tables"] if t["title"] == "LLM deployments")
    assert table["rows"][0][7:] == ["with CPU offload", "40 (per stream)", "8.5"]


def test_without_offload_a_model_larger_than_the_gpus_is_an_error() -> None:
    plan = copy.deepcopy(load("rtx4090"))
    del plan["intent"]["llm_deployments"]["llama70b-fp16"]["offload"]
    report = build_report(plan)
    assert found(report["errors"], "host_plan.intent.llm_deployments.llama70b-fp16", "does not fit in VRAM", "24.0 GiB")
    assert found(
        report["errors"],
        "host_plan.intent.llm_deployments.llama70b-fp16.claimed_tok_s",
        "memory-bandwidth bound of 28.6 tok/s",
        "checked as a per-stream claim",
    )


def test_offload_that_does_not_fit_host_memory_is_an_error() -> None:
    plan = copy.deepcopy(load("rtx4090"))
    memory = plan["hardware"]["memory"]
    memory.update(total_gb=64, dimms=[{"size_gb": 8, "count": 8}])
    report = build_report(plan)
    assert found(
        report["errors"],
        "host_plan.intent.llm_deployments.llama405b-quant.offload",
        "does not fit even with CPU offload",
        "105.8 GB",
        "64 GiB",
    )


def test_offload_on_a_model_that_fits_is_a_note() -> None:
    plan = copy.deepcopy(load("rtx4090"))
    dep = plan["intent"]["llm_deployments"]["llama70b-fp16"]
    dep.update(precision="int4", claimed_tok_s=20)
    report = build_report(plan)
    assert found(report["notes"], "host_plan.intent.llm_deployments.llama70b-fp16.offload", "nothing is offloaded")
    assert not [e for e in report["errors"] if "llama70b-fp16" in e["path"]]


def test_an_aggregate_claim_within_the_batched_bound_passes() -> None:
    plan = corrected_xc740xd()
    dep = plan["intent"]["llm_deployments"]["news-sentiment"]
    dep.update(claimed_tok_s=150, claimed_tok_s_kind="aggregate")
    report = build_report(plan)
    assert report["ok"], report["errors"]
    assert report["figures"]["llm"]["news-sentiment"]["claim_kind"] == "aggregate"
    assert report["figures"]["llm"]["news-sentiment"]["claim_streams"] == 10
    # The same figure for one stream is far above what memory bandwidth allows.
    dep["claimed_tok_s_kind"] = "per_stream"
    assert found(
        build_report(plan)["errors"],
        "host_plan.intent.llm_deployments.news-sentiment.claimed_tok_s",
        "150 tok/s per stream",
        "23.8 tok/s",
    )


# A number the schema cannot use (YAML .nan / .inf): that value's error with the author's path and value, the
# checks that read it noted as not run, and every independent finding still reported.
NON_FINITE = [
    ("hardware.memory.total_gb", "nan", "host_plan.hardware.memory.total_gb", ".nan", ["memory_budget", "llm_fit"]),
    ("hardware.memory.total_gb", "inf", "host_plan.hardware.memory.total_gb", ".inf", ["memory_budget", "llm_fit"]),
    ("intent.vms.research.memory_gb", "nan", "host_plan.intent.vms.research.memory_gb", ".nan", ["memory_budget"]),
    ("hardware.power.ups.watts", "inf", "host_plan.hardware.power.ups.watts", ".inf", ["power_budget"]),
]


@pytest.mark.parametrize(("keys", "value", "path", "spelled", "skipped"), NON_FINITE)
def test_non_finite_value_is_named_and_other_findings_stay(
    keys: str, value: str, path: str, spelled: str, skipped: list[str]
) -> None:
    plan = copy.deepcopy(load("xc740xd"))
    node: Any = plan
    *parents, last = keys.split(".")
    for key in parents:
        node = node[key]
    node[last] = float(value)
    report = build_report(plan)
    schema = [e for e in report["errors"] if e["check"] == "schema"]
    assert schema == [{"path": path, "check": "schema", "message": f"expected a finite number, got {spelled}"}]
    text = " ".join(f["message"] for f in report["errors"] + report["warnings"] + report["notes"])
    assert "memory_gib" not in text and "installed_gib" not in text
    assert sorted(n["check"] for n in report["notes"] if n["message"].startswith("not checked: it reads")) == sorted(
        skipped
    )
    # Independent checks still report what the unchanged plan reports.
    assert found(report["errors"], "host_plan.intent.vms", "over-subscribed")
    assert found(report["errors"], "host_plan.intent.zfs.pools.lake.claimed_failures_tolerated", "survives 1")
    assert found(report["warnings"], "host_plan.hardware.gpus.gpu1.pcie_gen", "links at gen 3")
    if "memory_budget" not in skipped:
        assert found(report["errors"], "host_plan.intent.vms", "416 GiB > 320 GiB")
    if not path.startswith("host_plan.hardware.memory"):
        # The DIMM layout does not depend on what the VMs ask for.
        assert found(report["errors"], "host_plan.hardware.memory.dimms_populated", "16 modules", "12")
        assert found(report["warnings"], "host_plan.hardware.memory.dimms", "16 DIMMs on 12 channels")


def test_non_finite_vm_memory_is_shown_as_written() -> None:
    plan = copy.deepcopy(load("xc740xd"))
    plan["intent"]["vms"]["research"]["memory_gb"] = float("nan")
    report = build_report(plan)
    table = next(t for t in report["tables"] if t["title"] == "VMs and CPU pinning")
    assert table["rows"][3][4] == ".nan"


def test_a_wrong_type_still_stops_every_check() -> None:
    plan = copy.deepcopy(load("xc740xd"))
    plan["hardware"]["memory"]["total_gb"] = float("nan")
    plan["hardware"]["cpu"]["sockets"] = "two"
    report = build_report(plan)
    assert {e["check"] for e in report["errors"]} == {"schema"}
    assert len(report["errors"]) == 2 and report["tables"] == []


def test_picture_marks_cores_the_host_does_not_have(xc740xd: dict[str, Any]) -> None:
    assert xc740xd["picture"]["unplaced"] == [{"owner": "host", "count": 4, "cpus": []}]
    plan = copy.deepcopy(load("xc740xd"))
    plan["intent"]["vms"]["research"]["cores"] = "104-111"
    report = build_report(plan)
    assert {"owner": "research", "count": 8, "cpus": list(range(104, 112))} in report["picture"]["unplaced"]


def test_picture_has_the_budgets(xc740xd: dict[str, Any], rtx4090: dict[str, Any]) -> None:
    memory = xc740xd["picture"]["memory"]
    assert memory["installed_gib"] == 320 and sum(p["gib"] for p in memory["parts"]) == 416
    power = {bar["label"]: (round(bar["value"]), bar["limit"]) for bar in rtx4090["picture"]["power"]}
    assert power["circuit: continuous load"] == (2287, 1920)
    assert rtx4090["picture"]["host_cores"] == [0, 1, 2, 3]


def test_facts_comparison_is_skipped_for_a_non_finite_memory_size() -> None:
    plan = copy.deepcopy(BUILD_HOST_PLAN)
    plan["hardware"] = copy.deepcopy(plan["hardware"])
    plan["hardware"]["memory"]["total_gb"] = float("inf")
    report = build_report(plan, RECORDED_BUILD_HOST_FACTS)
    assert found(report["errors"], "host_plan.hardware.memory.total_gb", "expected a finite number, got .inf")
    assert found(report["notes"], "host_plan", "not checked: it reads host_plan.hardware.memory.total_gb")
    assert not any(t["title"] == "Plan vs host" for t in report["tables"])
    assert report["figures"]["cpu"]["logical_cpus"] == 2
