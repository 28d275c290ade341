"""playbooks/plan.yml builds host_plan_report's host_listing from pci_facts and nic_facts.

The listing had been the output of a Python script in the play; its recording on the development host
(RECORDED_BUILD_HOST_FACTS in test_host_plan_report.py) is the reference. The PCI and NIC fixture trees
recorded on the same host go through the modules' readers and the play's own Jinja here, and must give
the recorded entries back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar
from fixtures.sysfs_net import net_tree
from fixtures.templating import trusted
from plugins.module_utils.test_host_plan_report import RECORDED_BUILD_HOST_FACTS

from ansible_collections.onprem.gpu_server.plugins.module_utils.host.interfaces import read_interfaces
from ansible_collections.onprem.gpu_server.plugins.module_utils.pci.sysfs import collect

REPO = Path(__file__).resolve().parents[3]
PLAY = yaml.safe_load((REPO / "playbooks" / "plan.yml").read_text())[0]
NET_TREES = Path(net_tree.__file__).resolve().parent
PCI_TREES = REPO / "tests" / "unit" / "fixtures" / "sysfs"
RECORDED = RECORDED_BUILD_HOST_FACTS["host_listing"]


def render(name: str, variables: dict[str, Any]) -> Any:
    merged = {**trusted(PLAY["vars"]), **variables}
    return Templar(loader=DataLoader(), variables=merged).template(trusted(PLAY["vars"][name]))


def facts(pci_tree: str, net_tree_name: str) -> dict[str, Any]:
    """What the play's ansible_facts hold after setup, pci_facts and nic_facts on a host like the tree."""
    return {
        "memtotal_mb": 3913,
        "pci": collect(str(PCI_TREES / pci_tree)),
        "nics": read_interfaces(str(NET_TREES / net_tree_name)),
    }


def script_output(listing: dict[str, Any]) -> dict[str, str]:
    """The script's registered result: the disks by id and NUMA nodes it still lists."""
    return {"stdout": json.dumps({"disks_by_id": listing["disks_by_id"], "numa_nodes": listing["numa_nodes"]})}


def test_recorded_host_gives_the_recorded_listing_back():
    variables = {"ansible_facts": facts("host-vm-virtio", "devhost-firecracker"),
                 "__plan_listing": script_output(RECORDED)}
    listing = render("__plan_host_listing", variables)
    assert list(listing) == ["disks_by_id", "nics", "numa_nodes", "pci"]
    assert listing["pci"] == RECORDED["pci"]
    assert listing["disks_by_id"] == RECORDED["disks_by_id"] and listing["numa_nodes"] == RECORDED["numa_nodes"]
    # The interfaces came and went between the two recordings (docker0 is gone, ifb MACs are random per
    # boot); those in both must be equal, MACs of the ifb devices aside.
    recorded = {nic["name"]: nic for nic in RECORDED["nics"]}
    for nic in listing["nics"]:
        expected = dict(recorded[nic["name"]])
        if nic["name"].startswith("ifb"):
            expected["mac"] = nic["mac"]
        assert nic == expected
        assert list(nic) == sorted(nic)  # the script printed with sort_keys
    assert [nic["name"] for nic in listing["nics"]] == ["eth0", "ifb0", "ifb1", "lo"]


def test_lab_vm_listing():
    variables = {"ansible_facts": facts("labvm-q35", "labvm-q35-constructed"),
                 "__plan_listing": script_output({"disks_by_id": {}, "numa_nodes": {"0": "0-3"}})}
    listing = render("__plan_host_listing", variables)
    assert [(n["name"], n["driver"], n["pci"], n["speed_mbps"]) for n in listing["nics"]] == [
        ("eth0", "virtio_net", "0000:00:03.0", -1),
        ("eth1", "e1000e", "0000:00:08.0", 1000),
        ("eth2", "e1000e", "0000:00:09.0", None),
        ("lo", None, None, None),
    ]
    nic_function = next(d for d in listing["pci"] if d["address"] == "0000:00:08.0")
    assert nic_function == {"address": "0000:00:08.0", "class": "0x020000", "device": "0x10d3",
                            "driver": "e1000e", "numa_node": -1, "vendor": "0x8086"}


def test_an_interface_without_a_link_layer_address_keeps_the_empty_text(tmp_path):
    net_tree.add_interface(tmp_path, "wg0", {"address": ""})
    variables = {"ansible_facts": {"pci": {"devices": {}}, "nics": read_interfaces(str(tmp_path))},
                 "__plan_listing": script_output({"disks_by_id": {}, "numa_nodes": {}})}
    assert render("__plan_host_listing", variables)["nics"] == [
        {"driver": None, "mac": "", "name": "wg0", "pci": None, "speed_mbps": None}
    ]


def test_the_report_gets_the_setup_facts_and_the_listing_only():
    variables = {"ansible_facts": facts("host-vm-virtio", "devhost-firecracker"),
                 "__plan_listing": script_output(RECORDED)}
    report_facts = render("__plan_report_facts", variables)
    assert set(report_facts) == {"memtotal_mb", "host_listing"}
    assert report_facts["host_listing"]["pci"] == RECORDED["pci"]
