"""The interface reader (plugins/module_utils/host/interfaces.py) on the /sys/class/net fixture trees.

Sources: tests/unit/fixtures/sysfs_net/SOURCES.md. Two trees are recorded (this development host; a
bridge with a veth port in a network namespace on it), two are constructed (the lab VM's NICs; a
Proxmox host with a bond under a bridge and a VLAN on it).
"""

from __future__ import annotations

import builtins
import errno
import os
from pathlib import Path

import pytest
from fixtures.sysfs_net import net_tree

from ansible_collections.onprem.gpu_server.plugins.module_utils.host import interfaces

TREES = Path(net_tree.__file__).resolve().parent


def read(tree: str) -> dict:
    return interfaces.read_interfaces(str(TREES / tree))


def test_recorded_development_host():
    nics = read("devhost-firecracker")
    assert list(nics) == ["eth0", "ifb0", "ifb1", "lo"]
    assert nics["eth0"] == {
        "name": "eth0", "mac": "02:fc:00:00:00:01", "permanent_mac": "02:fc:00:00:00:01", "addr_assign_type": 0,
        "name_assign_type": 1, "physical": True, "driver": "virtio_net", "pci_address": "0000:00:03.0",
        "numa_node": None, "speed_mbps": -1, "operstate": "up", "mtu": 1400, "link_type": 1, "kind": None,
        "master": None, "lowers": [], "vlan_id": None,
    }  # fmt: skip
    # The kernel refused speed and name_assign_type (EINVAL), so the recording has neither file.
    assert (nics["ifb0"]["speed_mbps"], nics["ifb0"]["name_assign_type"]) == (None, None)
    # A random MAC (addr_assign_type 1) is no permanent one.
    assert nics["ifb0"]["permanent_mac"] is None and nics["ifb0"]["addr_assign_type"] == 1
    assert nics["lo"]["kind"] == "loopback" and nics["lo"]["permanent_mac"] is None
    assert [n for n, i in nics.items() if i["physical"]] == ["eth0"]


def test_recorded_bridge_with_a_veth_port():
    nics = read("netns-bridge-veth")
    assert nics["vmbr0"]["kind"] == "bridge" and nics["vmbr0"]["lowers"] == ["v0"]
    assert nics["v0"]["master"] == "vmbr0" and nics["v1"]["master"] is None
    # The bridge took its port's MAC, yet the kernel still calls it random: only type 0 is permanent.
    assert nics["vmbr0"]["mac"] == nics["v0"]["mac"] and nics["vmbr0"]["addr_assign_type"] == 1
    assert not any(i["physical"] for i in nics.values())
    assert nics["v0"]["kind"] is None and nics["v0"]["speed_mbps"] == 10000


def test_constructed_lab_vm():
    nics = read("labvm-q35-constructed")
    physical = {n: (i["driver"], i["pci_address"], i["mac"]) for n, i in nics.items() if i["physical"]}
    assert physical == {
        "eth0": ("virtio_net", "0000:00:03.0", "52:54:00:4c:ab:01"),
        "eth1": ("e1000e", "0000:00:08.0", "52:54:00:4c:ab:11"),
        "eth2": ("e1000e", "0000:00:09.0", "52:54:00:4c:ab:12"),
    }
    assert {i["name_assign_type"] for i in nics.values() if i["physical"]} == {interfaces.NET_NAME_ENUM}
    # numa_node -1 in the PCI function (as the recorded lab PCI tree has it) is None.
    assert {i["numa_node"] for i in nics.values()} == {None}
    assert (nics["eth1"]["speed_mbps"], nics["eth2"]["speed_mbps"]) == (1000, None)
    assert nics["eth2"]["operstate"] == "down"


def test_constructed_proxmox_bond_under_a_bridge_with_a_vlan():
    nics = read("proxmox-bond-bridge-constructed")
    assert nics["bond0"]["kind"] == "bond" and nics["bond0"]["lowers"] == ["eno1", "eno2"]
    assert nics["bond0"]["master"] == "vmbr0"
    assert [nics[n]["master"] for n in ("eno1", "eno2", "eno3")] == ["bond0", "bond0", None]
    # Both bond ports carry the bond's MAC; the permanent one comes from bonding_slave/perm_hwaddr.
    assert nics["eno2"]["mac"] == "a0:36:9f:11:22:30"
    assert nics["eno2"]["permanent_mac"] == "a0:36:9f:11:22:31"
    assert nics["vmbr0.20"]["kind"] == "vlan" and nics["vmbr0.20"]["vlan_id"] == 20
    assert nics["vmbr0.20"]["lowers"] == ["vmbr0"]
    assert {n: i["numa_node"] for n, i in nics.items() if i["physical"]} == dict.fromkeys(
        ("eno1", "eno2", "eno3", "eno4"), 0
    )
    assert nics["eno1"]["pci_address"] == "0000:19:00.0"  # the NIC's own function, not its bridges'


def test_a_read_the_kernel_refuses_is_no_value(monkeypatch):
    # sysfs answers EINVAL for the speed of a down link and an unknown name_assign_type; a fixture tree
    # cannot hold such a file, so the refusal is made here.
    real_open = builtins.open
    refused = {"speed", "name_assign_type"}

    def refusing_open(path, *args, **kwargs):
        if os.path.basename(str(path)) in refused and "eth1" in str(path):
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", refusing_open)
    eth1 = read("labvm-q35-constructed")["eth1"]
    assert (eth1["speed_mbps"], eth1["name_assign_type"], eth1["mac"]) == (None, None, "52:54:00:4c:ab:11")


def test_an_empty_root_has_no_interfaces(tmp_path):
    assert interfaces.read_interfaces(str(tmp_path)) == {}


def test_a_device_link_that_does_not_resolve_is_no_device(tmp_path):
    net_tree.add_interface(tmp_path, "eth9", {"address": "52:54:00:00:00:09"})
    (tmp_path / "sys/devices/virtual/net/eth9/device").symlink_to("../../../nowhere")
    eth9 = interfaces.read_interfaces(str(tmp_path))["eth9"]
    assert (eth9["physical"], eth9["driver"], eth9["pci_address"]) == (False, None, None)


def test_an_interface_without_a_link_layer_address_has_no_mac(tmp_path):
    # wireguard and tun interfaces have addr_len 0: the kernel writes an empty line.
    net_tree.add_interface(tmp_path, "wg0", {"address": "", "addr_assign_type": "0", "type": "65534",
                                             "uevent": "DEVTYPE=wireguard\nINTERFACE=wg0\nIFINDEX=9"})
    wg0 = interfaces.read_interfaces(str(tmp_path))["wg0"]
    assert (wg0["mac"], wg0["permanent_mac"], wg0["kind"], wg0["link_type"]) == (None, None, "wireguard", 65534)


def test_tap_and_tun_devices(tmp_path):
    # As a 6.18 kernel shows them (ip tuntap add ... mode tap / mode tun in a network namespace): no
    # DEVTYPE, tun_flags with the mode bit; the tun device has no link-layer address.
    net_tree.add_interface(tmp_path, "tap0", {"address": "2a:43:f4:b3:db:a6", "addr_assign_type": "1", "type": "1",
                                              "tun_flags": "0x1802", "uevent": "INTERFACE=tap0\nIFINDEX=2"})
    net_tree.add_interface(tmp_path, "tun0", {"address": "", "addr_assign_type": "0", "type": "65534",
                                              "tun_flags": "0x1801", "uevent": "INTERFACE=tun0\nIFINDEX=3"})
    nics = interfaces.read_interfaces(str(tmp_path))
    assert (nics["tap0"]["kind"], nics["tun0"]["kind"]) == ("tap", "tun")
    assert (nics["tun0"]["mac"], nics["tun0"]["permanent_mac"]) == (None, None)


@pytest.mark.parametrize(("mac", "assign", "bond_port", "expected"), [
    ("52:54:00:4c:ab:11", 0, None, "52:54:00:4c:ab:11"),  # as the driver read it from the NIC
    ("52:54:00:4c:ab:11", 3, None, None),  # set since: the burnt-in one is not in sysfs
    ("a0:36:9f:11:22:30", 3, "A0:36:9F:11:22:31", "a0:36:9f:11:22:31"),  # a bond port keeps its own
    ("82:ba:38:db:36:f2", 1, None, None),  # random
    ("a0:36:9f:11:22:30", 2, None, None),  # taken from another device (a bond, a VLAN)
    ("00:00:00:00:00:00", 0, None, None),  # loopback
    (None, None, None, None),
])
def test_permanent_mac(mac, assign, bond_port, expected):
    assert interfaces.permanent_mac(mac, assign, bond_port) == expected


def test_parse_vlan_config():
    text = (TREES / "proxmox-bond-bridge-constructed/proc/net/vlan/config").read_text()
    assert interfaces.parse_vlan_config(text) == {"vmbr0.20": {"vlan_id": 20, "lower": "vmbr0"}}
    assert interfaces.parse_vlan_config("") == {}


def test_select_by_bus_device_and_name_pattern():
    nics = read("proxmox-bond-bridge-constructed")
    assert list(interfaces.select(nics, physical_only=True)) == ["eno1", "eno2", "eno3", "eno4"]
    assert list(interfaces.select(nics, patterns=["vmbr*", "lo"])) == ["lo", "vmbr0", "vmbr0.20"]
    assert list(interfaces.select(nics, physical_only=True, patterns=["vmbr*"])) == []
    assert interfaces.select(nics) == nics


@pytest.mark.parametrize("tree", sorted(net_tree.CONSTRUCTED))
def test_constructed_trees_are_what_the_builder_makes(tree, tmp_path):
    # The trees are committed so other tests can read them; they must not drift from their description.
    net_tree.CONSTRUCTED[tree](tmp_path)

    def listing(root: Path) -> dict[str, str]:
        out = {}
        for path in sorted(root.rglob("*")):
            rel = str(path.relative_to(root))
            if path.is_symlink():
                out[rel] = "-> " + os.readlink(path)
            elif path.is_file():
                out[rel] = path.read_text()
            else:
                out[rel] = "dir"
        return out

    assert listing(tmp_path) == listing(TREES / tree)
