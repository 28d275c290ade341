"""nic_facts module on the /sys/class/net fixture trees (sources: tests/unit/fixtures/sysfs_net/SOURCES.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.testing import patch_module_args
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar
from fixtures.sysfs_net import net_tree
from fixtures.templating import trusted

from ansible_collections.onprem.gpu_server.plugins.modules import nic_facts

TREES = Path(net_tree.__file__).resolve().parent
MODULE = "onprem.gpu_server.nic_facts"


def run(monkeypatch, capsys, tree: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    monkeypatch.setattr(nic_facts, "ROOT", str(TREES / tree))
    with patch_module_args({**(args or {}), "_ansible_check_mode": True}), pytest.raises(SystemExit):
        nic_facts.main()
    return json.loads(capsys.readouterr().out)


def test_every_interface_keyed_by_name(monkeypatch, capsys):
    result = run(monkeypatch, capsys, "labvm-q35-constructed")
    nics = result["ansible_facts"]["nics"]
    assert result["changed"] is False
    assert list(nics) == ["eth0", "eth1", "eth2", "lo"]
    assert nics["eth0"]["name"] == "eth0" and nics["eth0"]["driver"] == "virtio_net"


def test_physical_only_and_names(monkeypatch, capsys):
    facts = run(monkeypatch, capsys, "proxmox-bond-bridge-constructed", {"physical_only": True})["ansible_facts"]
    assert list(facts["nics"]) == ["eno1", "eno2", "eno3", "eno4"]
    facts = run(monkeypatch, capsys, "proxmox-bond-bridge-constructed", {"names": ["vmbr*", "bond0"]})
    assert list(facts["ansible_facts"]["nics"]) == ["bond0", "vmbr0", "vmbr0.20"]


def test_a_wrong_option_type_is_refused(monkeypatch, capsys):
    result = run(monkeypatch, capsys, "labvm-q35-constructed", {"physical_only": "sometimes"})
    assert result["failed"] is True and "physical_only" in result["msg"]


def test_documentation_matches_the_argument_spec_and_the_facts():
    doc = yaml.safe_load(nic_facts.DOCUMENTATION)
    assert set(doc["options"]) == set(nic_facts.ARGUMENT_SPEC)
    for name, option in doc["options"].items():
        spec = nic_facts.ARGUMENT_SPEC[name]
        assert option["type"] == spec["type"] and option["default"] == spec["default"], name
        assert option.get("elements") == spec.get("elements"), name
    returned = yaml.safe_load(nic_facts.RETURN)["ansible_facts"]["contains"]["nics"]
    sample_keys = {key for entry in returned["sample"].values() for key in entry}
    read = nic_facts.read_interfaces(str(TREES / "proxmox-bond-bridge-constructed"))
    assert sample_keys == set(read["eno1"])
    # The samples are what the constructed Proxmox tree gives.
    for name, entry in returned["sample"].items():
        assert read[name] == entry, name
    # Every key is described.
    described = " ".join(returned["description"])
    for key in sample_keys:
        assert f"C({key})" in described, key


def _render(templar: Templar, value: Any) -> Any:
    return templar.template(trusted(value))


@pytest.mark.parametrize("tree", ["labvm-q35-constructed", "proxmox-bond-bridge-constructed"])
def test_examples_run(tree, monkeypatch, capsys):
    """Each module call runs on a fixture tree; the tasks after it are rendered with the facts it returned."""
    spec = nic_facts.ARGUMENT_SPEC
    facts: dict[str, Any] = {}
    outcomes: list[Any] = []
    for task in yaml.safe_load(nic_facts.EXAMPLES):
        if MODULE in task:
            args = task[MODULE] or {}
            assert ArgumentSpecValidator(spec).validate(args).error_messages == []
            result = run(monkeypatch, capsys, tree, args)
            assert not result.get("failed"), result.get("msg")
            facts = result["ansible_facts"]
            continue
        variables: dict[str, Any] = {"ansible_facts": facts}
        templar = Templar(loader=DataLoader(), variables=variables)
        if "ansible.builtin.assert" in task:
            body = task["ansible.builtin.assert"]
            outcomes.append(_render(templar, "{{ " + body["that"] + " }}"))
        elif "loop" in task:
            items = _render(templar, task["loop"])
            assert items, "the loop has nothing to show"
            for item in items:
                item_templar = Templar(loader=DataLoader(), variables={**variables, "item": item})
                outcomes.append(_render(item_templar, task["ansible.builtin.debug"]["msg"]))
        else:
            outcomes.append(_render(templar, task["ansible.builtin.debug"]["msg"]))
    if tree == "labvm-q35-constructed":
        # The management MAC is eth0's; eth0-eth2 are named by probe order, so the assert fails there.
        assert outcomes == [
            "eth0",
            "eth0 at 0000:00:03.0, NUMA node unknown, -1 Mb/s",
            "eth1 at 0000:00:08.0, NUMA node unknown, 1000 Mb/s",
            "eth2 at 0000:00:09.0, NUMA node unknown, link down",
            False,
        ]
    else:
        assert outcomes[0] == "not found"
        assert outcomes[1] == "eno1 at 0000:19:00.0, NUMA node 0, 10000 Mb/s"
        assert outcomes[-1] is True
