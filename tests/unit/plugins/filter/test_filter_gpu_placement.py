"""gpu_placement with the XC740XD GPUs."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from plan_specs import XC740XD_GPUS, XC740XD_NUMA

from ansible_collections.onprem.gpu_server.plugins.filter.gpu_placement import gpu_placement


def test_spec_assignment(xc740xd_vms):
    result = gpu_placement(xc740xd_vms, XC740XD_GPUS, XC740XD_NUMA)
    assert result["ok"], result["errors"]
    assert result["hostpci"]["trading"] == ["0000:3b:00"]
    assert result["hostpci"]["llm"] == ["0000:5e:00", "0000:af:00", "0000:d8:00"]
    assert result["vms"]["trading"][0]["functions"] == ["0", "1"]
    assert result["unassigned"] == []
    assert "vms.llm: its GPUs hang off different NUMA nodes [0, 1]" in result["warnings"]
    assert "vms.llm: GPU gpu2 is on NUMA node 0, the VM runs on node(s) [1]" in result["warnings"]


def test_function_split_and_double_use():
    vms = [
        {"name": "a", "gpus": ["0000:3b:00.0"]},  # graphics function without its audio function
        {"name": "b", "gpus": ["3b:00.1", "gpu2"]},  # short address, domain 0000
        {"name": "c", "gpus": ["0000:5e:00"]},  # whole device, already given to b
    ]
    result = gpu_placement(vms, XC740XD_GPUS)
    errors = "\n".join(result["errors"])
    assert "vms.a.gpus: passes only part of device 0000:3b:00 (gpu1); function(s) .1 must travel with it" in errors
    assert "vms.b.gpus: GPU gpu1 (0000:3b:00) is already assigned to a" in errors
    assert "vms.c.gpus: GPU gpu2 (0000:5e:00) is already assigned to b" in errors
    assert result["unassigned"] == ["gpu3", "gpu4"]


def test_iommu_group_split():
    gpus = [dict(g, iommu_group=30) for g in XC740XD_GPUS[:2]]
    result = gpu_placement([{"name": "a", "gpus": ["gpu1"]}], gpus)
    assert (
        "gpus: IOMMU group 30 is split between (unassigned), a; vfio can only hand a whole group to one VM"
        in (result["errors"])
    )


def test_unknown_reference_and_duplicate_declaration():
    gpus = [*XC740XD_GPUS, {"name": "again", "pci": "0000:3b:00.0"}]
    result = gpu_placement([{"name": "a", "gpus": ["0000:01:00.0"]}], gpus)
    assert "gpus.again: device 0000:3b:00 is also declared as gpu1" in result["errors"]
    assert any(e.startswith("vms.a.gpus[0]: '0000:01:00.0' is neither a GPU name") for e in result["errors"])


@pytest.mark.parametrize(
    ("vms", "gpus", "message"),
    [
        ([], [{"name": "g"}], "gpus.g.pci: is required"),
        ([], [{"name": "g", "pci": "3b:00:0"}], "gpus.g.pci: '3b:00:0' is not a PCI address"),
        ([], [{"name": "g", "pci": "0000:3b:00.0", "functions": "0000:3b:00.1"}], "gpus.g.functions: expected a list"),
        ([], [{"name": "g", "pci": "0000:3b:00.0", "iommu_group": "x"}], "gpus.g.iommu_group: expected an integer"),
        ([{"name": "a", "gpus": ["bogus"]}], XC740XD_GPUS, "vms.a.gpus[0]: 'bogus' is not a PCI address"),
        ([{"name": "a", "gpus": [5]}], XC740XD_GPUS, "vms.a.gpus[0]: expected a PCI address"),
        ([{"name": "a", "numa_node": "one", "gpus": ["gpu1"]}], XC740XD_GPUS, "vms.a.numa_node: expected an integer"),
    ],
)
def test_malformed_input(vms, gpus, message):
    with pytest.raises(AnsibleFilterError) as err:
        gpu_placement(vms, gpus)
    assert str(err.value).startswith("gpu_placement: ")
    assert message in str(err.value)
