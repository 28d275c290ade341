"""The firewall's preflight: zone MACs resolved to the interface that carries the host's traffic, from one read
of /sys/class/net (nic_facts' reader), evaluated with Ansible's templar.

The listings are what a read of /sys/class/net gave (name, address, physical or virtual, master,
name_assign_type); each is laid out as a sysfs tree and read back by ``host/interfaces.read_interfaces``, the
reader the nic_facts module runs, so the preflight sees exactly what the module returns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip("ansible")
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar
from fixtures.templating import trusted

from ansible_collections.onprem.gpu_server.plugins.module_utils.host import interfaces

PREFLIGHT = Path(__file__).resolve().parents[4] / "roles" / "firewall" / "tasks" / "preflight.yml"

# The loop's output on the machine that runs these tests (recorded 2026-11-26): a Docker bridge with one veth
# port, the NIC named by probe order (name_assign_type 1).
RECORDED_HERE = """docker0 02:42:a5:ca:df:46 virtual - 3
eth0 02:fc:00:00:00:01 physical - 1
ifb0 52:a3:05:7a:32:25 virtual - unknown
lo 00:00:00:00:00:00 virtual - 2
veth52056e5 da:b3:02:b2:ca:84 virtual docker0 3"""

# Constructed (not recorded): a Proxmox host as ifupdown2 builds it. eno1 is a port of vmbr0, which takes its
# MAC, as does the VLAN interface vmbr0.30 listed after it; eno2 and eno3 form bond0 (which takes eno2's MAC),
# itself a port of vmbr1; enp65s0f0 stands alone with a predictable name (name_assign_type 4).
CONSTRUCTED_PROXMOX = """bond0 3c:ec:ef:00:00:02 virtual vmbr1 3
eno1 3c:ec:ef:00:00:01 physical vmbr0 4
eno2 3c:ec:ef:00:00:02 physical bond0 4
eno3 3c:ec:ef:00:00:03 physical bond0 4
enp65s0f0 b8:59:9f:00:00:10 physical - 4
lo 00:00:00:00:00:00 virtual - 2
vmbr0 3c:ec:ef:00:00:01 virtual - 3
vmbr0.30 3c:ec:ef:00:00:01 virtual - 3
vmbr1 3c:ec:ef:00:00:02 virtual - 3"""


def _tasks() -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in yaml.safe_load(PREFLIGHT.read_text())}


def _sysfs(root: Path, listing: str) -> Path:
    """A /sys/class/net tree with what the listing says: address, a device link for physical NICs, the master
    link, name_assign_type (absent where the listing says unknown, as the kernel's EINVAL reads)."""
    net = root / "sys" / "class" / "net"
    devices = root / "sys" / "devices" / "pci0000:00"
    for index, line in enumerate(listing.splitlines()):
        name, mac, kind, master, assign = line.split(" ")
        base = net / name
        base.mkdir(parents=True)
        (base / "address").write_text(mac + "\n")
        if assign != "unknown":
            (base / "name_assign_type").write_text(assign + "\n")
        if kind == "physical":
            function = devices / f"0000:00:{index + 1:02x}.0"
            function.mkdir(parents=True)
            (base / "device").symlink_to(function)
        if master != "-":
            (base / "master").symlink_to(net / master)
    return root


def _evaluate(listing: str, macs: list[str], tmp_path: Path) -> tuple[dict[str, str], list[str]]:
    """The MAC map and the enumerated-name list as the preflight computes them."""
    tasks = _tasks()
    facts = tasks["Preflight | map MAC addresses to interface names"]["ansible.builtin.set_fact"]
    nics = interfaces.read_interfaces(str(_sysfs(tmp_path / f"root{len(list(tmp_path.iterdir()))}", listing)))
    variables: dict[str, Any] = {"__firewall_ifaces": {"ansible_facts": {"nics": nics}}, "__firewall_macs": macs}
    templar = Templar(loader=DataLoader(), variables=variables)
    for name in ("__firewall_mac_map", "__firewall_enumerated_names"):
        variables[name] = templar.template(trusted(facts[name]))
    check = tasks["Preflight | zone interfaces found by MAC have names that survive a reboot"]
    templar = Templar(loader=DataLoader(), variables=variables)
    enumerated = templar.template(trusted(check["vars"]["__firewall_enumerated"]))
    return variables["__firewall_mac_map"], list(enumerated)


def test_recorded_host_maps_each_mac_to_its_interface_and_flags_the_probe_order_name(tmp_path) -> None:
    mac_map, enumerated = _evaluate(RECORDED_HERE, ["02:fc:00:00:00:01"], tmp_path)
    assert mac_map["02:fc:00:00:00:01"] == "eth0"
    assert mac_map["da:b3:02:b2:ca:84"] == "docker0"  # a veth port stands for its bridge
    assert enumerated == ["eth0"]
    assert _evaluate(RECORDED_HERE, ["02:42:a5:ca:df:46"], tmp_path)[1] == []


def test_bridge_and_bond_ports_stand_for_the_interface_with_the_address(tmp_path) -> None:
    mac_map, enumerated = _evaluate(CONSTRUCTED_PROXMOX, ["3c:ec:ef:00:00:01", "3c:ec:ef:00:00:03"], tmp_path)
    # Not vmbr0.30, which shares the MAC and comes last in the listing.
    assert mac_map["3c:ec:ef:00:00:01"] == "vmbr0"
    # eno3 -> bond0 -> vmbr1; bond0's own MAC (eno2's) resolves the same way.
    assert mac_map["3c:ec:ef:00:00:03"] == "vmbr1"
    assert mac_map["3c:ec:ef:00:00:02"] == "vmbr1"
    assert mac_map["b8:59:9f:00:00:10"] == "enp65s0f0"
    assert enumerated == []


def test_upper_case_macs_in_the_listing_are_matched_in_lower_case(tmp_path) -> None:
    mac_map, _ = _evaluate(CONSTRUCTED_PROXMOX.replace("b8:59:9f:00:00:10", "B8:59:9F:00:00:10"), [], tmp_path)
    assert mac_map["b8:59:9f:00:00:10"] == "enp65s0f0"
