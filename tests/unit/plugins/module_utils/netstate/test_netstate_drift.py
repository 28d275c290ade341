"""drift.py: the running interfaces against what the networks and netplan roles wrote.

sysfs is a tree under tmp_path; ``ip`` and ``bridge`` answer with the recordings in
tests/unit/fixtures/netstate (SOURCES.md there). The roles' expectations are rendered from their
vars/main.yml with Ansible's templar, so the test also covers what the tasks hand to the program.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from ansible_collections.onprem.gpu_server.plugins.module_utils.netstate import drift

REPO = Path(__file__).resolve().parents[5]
REC = REPO / "tests" / "unit" / "fixtures" / "netstate"
PROGRAM = REPO / "plugins" / "module_utils" / "netstate" / "drift.py"
IP_LO = (REC / "ip-o-addr-show_lo_netns.txt").read_text()
VLANS_ENO1 = (REC / "constructed_bridge-vlan-show-dev_eno1.txt").read_text()


class Tools:
    """``ip -o addr show dev X`` and ``bridge vlan show dev X`` from recordings; anything else prints nothing."""

    def __init__(self, addrs: dict[str, str] | None = None, vlans: dict[str, str] | None = None) -> None:
        self.addrs = addrs or {}
        self.vlans = vlans or {}
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str]) -> str:
        self.calls.append(argv)
        if argv[:5] == ["ip", "-o", "addr", "show", "dev"]:
            return self.addrs.get(argv[5], "")
        if argv[:4] == ["bridge", "vlan", "show", "dev"]:
            return self.vlans.get(argv[4], "")
        return ""


def nic(sysfs: Path, name: str, address: str | None = None, **files: str) -> Path:
    """/sys/class/net/NAME with its address and other files (``bridge/vlan_filtering=1``, ...)."""
    path = sysfs / "class" / "net" / name
    path.mkdir(parents=True)
    if address is not None:
        (path / "address").write_text(address + "\n")
    for relative, value in files.items():
        (path / relative).parent.mkdir(parents=True, exist_ok=True)
        (path / relative).write_text(value + "\n")
    return path


def enslave(sysfs: Path, port: str, master: str) -> None:
    # The kernel's master link points at the bridge's device directory.
    (sysfs / "class" / "net" / port / "master").symlink_to(f"../../../devices/virtual/net/{master}")


@pytest.fixture
def hypervisor(tmp_path: Path) -> Path:
    """vmbr1 with VLAN filtering, eno1 in it (VLANs 1, 10, 20, 30), a guest's tap, vmbr1.10."""
    sysfs = tmp_path / "sys"
    nic(sysfs, "vmbr1", "52:54:00:00:00:01", **{"bridge/vlan_filtering": "1"})
    nic(sysfs, "eno1", "52:54:00:00:00:01")
    nic(sysfs, "tap100i0", "fe:00:00:00:00:01")
    nic(sysfs, "vmbr1.10", "52:54:00:00:00:01")
    enslave(sysfs, "eno1", "vmbr1")
    enslave(sysfs, "tap100i0", "vmbr1")
    return sysfs


def test_port_vids_reads_every_vlan_line_after_the_header() -> None:
    assert drift.port_vids(VLANS_ENO1) == {"1", "10", "20", "30"}
    assert drift.port_vids("") == set()
    assert drift.port_vids("port              vlan-id  \n") == set()


def test_a_bridge_as_written_has_no_drift(hypervisor: Path) -> None:
    tools = Tools(addrs={"lo": IP_LO}, vlans={"eno1": VLANS_ENO1})
    expected = {"bridges": [{"name": "vmbr1", "ports": ["eno1"], "vids": [10, 20, "30"]}],
                "addresses": [["lo", "10.0.10.2/24"], ["lo", "fd00:10::2/64"]]}
    assert drift.drift(expected, sysfs=str(hypervisor), run=tools) == []
    # The guest's tap is a port the role does not list: never looked at.
    assert ["bridge", "vlan", "show", "dev", "tap100i0"] not in tools.calls


@pytest.mark.parametrize(("expected", "lines"), [
    pytest.param({"bridges": [{"name": "vmbr9", "ports": ["eno1"], "vids": [10]}]}, ["vmbr9: no such bridge"],
                 id="missing bridge: its ports are not checked"),
    pytest.param({"bridges": [{"name": "vmbr1", "ports": ["eno1", "eno2"], "vids": [10, 40]}]},
                 ["eno1: VLAN 40 not allowed", "eno2: not a port of vmbr1", "eno2: VLAN 10 not allowed",
                  "eno2: VLAN 40 not allowed"], id="unlisted VLAN and missing port"),
    pytest.param({"addresses": [["lo", "10.0.10.3/24"], ["lo", "10.0.10.2/25"], ["vmbr1.20", "10.0.20.2/24"]]},
                 ["lo: address 10.0.10.3/24 missing", "lo: address 10.0.10.2/25 missing",
                  "vmbr1.20: address 10.0.20.2/24 missing"], id="addresses must match with their prefix"),
    pytest.param({"addresses": [["lo", "10.0.10.2"]]}, ["lo: address 10.0.10.2 missing"],
                 id="an address without its prefix is not found"),
    pytest.param({"interfaces": ["eno1", "bond0"]}, ["bond0: no such interface"], id="interfaces"),
    pytest.param({}, [], id="nothing expected"),
])
def test_each_difference_is_one_line(hypervisor: Path, expected: dict[str, Any], lines: list[str]) -> None:
    tools = Tools(addrs={"lo": IP_LO}, vlans={"eno1": VLANS_ENO1})
    assert drift.drift(expected, sysfs=str(hypervisor), run=tools) == lines


def test_vlan_filtering_off_and_a_port_in_another_bridge(hypervisor: Path) -> None:
    nic(hypervisor, "vmbr2", **{"bridge/vlan_filtering": "0"})
    nic(hypervisor, "eno3")
    enslave(hypervisor, "eno3", "vmbr1")
    expected = {"bridges": [{"name": "vmbr2", "ports": ["eno3"], "vids": []}]}
    assert drift.drift(expected, sysfs=str(hypervisor), run=Tools()) == [
        "vmbr2: VLAN filtering off", "eno3: not a port of vmbr2"]


def test_mac_of_a_matched_nic_and_of_a_bond_member(tmp_path: Path) -> None:
    sysfs = tmp_path / "sys"
    nic(sysfs, "lan0", "aa:bb:cc:00:00:09")
    # A bond gives its members its own MAC; the member's permanent one is in bonding_slave/.
    nic(sysfs, "data2", "aa:bb:cc:00:00:02", **{"bonding_slave/perm_hwaddr": "aa:bb:cc:00:00:03"})
    nic(sysfs, "data1", "aa:bb:cc:00:00:02", **{"bonding_slave/perm_hwaddr": "aa:bb:cc:00:00:02"})
    expected = {"macs": [{"name": "lan0", "mac": "aa:bb:cc:00:00:01"}, {"name": "data1", "mac": "aa:bb:cc:00:00:02"},
                         {"name": "data2", "mac": "aa:bb:cc:00:00:03"}, {"name": "gone", "mac": "aa:bb:cc:00:00:04"}],
                "interfaces": ["lan0", "data1", "data2", "gone"]}
    # A missing NIC is reported once, as missing, not also as having the wrong MAC.
    assert drift.drift(expected, sysfs=str(sysfs), run=Tools()) == [
        "lan0: has MAC aa:bb:cc:00:00:09, not aa:bb:cc:00:00:01", "gone: no such interface"]


def test_the_order_is_macs_interfaces_bridges_addresses(hypervisor: Path) -> None:
    expected = {"addresses": [["x", "10.0.0.1/24"]], "bridges": [{"name": "vmbr9"}], "interfaces": ["x"],
                "macs": [{"name": "eno1", "mac": "aa:aa:aa:aa:aa:aa"}]}
    assert drift.drift(expected, sysfs=str(hypervisor), run=Tools()) == [
        "eno1: has MAC 52:54:00:00:00:01, not aa:aa:aa:aa:aa:aa", "x: no such interface", "vmbr9: no such bridge",
        "x: address 10.0.0.1/24 missing"]


def test_a_missing_tool_reads_as_empty_output() -> None:
    assert drift.run_tool(["/nonexistent/ip", "-o", "addr"]) == ""


def test_as_the_roles_run_it_the_program_comes_on_stdin() -> None:
    # /usr/bin/python3 -I - EXPECTED_JSON, with the file's text on stdin: what each role's task does.
    expected = {"interfaces": ["onprem-no-such-nic0"], "addresses": [["onprem-no-such-nic0", "10.9.9.9/24"]]}
    done = subprocess.run([sys.executable, "-I", "-", json.dumps(expected)], input=PROGRAM.read_text(),
                          capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (
        0, "onprem-no-such-nic0: no such interface\nonprem-no-such-nic0: address 10.9.9.9/24 missing\n", "")
    usage = subprocess.run([sys.executable, "-I", "-"], input=PROGRAM.read_text(), capture_output=True, text=True,
                           check=False)
    assert usage.returncode == 2 and "usage" in usage.stderr


def test_the_program_holds_no_jinja_delimiters() -> None:
    # The roles read it with lookup('file'); keep it free of anything a templating step could act on.
    text = PROGRAM.read_text()
    assert not any(mark in text for mark in ("{" + "{", "{" + "%", "{" + "#"))


# --------------------------------------------------------------------------- what the roles hand over

pytest.importorskip("ansible")
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template
from fixtures.templating import trusted


def expected_from(role: str, name: str, **variables: Any) -> Any:
    """The role's ``name`` from its defaults and vars/main.yml, as the task's argv carries it (to_json)."""
    base = yaml.safe_load((REPO / "roles" / role / "defaults" / "main.yml").read_text())
    base.update(yaml.safe_load((REPO / "roles" / role / "vars" / "main.yml").read_text()))
    base.update(variables)
    templar = Templar(loader=DataLoader(), variables=trusted(base))
    return json.loads(templar.template(trust_as_template("{{ " + name + " | to_json }}")))


def test_networks_hands_over_its_bridges_ports_vlans_and_addresses() -> None:
    got = expected_from(
        "networks", "__networks_expected",
        networks_plan={"mgmt": {"vlan": 10}, "vm": {"vlan": "30"}},
        networks_bridges=[{"name": "vmbr1", "ports": [{"mac": "aa:bb:cc:dd:ee:01"}]},
                          {"name": "vmbr2", "ports": [{"name": "eno3"}], "vids": [30]}],
        networks_vlan_interfaces=[{"bridge": "vmbr1", "network": "mgmt", "address": "10.0.10.2/24"},
                                  {"bridge": "vmbr2", "network": "vm", "vlan": 31, "address": "10.0.31.2/24"}],
        __networks_ports={"vmbr1": ["eno1"], "vmbr2": ["eno3"]},
    )
    assert got == {"bridges": [{"name": "vmbr1", "ports": ["eno1"], "vids": [10, 30]},
                               {"name": "vmbr2", "ports": ["eno3"], "vids": [30]}],
                   "addresses": [["vmbr1.10", "10.0.10.2/24"], ["vmbr2.31", "10.0.31.2/24"]]}


def test_netplan_hands_over_macs_names_and_addresses() -> None:
    got = expected_from(
        "netplan", "__netplan_expected",
        netplan_ethernets={"lan0": {"match": {"macaddress": "AA:BB:CC:00:00:01"}, "set-name": "lan0",
                                    "addresses": ["10.1.0.2/24"]},
                           "eno9": None,
                           "eno8": {"addresses": [{"10.8.0.2/24": {"label": "eno8:0"}}]}},
        netplan_bonds={"bond0": {"interfaces": ["lan0"]}},
        netplan_vlans={"bond0.30": {"id": 30, "link": "bond0", "addresses": ["10.30.0.2/24"]}},
    )
    assert got == {"macs": [{"name": "lan0", "mac": "aa:bb:cc:00:00:01"}],
                   "interfaces": ["lan0", "eno9", "eno8", "bond0", "bond0.30"],
                   "addresses": [["lan0", "10.1.0.2/24"], ["eno8", "10.8.0.2/24"], ["bond0.30", "10.30.0.2/24"]]}


@pytest.mark.parametrize(("role", "register"), [("networks", "__networks"), ("netplan", "__netplan")])
def test_both_tasks_of_each_role_run_the_program_from_the_collection(role: str, register: str) -> None:
    tasks = yaml.safe_load((REPO / "roles" / role / "tasks" / "configure.yml").read_text())
    block = next(t for t in yaml.safe_load((REPO / "roles" / role / "tasks" / "main.yml").read_text()) if "block" in t)
    found = [t for t in tasks + block["block"] if t.get("register") in (f"{register}_drift", f"{register}_verify")]
    assert len(found) == 2
    for task in found:
        command = task["ansible.builtin.command"]
        assert command["argv"][:3] == ["/usr/bin/python3", "-I", "-"]
        assert command["argv"][3] == "{{ " + register + "_expected | to_json }}"
        assert command["stdin"] == "{{ lookup('ansible.builtin.file', " + register + "_drift_program) }}"
        assert task["changed_when"] is False
    program = yaml.safe_load((REPO / "roles" / role / "vars" / "main.yml").read_text())[f"{register}_drift_program"]
    assert program == "{{ role_path }}/../../plugins/module_utils/netstate/drift.py"
