"""numa_pinning with the XC740XD VM plan."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from hypothesis import given, settings
from hypothesis import strategies as st
from plan_specs import XC740XD_GPUS, XC740XD_NUMA

from ansible_collections.onprem.gpu_server.plugins.filter.cpu_ranges import cpu_ranges
from ansible_collections.onprem.gpu_server.plugins.filter.numa_pinning import numa_pinning


def test_spec_plan_is_over_subscribed(xc740xd_vms):
    result = numa_pinning(xc740xd_vms, XC740XD_NUMA, 4, XC740XD_GPUS)
    assert not result["ok"]
    # 16 + 12 + 16 + 8 = 52 VM cores + 4 host cores = 56 > 52.
    assert result["requested_cores"] == 56
    assert result["total_cores"] == 52
    assert any("56 > 52 physical cores" in e for e in result["errors"])
    assert any(e.startswith("host_reserve: 4 cores requested but only 0 remain") for e in result["errors"])
    assert result["host"]["cores"] == ""


def test_spec_plan_placement_warnings(xc740xd_vms):
    result = numa_pinning(xc740xd_vms, XC740XD_NUMA, 4, XC740XD_GPUS)
    # VM2's cores 16-27 cross from node 0 (16-25) into node 1 (26-27).
    assert result["vms"]["data"]["nodes"] == [0, 1]
    assert any(w.startswith("vms.data: cores span NUMA nodes (node 0: 10, node 1: 2)") for w in result["warnings"])
    # GPU 2 sits on node 0, VM3's cores 28-43 are all on node 1.
    assert any("vms.llm: GPU 'gpu2' hangs off NUMA node 0" in w for w in result["warnings"])
    assert not any("gpu3" in w or "gpu1" in w for w in result["warnings"])
    assert result["vms"]["trading"]["cpus"] == "0-15,52-67"


def test_sibling_threads_to_host(xc740xd_vms):
    result = numa_pinning(xc740xd_vms, XC740XD_NUMA, 0, XC740XD_GPUS, sibling_threads="host")
    assert result["vms"]["trading"]["cpus"] == "0-15"
    assert result["host"]["cpus"] == "52-103"


def test_without_explicit_cores_fits_with_reserve():
    vms = [
        {"name": "trading", "vcpus": 14, "gpus": ["gpu1"]},
        {"name": "data", "vcpus": 10},
        {"name": "llm", "vcpus": 16, "gpus": ["gpu3", "gpu4"]},
        {"name": "research", "vcpus": 8},
    ]
    result = numa_pinning(vms, XC740XD_NUMA, 4, XC740XD_GPUS)
    assert result["ok"], result["errors"]
    assert result["warnings"] == []
    assert result["host"]["cores"] == "0-1,26-27"
    assert result["vms"]["trading"]["nodes"] == [0]
    assert result["vms"]["llm"]["nodes"] == [1]
    assert result["vms"]["trading"]["cores"] == "2-15"
    for vm in result["vms"].values():
        assert len(vm["nodes"]) == 1


def test_explicit_overlap_and_count_mismatch():
    vms = [
        {"name": "a", "vcpus": 4, "cores": "0-3"},
        {"name": "b", "vcpus": 3, "cores": "3-4,55"},
    ]
    result = numa_pinning(vms, XC740XD_NUMA)
    assert "vms.b: core 3 is already given to a" in result["errors"]
    # 55 is the sibling of core 3: still core 3, so b names 2 cores (3, 4) not 3.
    assert any(e.startswith("vms.b: vcpus is 3 but cores '3-4,55' names 2") for e in result["errors"])


def test_explicit_host_reserve_conflict():
    result = numa_pinning([{"name": "a", "vcpus": 2, "cores": "0-1"}], XC740XD_NUMA, "0,26")
    assert "vms.a: core 0 is already given to host" in result["errors"]


def test_plan_errors_are_reported_not_raised():
    vms = [
        {"name": "a", "vcpus": 2, "cores": "200-201", "gpus": ["nope"]},
        {"name": "b", "vcpus": 1, "gpus": ["gpu1"]},
        {"name": "c", "vcpus": 1, "gpus": ["gpu1"]},
    ]
    result = numa_pinning(vms, XC740XD_NUMA, 0, XC740XD_GPUS)
    errors = "\n".join(result["errors"])
    assert "vms.a.cores: CPU(s) 200-201 are not in numa_nodes" in errors
    assert "vms.a.gpus: GPU 'nope' is not defined in gpus" in errors
    assert "vms.c.gpus: GPU 'gpu1' is already assigned to b" in errors


def test_not_enough_cores_for_auto_vm():
    result = numa_pinning([{"name": "big", "vcpus": 60}], XC740XD_NUMA)
    assert "vms.big: needs 60 cores but only 52 are free" in result["errors"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (([{"name": "a"}], XC740XD_NUMA), "vms.a.vcpus: is required"),
        (([{"name": "a", "vcpus": 0}], XC740XD_NUMA), "vms.a.vcpus: must be >= 1"),
        (([{"name": "a", "vcpus": "4"}], XC740XD_NUMA), "vms.a.vcpus: expected an integer"),
        (([{"vcpus": 1}], XC740XD_NUMA), "vms[0].name: a non-empty string is required"),
        (([{"name": "a", "vcpus": 1}, {"name": "a", "vcpus": 1}], XC740XD_NUMA), "name 'a' appears more than once"),
        (([{"name": "a", "vcpus": 1, "cores": "3-1"}], XC740XD_NUMA), "vms.a.cores: range '3-1' is reversed"),
        (("x", XC740XD_NUMA), "vms: expected a list"),
        (([], []), "numa_nodes: at least one NUMA node is required"),
        (([], [{"id": 0}]), "numa_nodes[0]: 'id' and 'cores' are required"),
        (([], [{"id": 0, "cores": "0-3", "cpus": "0-7"}]), "numa_nodes[0]: unknown key(s) cpus"),
        (([], [{"id": 0, "cores": "0-3", "siblings": "4-6"}]), "numa_nodes[0].siblings: 3 sibling threads for 4"),
        (([], [{"id": 0, "cores": "0-3"}, {"id": 1, "cores": "3-5"}]), "numa_nodes[1]: CPU 3 already belongs"),
        (([], [{"id": 0, "cores": "0-3"}, {"id": 0, "cores": "4-5"}]), "numa_nodes[1].id: node 0 is listed twice"),
        (([], XC740XD_NUMA, -1), "host_reserve: must be >= 0"),
        (([], XC740XD_NUMA, 0, [{"name": "g", "numa_node": "zero"}]), "gpus.g.numa_node: expected an integer"),
        (([], XC740XD_NUMA, 0, None, "both"), "sibling_threads: must be one of vm, host"),
    ],
)
def test_malformed_input_raises_naming_the_path(args, message):
    with pytest.raises(AnsibleFilterError) as err:
        numa_pinning(*args)
    assert str(err.value).startswith("numa_pinning: ")
    assert message in str(err.value)


vm_sizes = st.lists(st.integers(min_value=1, max_value=20), min_size=1, max_size=6)


@settings(max_examples=100, deadline=None)
@given(vm_sizes, st.integers(min_value=0, max_value=8))
def test_auto_placement_never_overlaps_or_uses_reserve(sizes, reserve):
    vms = [{"name": f"vm{i}", "vcpus": n} for i, n in enumerate(sizes)]
    result = numa_pinning(vms, XC740XD_NUMA, reserve)
    host = set(cpu_ranges(result["host"]["cores"]))
    seen: set[int] = set()
    for vm in result["vms"].values():
        cores = set(cpu_ranges(vm["cores"]))
        assert not cores & seen
        assert not cores & host
        seen |= cores
    over = sum(sizes) + reserve > 52
    assert result["ok"] is not over
    if not over:
        assert len(host) == reserve
        assert all(len(cpu_ranges(result["vms"][f"vm{i}"]["cores"])) == n for i, n in enumerate(sizes))
