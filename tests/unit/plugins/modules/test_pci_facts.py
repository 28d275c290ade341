"""pci_facts module on fixture trees (sources: tests/unit/fixtures/sysfs/SOURCES.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from ansible.module_utils.testing import patch_module_args

from ansible_collections.onprem.gpu_server.plugins.modules import pci_facts

SYSFS = Path(__file__).resolve().parents[2] / "fixtures" / "sysfs"


def run(monkeypatch, capsys, tree):
    monkeypatch.setattr(pci_facts, "ROOT", str(SYSFS / tree))
    with patch_module_args({"_ansible_check_mode": True}), pytest.raises(SystemExit):
        pci_facts.main()
    return json.loads(capsys.readouterr().out)


def test_x570_facts(monkeypatch, capsys):
    result = run(monkeypatch, capsys, "x570-2x-gtx1080ti-gt710")
    pci = result["ansible_facts"]["pci"]
    assert result["changed"] is False
    assert [gpu["id"] for gpu in pci["gpus"]] == ["10de:1b06", "10de:128b"]
    assert pci["iommu_groups"]["30"] == ["0000:0b:00.0", "0000:0b:00.1"]
    assert pci["devices"]["0000:0c:00.1"]["class"] == "040300"


def test_host_vm_facts(monkeypatch, capsys):
    pci = run(monkeypatch, capsys, "host-vm-virtio")["ansible_facts"]["pci"]
    assert pci["iommu_enabled"] is False
    assert {d["numa_node"] for d in pci["devices"].values()} == {None}


def test_documentation_and_examples():
    doc = yaml.safe_load(pci_facts.DOCUMENTATION)
    assert doc["options"] == {} and pci_facts.ARGUMENT_SPEC == {}
    tasks = yaml.safe_load(pci_facts.EXAMPLES)
    assert tasks[0]["onprem.gpu_server.pci_facts"] is None
    returned = yaml.safe_load(pci_facts.RETURN)["ansible_facts"]["contains"]["pci"]["contains"]
    assert set(returned) == {"devices", "gpus", "iommu_groups", "iommu_enabled"}
    for task in tasks[1:]:
        assert "ansible_facts.pci." in json.dumps(task)
