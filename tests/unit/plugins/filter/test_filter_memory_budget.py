"""memory_budget with the XC740XD memory plan."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from plan_specs import XC740XD_MEMORY

from ansible_collections.onprem.gpu_server.plugins.filter.memory_budget import memory_budget


def test_spec_plan_is_over_budget(xc740xd_vms):
    result = memory_budget(XC740XD_MEMORY, xc740xd_vms, host_reserve_gib=32, zfs_arc_max_gib=64)
    assert not result["ok"]
    # VMs 64 + 96 + 128 + 32 = 320, + host 32 + ARC 64 = 416 GiB against 320 installed.
    assert result["breakdown_gib"]["vms"] == 320
    assert result["demand_gib"] == 416
    assert result["free_gib"] == -96
    assert any(e.startswith("memory: over budget by 96 GiB") for e in result["errors"])


def test_spec_plan_is_over_budget_even_without_arc(xc740xd_vms):
    result = memory_budget(XC740XD_MEMORY, xc740xd_vms, host_reserve_gib=32)
    assert result["free_gib"] == -32


def test_spec_dimm_contradictions(xc740xd_vms):
    result = memory_budget(XC740XD_MEMORY, xc740xd_vms)
    # 8 x 8 + 8 x 32 = 320 GiB agrees with installed, but it is 16 DIMMs, not 12.
    assert result["dimms"]["total_gib"] == 320
    assert result["dimms"]["count"] == 16
    assert not any("installed_gib" in e for e in result["errors"])
    assert any("adds up to 16 modules but populated_dimms says 12" in e for e in result["errors"])
    assert any("16 DIMMs on 12 channels cannot be one per channel: 4 channels" in w for w in result["warnings"])
    assert any(w.startswith("memory: mixed DIMM sizes 8 GiB, 32 GiB") for w in result["warnings"])


def test_balanced_population_has_no_findings():
    memory = {"dimms": [{"size_gib": 32, "count": 24}], "sockets": 2, "channels_per_socket": 6, "slots_per_channel": 2}
    result = memory_budget(memory, [{"name": "vm", "memory_mib": 65536}], host_reserve_gib=32, zfs_arc_max_gib=64)
    assert result["ok"]
    assert result["warnings"] == []
    assert result["installed_gib"] == 768
    assert result["free_gib"] == 768 - 64 - 32 - 64


def test_installed_disagrees_with_dimms_and_slots():
    memory = {"installed_gib": 256, "dimms": [{"size_gib": 64, "count": 5}], "channels_per_socket": 2}
    result = memory_budget(memory, [])
    assert "memory: installed_gib is 256 but the DIMMs add up to 320 GiB" in result["errors"]
    assert "memory: 5 DIMMs do not fit in 2 slots" in result["errors"]


def test_hugepages():
    vms = [{"name": "a", "memory_gib": 16, "hugepages": True}, {"name": "b", "memory_gib": 1.5, "hugepages": True}]
    result = memory_budget({"installed_gib": 64}, vms, hugepages_gib=2, hugepage_size_mib=1024)
    assert result["hugepages"] == {"size_mib": 1024, "count": 20}
    assert "vms.b: 1.5 GiB is not a whole number of 1024 MiB huge pages" in result["errors"]


@pytest.mark.parametrize(
    ("memory", "vms", "kwargs", "message"),
    [
        ([], [], {}, "memory: expected a mapping"),
        ({}, [], {}, "memory: give installed_gib or dimms"),
        ({"installed_gib": 8, "ram": 1}, [], {}, "memory: unknown key(s) ram"),
        ({"dimms": [{"size_gib": 0, "count": 1}]}, [], {}, "memory.dimms[0].size_gib: must be > 0"),
        ({"dimms": [{"size_gib": 8}]}, [], {}, "memory.dimms[0].count: expected an integer"),
        ({"installed_gib": 8}, [{"name": "a"}], {}, "vms.a: give exactly one of memory_gib or memory_mib"),
        ({"installed_gib": 8}, [{"name": "a", "memory_gib": "4G"}], {}, "vms.a.memory_gib: expected a number"),
        ({"installed_gib": 8}, [], {"zfs_arc_max_gib": -1}, "zfs_arc_max_gib: must be >= 0"),
        ({"installed_gib": 8}, [], {"hugepage_size_mib": 0}, "hugepage_size_mib: must be > 0"),
    ],
)
def test_malformed_input(memory, vms, kwargs, message):
    with pytest.raises(AnsibleFilterError) as err:
        memory_budget(memory, vms, **kwargs)
    assert str(err.value).startswith("memory_budget: ")
    assert message in str(err.value)
