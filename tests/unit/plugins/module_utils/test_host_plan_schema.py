"""Structural validation of host plans: the two spec machines pass, broken plans are named."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.schema import problems, validate

EXAMPLES = Path(__file__).resolve().parents[4] / "inventories" / "examples"
XC740XD = EXAMPLES / "xc740xd" / "host_vars" / "xc740xd" / "host_plan.yml"
RTX4090 = EXAMPLES / "rtx4090" / "host_vars" / "rtx4090" / "host_plan.yml"


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())["host_plan"]


@pytest.mark.parametrize("path", [XC740XD, RTX4090], ids=["xc740xd", "rtx4090"])
def test_spec_inventories_are_well_formed(path: Path) -> None:
    assert validate(load(path)) == []


def _set(keys: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(plan: dict[str, Any]) -> None:
        node: Any = plan
        parts = keys.split(".")
        for key in parts[:-1]:
            node = node[int(key)] if isinstance(node, list) else node[key]
        last = parts[-1]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


def _del(keys: str) -> Callable[[dict[str, Any]], None]:
    def mutate(plan: dict[str, Any]) -> None:
        node: Any = plan
        parts = keys.split(".")
        for key in parts[:-1]:
            node = node[int(key)] if isinstance(node, list) else node[key]
        del node[parts[-1]]

    return mutate


# (id, mutation, the variable path the error must name, a fragment of the message)
INVALID: list[tuple[str, Callable[[dict[str, Any]], None], str, str]] = [
    ("profile-missing", _del("profile"), "host_plan.profile", "is required"),
    ("profile-unknown", _set("profile", "gaming_rig"), "host_plan.profile", "is not one of"),
    ("top-unknown-key", _set("hardwre", {}), "host_plan.hardwre", "unknown key"),
    ("hardware-missing", _del("hardware"), "host_plan.hardware", "is required"),
    ("hardware-not-mapping", _set("hardware", [1, 2]), "host_plan.hardware", "expected a mapping"),
    ("cpu-missing", _del("hardware.cpu"), "host_plan.hardware.cpu", "is required"),
    ("cpu-model-missing", _del("hardware.cpu.model"), "host_plan.hardware.cpu.model", "is required"),
    ("cpu-sockets-str", _set("hardware.cpu.sockets", "two"), "host_plan.hardware.cpu.sockets", "expected int"),
    ("cpu-sockets-zero", _set("hardware.cpu.sockets", 0), "host_plan.hardware.cpu.sockets", "below the minimum"),
    ("cpu-sockets-bool", _set("hardware.cpu.sockets", True), "host_plan.hardware.cpu.sockets", "expected int"),
    (
        "cpu-cores-float",
        _set("hardware.cpu.cores_per_socket", 26.5),
        "host_plan.hardware.cpu.cores_per_socket",
        "expected int",
    ),
    (
        "cpu-threads-huge",
        _set("hardware.cpu.threads_per_core", 64),
        "host_plan.hardware.cpu.threads_per_core",
        "above the maximum",
    ),
    (
        "cpu-typo",
        _set("hardware.cpu.core_per_socket", 26),
        "host_plan.hardware.cpu.core_per_socket",
        "did you mean 'cores_per_socket'",
    ),
    ("cpu-tdp-negative", _set("hardware.cpu.tdp_w", -5), "host_plan.hardware.cpu.tdp_w", "below the minimum"),
    ("numa-missing", _del("hardware.numa_nodes"), "host_plan.hardware.numa_nodes", "is required"),
    ("numa-empty", _set("hardware.numa_nodes", []), "host_plan.hardware.numa_nodes", "at least 1"),
    (
        "numa-cpus-junk",
        _set("hardware.numa_nodes.0.cpus", "zero-25"),
        "host_plan.hardware.numa_nodes[0].cpus",
        "expected a CPU list",
    ),
    (
        "numa-cpus-backwards",
        _set("hardware.numa_nodes.1.cpus", "51-26"),
        "host_plan.hardware.numa_nodes[1].cpus",
        "runs backwards",
    ),
    (
        "numa-cpus-int",
        _set("hardware.numa_nodes.0.cpus", 25),
        "host_plan.hardware.numa_nodes[0].cpus",
        "expected a CPU list",
    ),
    ("numa-id-missing", _del("hardware.numa_nodes.0.id"), "host_plan.hardware.numa_nodes[0].id", "is required"),
    ("memory-missing", _del("hardware.memory"), "host_plan.hardware.memory", "is required"),
    (
        "memory-total-str",
        _set("hardware.memory.total_gb", "320GB"),
        "host_plan.hardware.memory.total_gb",
        "expected number",
    ),
    (
        "memory-dimm-count-missing",
        _del("hardware.memory.dimms.0.count"),
        "host_plan.hardware.memory.dimms[0].count",
        "is required",
    ),
    (
        "memory-dimms-not-list",
        _set("hardware.memory.dimms", {"size_gb": 8}),
        "host_plan.hardware.memory.dimms",
        "expected a list",
    ),
    (
        "gpu-vram-str",
        _set("hardware.gpus.gpu1.vram_gb", "20GB"),
        "host_plan.hardware.gpus.gpu1.vram_gb",
        "expected number",
    ),
    (
        "gpu-vram-zero",
        _set("hardware.gpus.gpu2.vram_gb", 0),
        "host_plan.hardware.gpus.gpu2.vram_gb",
        "below the minimum",
    ),
    (
        "gpu-pci-bad",
        _set("hardware.gpus.gpu1.pci_address", "3b:00.0"),
        "host_plan.hardware.gpus.gpu1.pci_address",
        "not a PCI address",
    ),
    (
        "gpu-pci-missing",
        _del("hardware.gpus.gpu3.pci_address"),
        "host_plan.hardware.gpus.gpu3.pci_address",
        "is required",
    ),
    (
        "gpu-function-bad",
        _set("hardware.gpus.gpu4.functions", ["0000:d8:00.0", "d8:00.1"]),
        "host_plan.hardware.gpus.gpu4.functions[1]",
        "not a PCI address",
    ),
    (
        "gpu-function-dup",
        _set("hardware.gpus.gpu4.functions", ["0000:d8:00.0", "0000:d8:00.0"]),
        "host_plan.hardware.gpus.gpu4.functions[1]",
        "more than once",
    ),
    (
        "gpu-width-odd",
        _set("hardware.gpus.gpu1.pcie_width", 12),
        "host_plan.hardware.gpus.gpu1.pcie_width",
        "is not one of",
    ),
    ("gpu-name-bad", _set("hardware.gpus.GPU 5", {}), "host_plan.hardware.gpus.GPU 5", "names must be"),
    (
        "gpu-unknown-key",
        _set("hardware.gpus.gpu1.cuda_cores", 6144),
        "host_plan.hardware.gpus.gpu1.cuda_cores",
        "unknown key",
    ),
    ("disk-id-missing", _del("hardware.disks.lake1.id"), "host_plan.hardware.disks.lake1.id", "is required"),
    (
        "disk-size-str",
        _set("hardware.disks.lake2.size_bytes", "18TB"),
        "host_plan.hardware.disks.lake2.size_bytes",
        "expected int",
    ),
    (
        "disk-kind-unknown",
        _set("hardware.disks.os_a.kind", "floppy"),
        "host_plan.hardware.disks.os_a.kind",
        "is not one of",
    ),
    (
        "disk-actuators-3",
        _set("hardware.disks.lake3.actuators", 3),
        "host_plan.hardware.disks.lake3.actuators",
        "above the maximum",
    ),
    (
        "nic-speed-missing",
        _del("hardware.nics.x540_1.speed_gbps"),
        "host_plan.hardware.nics.x540_1.speed_gbps",
        "is required",
    ),
    ("nic-rdma-str", _set("hardware.nics.x540_1.rdma", "yes"), "host_plan.hardware.nics.x540_1.rdma", "expected bool"),
    ("psu-empty", _set("hardware.power.psus", []), "host_plan.hardware.power.psus", "at least 1"),
    (
        "psu-watts-str",
        _set("hardware.power.psus.0.watts", "1600W"),
        "host_plan.hardware.power.psus[0].watts",
        "expected number",
    ),
    ("ups-watts-missing", _del("hardware.power.ups.watts"), "host_plan.hardware.power.ups.watts", "is required"),
    (
        "circuit-amps-missing",
        _del("hardware.power.circuit.amps"),
        "host_plan.hardware.power.circuit.amps",
        "is required",
    ),
    (
        "reserve-cores-str",
        _set("intent.host_reserve.cores", "four"),
        "host_plan.intent.host_reserve.cores",
        "expected int",
    ),
    (
        "zfs-layout-unknown",
        _set("intent.zfs.pools.lake.layout", "raidz4"),
        "host_plan.intent.zfs.pools.lake.layout",
        "is not one of",
    ),
    (
        "zfs-disk-dangling",
        _set("intent.zfs.pools.lake.disks", ["lake1", "lake9"]),
        "host_plan.intent.zfs.pools.lake.disks[1]",
        "'lake9' is not a disk in host_plan.hardware.disks",
    ),
    (
        "zfs-disk-twice",
        _set("intent.zfs.pools.lake.disks", ["lake1", "lake1"]),
        "host_plan.intent.zfs.pools.lake.disks[1]",
        "more than once",
    ),
    (
        "zfs-ashift-missing",
        _del("intent.zfs.pools.lake.ashift"),
        "host_plan.intent.zfs.pools.lake.ashift",
        "is required",
    ),
    (
        "zfs-ashift-big",
        _set("intent.zfs.pools.lake.ashift", 20),
        "host_plan.intent.zfs.pools.lake.ashift",
        "above the maximum",
    ),
    (
        "zfs-properties-list",
        _set("intent.zfs.pools.lake.properties", ["lz4"]),
        "host_plan.intent.zfs.pools.lake.properties",
        "expected a mapping",
    ),
    (
        "md-level-unknown",
        _set("intent.md_arrays.tier0.level", 4),
        "host_plan.intent.md_arrays.tier0.level",
        "is not one of",
    ),
    (
        "md-one-member",
        _set("intent.md_arrays.tier0.members", ["os_a"]),
        "host_plan.intent.md_arrays.tier0.members",
        "at least 2",
    ),
    (
        "md-member-dangling",
        _set("intent.md_arrays.tier0.members", ["os_a", "os_c"]),
        "host_plan.intent.md_arrays.tier0.members[1]",
        "'os_c' is not a disk",
    ),
    (
        "landing-disk-dangling",
        _set("intent.landing_zone.disk", "nvme9"),
        "host_plan.intent.landing_zone.disk",
        "is not a disk",
    ),
    (
        "landing-hot-zero",
        _set("intent.landing_zone.lifecycle.hot_hours", 0),
        "host_plan.intent.landing_zone.lifecycle.hot_hours",
        "below the minimum",
    ),
    (
        "vlan-zero",
        _set("intent.networks.trading.vlan", 0),
        "host_plan.intent.networks.trading.vlan",
        "below the minimum",
    ),
    (
        "vlan-4095",
        _set("intent.networks.research.vlan", 4095),
        "host_plan.intent.networks.research.vlan",
        "above the maximum",
    ),
    ("vm-vcpus-missing", _del("intent.vms.research.vcpus"), "host_plan.intent.vms.research.vcpus", "is required"),
    (
        "vm-memory-str",
        _set("intent.vms.research.memory_gb", "32G"),
        "host_plan.intent.vms.research.memory_gb",
        "expected number",
    ),
    (
        "vm-cores-junk",
        _set("intent.vms.research.cores", "44..51"),
        "host_plan.intent.vms.research.cores",
        "expected a CPU list",
    ),
    (
        "vm-gpu-dangling",
        _set("intent.vms.research.gpus", ["gpu5"]),
        "host_plan.intent.vms.research.gpus[0]",
        "'gpu5' is not a GPU in host_plan.hardware.gpus",
    ),
    (
        "vm-gpu-twice",
        _set("intent.vms.llm-inference.gpus", ["gpu2", "gpu2"]),
        "host_plan.intent.vms.llm-inference.gpus[1]",
        "more than once",
    ),
    (
        "vm-network-dangling",
        _set("intent.vms.research.network", "dmz"),
        "host_plan.intent.vms.research.network",
        "'dmz' is not a network",
    ),
    (
        "vm-disk-no-kind",
        _set("intent.vms.research.disks", [{"size_gb": 10}]),
        "host_plan.intent.vms.research.disks[0]",
        "exactly one of",
    ),
    (
        "vm-disk-passthrough-dangling",
        _set("intent.vms.data-pipeline.disks", [{"passthrough": "p4800"}]),
        "host_plan.intent.vms.data-pipeline.disks[0].passthrough",
        "'p4800' is not a disk",
    ),
    (
        "vm-disk-dataset-dangling",
        _set("intent.vms.research.disks", [{"dataset": "tank"}]),
        "host_plan.intent.vms.research.disks[0].dataset",
        "'tank' is not a ZFS pool",
    ),
    (
        "vm-unknown-key",
        _set("intent.vms.research.cpu_pinning", "44-51"),
        "host_plan.intent.vms.research.cpu_pinning",
        "unknown key",
    ),
    (
        "llm-precision-unknown",
        _set("intent.llm_deployments.fast-qa.precision", "fp4"),
        "host_plan.intent.llm_deployments.fast-qa.precision",
        "is not one of",
    ),
    (
        "llm-no-gpus",
        _set("intent.llm_deployments.fast-qa.gpus", []),
        "host_plan.intent.llm_deployments.fast-qa.gpus",
        "at least 1",
    ),
    (
        "llm-gpu-dangling",
        _set("intent.llm_deployments.fast-qa.gpus", ["gpu0"]),
        "host_plan.intent.llm_deployments.fast-qa.gpus[0]",
        "'gpu0' is not a GPU",
    ),
    (
        "llm-params-missing",
        _del("intent.llm_deployments.fast-qa.params_b"),
        "host_plan.intent.llm_deployments.fast-qa.params_b",
        "is required",
    ),
    (
        "retention-unknown",
        _set("intent.data_classes.ohlcv.retention", "forever"),
        "host_plan.intent.data_classes.ohlcv.retention",
        "is not one of",
    ),
]


def test_the_invalid_table_is_large_enough() -> None:
    assert len(INVALID) >= 50


@pytest.mark.parametrize(("mutate", "path", "fragment"), [case[1:] for case in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_plans_are_rejected_naming_the_variable(
    mutate: Callable[[dict[str, Any]], None], path: str, fragment: str
) -> None:
    plan = copy.deepcopy(load(XC740XD))
    mutate(plan)
    errors = validate(plan)
    matching = [e for e in errors if e.startswith(f"{path}:")]
    assert matching, f"no error names {path}; got {errors}"
    assert any(fragment in e for e in matching), f"{fragment!r} not in {matching}"
    assert not any("Traceback" in e for e in errors)


def test_plan_that_is_not_a_mapping() -> None:
    assert validate(["not", "a", "plan"]) == ["host_plan: expected a mapping, got list ['not', 'a', 'plan']"]


# Values YAML reads as numbers but no plan can be computed with: .nan and .inf.
NON_FINITE: list[tuple[str, str, float, str]] = [
    ("total-nan", "hardware.memory.total_gb", math.nan, "host_plan.hardware.memory.total_gb"),
    ("total-inf", "hardware.memory.total_gb", math.inf, "host_plan.hardware.memory.total_gb"),
    ("vm-memory-nan", "intent.vms.research.memory_gb", math.nan, "host_plan.intent.vms.research.memory_gb"),
    ("dimm-size-inf", "hardware.memory.dimms.1.size_gb", math.inf, "host_plan.hardware.memory.dimms[1].size_gb"),
    ("vcpus-neg-inf", "intent.vms.research.vcpus", -math.inf, "host_plan.intent.vms.research.vcpus"),
    ("psu-nan", "hardware.power.psus.0.watts", math.nan, "host_plan.hardware.power.psus[0].watts"),
]


@pytest.mark.parametrize(("keys", "value", "path"), [c[1:] for c in NON_FINITE], ids=[c[0] for c in NON_FINITE])
def test_non_finite_numbers_are_rejected_with_the_users_path_and_value(keys: str, value: float, path: str) -> None:
    plan = copy.deepcopy(load(XC740XD))
    _set(keys, value)(plan)
    found = problems(plan)
    assert [(p.path, p.blocking) for p in found] == [(path, False)]
    spelled = ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
    assert found[0].message in (f"expected a finite number, got {spelled}", f"expected a finite integer, got {spelled}")


def test_non_finite_numbers_as_yaml_writes_them() -> None:
    text = XC740XD.read_text().replace("total_gb: 320", "total_gb: .nan", 1)
    errors = validate(yaml.safe_load(text)["host_plan"])
    assert errors == ["host_plan.hardware.memory.total_gb: expected a finite number, got .nan"]


@pytest.mark.parametrize(
    ("keys", "value", "path", "message"),
    [
        ("hardware.cpu.sockets", "two", "host_plan.hardware.cpu.sockets", "expected integer, got string 'two'"),
        (
            "hardware.memory.total_gb",
            [320, 64],
            "host_plan.hardware.memory.total_gb",
            "expected number, got list [320, 64]",
        ),
        ("hardware.bmc", {"a": 1}, "host_plan.hardware.bmc", "expected string, got mapping {'a': 1}"),
        (
            "intent.networks",
            ["a", "b"],
            "host_plan.intent.networks",
            "expected a mapping of names, got list ['a', 'b']",
        ),
        ("hardware.nvlink", "no", "host_plan.hardware.nvlink", "expected boolean, got string 'no'"),
        (
            "intent.zfs.pools.lake.ashift",
            "twelve, and a long explanation of why twelve is the right ashift for these drives",
            "host_plan.intent.zfs.pools.lake.ashift",
            "expected integer, got string 'twelve, and a long explanation of why twelve is the right \u2026",
        ),
    ],
)
def test_messages_use_plain_type_names_for_ansible_tagged_values(
    keys: str, value: Any, path: str, message: str
) -> None:
    tags = pytest.importorskip("ansible._internal._datatag._tags")
    plan = copy.deepcopy(load(XC740XD))
    # ansible-core 2.19 passes inventory values as its own subclasses of str/list/dict.
    _set(keys, tags.Origin(path="/inventory/host_plan.yml", line_num=1).tag(value))(plan)
    errors = [e for e in validate(plan) if e.startswith(f"{path}:")]
    assert errors == [f"{path}: {message}"]
    assert "_Ansible" not in errors[0]


def test_a_plan_that_is_not_a_mapping_is_quoted_short() -> None:
    tags = pytest.importorskip("ansible._internal._datatag._tags")
    wrapped = tags.Origin(path="/inventory/host_plan.yml").tag([load(XC740XD)])
    (error,) = validate(wrapped)
    assert error.startswith("host_plan: expected a mapping, got list [{'profile': 'trading_server'")
    assert error.endswith("\u2026") and len(error) < 120


def test_claim_kind_and_offload_are_checked() -> None:
    plan = copy.deepcopy(load(XC740XD))
    plan["intent"]["llm_deployments"]["fast-qa"].update(claimed_tok_s_kind="batched", offload="disk")
    errors = validate(plan)
    assert (
        "host_plan.intent.llm_deployments.fast-qa.claimed_tok_s_kind: 'batched' is not one of per_stream, aggregate"
        in errors
    )
    assert "host_plan.intent.llm_deployments.fast-qa.offload: 'disk' is not one of none, cpu" in errors
