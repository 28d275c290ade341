# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host's network interfaces, read once from ``/sys/class/net`` below a root.

``root`` is ``/`` on a host and a fixture tree in tests. Nothing runs a command, so a value sysfs
does not export is None (ethtool and ip read more, through ioctl and netlink). Two attributes need
care:

- Reading ``speed`` fails with EINVAL when the interface is down or its driver has no link settings
  (``lo``, ``ifb``), and ``name_assign_type`` fails with EINVAL when the kernel does not know how
  the name was given (most virtual interfaces). A refused read is the same as a missing file: None.
- sysfs has no file for the permanent (burnt-in) MAC that ``ethtool -P`` reports. It is the current
  address when ``addr_assign_type`` is 0 (``NET_ADDR_PERM``: the kernel copied it to the permanent
  address at registration and nothing has set another since), and ``bonding_slave/perm_hwaddr``
  for a bond port (the bond gave it the bond's address). Otherwise it is None here, though the NIC
  has one: ``ethtool -P`` or ``ip -d link``'s ``permaddr`` reads it over the ioctl/netlink path.

Standard library only (with ``pci/address.py``), so a program that runs on the host can use it
as well as a module.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase
from typing import Any

from ansible_collections.onprem.gpu_server.plugins.module_utils.host.sysfs import link_name, read_attr, to_int
from ansible_collections.onprem.gpu_server.plugins.module_utils.pci.address import function_dir

NET = "sys/class/net"
VLAN_CONFIG = "proc/net/vlan/config"

# include/uapi/linux/netdevice.h: how the kernel got the MAC (addr_assign_type).
NET_ADDR_PERM = 0
# include/uapi/linux/if_arp.h: ARPHRD_LOOPBACK (the ``type`` file).
ARPHRD_LOOPBACK = 772
# include/uapi/linux/if_tun.h: the mode bits of ``tun_flags`` (tap0 reads 0x1802, tun0 0x1801).
IFF_TUN = 0x0001
IFF_TAP = 0x0002
# name_assign_type 1 (NET_NAME_ENUM): ethN by probe order, a name a reboot can give to another NIC.
# Roles that refuse such names compare with it.
NET_NAME_ENUM = 1
NO_MAC = "00:00:00:00:00:00"


def parse_vlan_config(text: str) -> dict[str, dict[str, Any]]:
    """``/proc/net/vlan/config`` -> ``{"vmbr0.20": {"vlan_id": 20, "lower": "vmbr0"}}``.

    The file has two header lines, then ``<name> | <id> | <lower>`` per VLAN interface.
    """
    vlans: dict[str, dict[str, Any]] = {}
    for line in text.splitlines():
        fields = [field.strip() for field in line.split("|")]
        if len(fields) != 3 or not fields[1].isdigit():
            continue
        vlans[fields[0]] = {"vlan_id": int(fields[1]), "lower": fields[2]}
    return vlans


def permanent_mac(mac: str | None, addr_assign_type: int | None, bond_port_mac: str | None) -> str | None:
    """The burnt-in MAC as far as sysfs tells it (see the module docstring); None when it does not."""
    if bond_port_mac:
        return bond_port_mac.lower()
    if addr_assign_type == NET_ADDR_PERM and mac and mac != NO_MAC:
        return mac
    return None


def interface_kind(
    is_bridge: bool,
    is_bond: bool,
    devtype: str | None,
    is_vlan: bool,
    link_type: int | None,
    tun_flags: int | None = None,
) -> str | None:
    """``bridge``, ``bond``, ``vlan``, ``loopback``, ``tap``, ``tun`` or the DEVTYPE the driver gives
    (``wlan``, ``vxlan``, ``wireguard``...); None for plain Ethernet devices and virtual ones that
    sysfs cannot tell apart cheaply (``veth``, ``dummy``, ``ifb``)."""
    if is_bridge:
        return "bridge"
    if is_bond:
        return "bond"
    if devtype:
        return devtype
    if is_vlan:
        return "vlan"
    if link_type == ARPHRD_LOOPBACK:
        return "loopback"
    # tun/tap devices (a Proxmox VM's tap100i0) give no DEVTYPE but have tun_flags.
    if tun_flags is not None:
        return "tap" if tun_flags & IFF_TAP else "tun" if tun_flags & IFF_TUN else None
    return None


def _uevent(text: str | None) -> dict[str, str]:
    values = {}
    for line in (text or "").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key] = value
    return values


def read_interface(root: str, name: str, vlans: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """Every field of interface ``name``; ``vlans`` is ``parse_vlan_config``'s result (read if None)."""
    if vlans is None:
        vlans = read_vlan_config(root)
    base = os.path.join(root, NET, name)
    device = os.path.join(base, "device")
    # The device link points at the bus device (a PCI function, or a virtio/USB device below one);
    # virtual interfaces have none. A link that does not resolve counts as none.
    physical = os.path.exists(device)
    pci_dir = None
    if physical:
        real_root = os.path.realpath(root)
        # Only the part below root is searched: a fixture tree's own path is not sysfs.
        below = function_dir(os.path.relpath(os.path.realpath(device), real_root))
        pci_dir = os.path.join(real_root, below) if below else None
    # The PCI function knows its node; a virtio or USB device below it exports none.
    numa = to_int(read_attr(os.path.join(pci_dir or device, "numa_node")))
    mac = (read_attr(os.path.join(base, "address")) or "").lower() or None
    addr_assign_type = to_int(read_attr(os.path.join(base, "addr_assign_type")))
    link_type = to_int(read_attr(os.path.join(base, "type")))
    entries = _listdir(base)
    return {
        "name": name,
        "mac": mac,
        "permanent_mac": permanent_mac(
            mac, addr_assign_type, read_attr(os.path.join(base, "bonding_slave", "perm_hwaddr"))
        ),
        "addr_assign_type": addr_assign_type,
        "name_assign_type": to_int(read_attr(os.path.join(base, "name_assign_type"))),
        "physical": physical,
        "driver": link_name(os.path.join(device, "driver")) if physical else None,
        "pci_address": os.path.basename(pci_dir) if pci_dir else None,
        # The kernel writes -1 when the platform does not say which node the device hangs off.
        "numa_node": None if numa is None or numa < 0 else numa,
        # Kept as the kernel writes it: -1 is the driver saying it does not know (SPEED_UNKNOWN,
        # virtio-net), which differs from None (link down, or no link settings at all).
        "speed_mbps": to_int(read_attr(os.path.join(base, "speed"))),
        "operstate": read_attr(os.path.join(base, "operstate")),
        "mtu": to_int(read_attr(os.path.join(base, "mtu"))),
        "link_type": link_type,
        "kind": interface_kind(
            os.path.isdir(os.path.join(base, "bridge")),
            os.path.isdir(os.path.join(base, "bonding")),
            _uevent(read_attr(os.path.join(base, "uevent"))).get("DEVTYPE"),
            name in vlans,
            link_type,
            to_int(read_attr(os.path.join(base, "tun_flags")), 16),
        ),
        "master": link_name(os.path.join(base, "master")),
        # lower_<name> links: a bridge's ports, a bond's ports, a VLAN's parent.
        "lowers": sorted(entry[len("lower_"):] for entry in entries if entry.startswith("lower_")),
        "vlan_id": (vlans.get(name) or {}).get("vlan_id"),
    }


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def read_vlan_config(root: str) -> dict[str, dict[str, Any]]:
    """``parse_vlan_config`` of the root's ``/proc/net/vlan/config``; {} when 8021q is not loaded."""
    text = read_attr(os.path.join(root, VLAN_CONFIG))
    return parse_vlan_config(text) if text else {}


def read_interfaces(root: str = "/") -> dict[str, dict[str, Any]]:
    """Every interface in ``/sys/class/net``, keyed and sorted by name."""
    vlans = read_vlan_config(root)
    names = sorted(name for name in _listdir(os.path.join(root, NET)) if not name.startswith("."))
    return {name: read_interface(root, name, vlans) for name in names}


def select(
    interfaces: Mapping[str, Mapping[str, Any]], physical_only: bool = False, patterns: Iterable[str] = ()
) -> dict[str, dict[str, Any]]:
    """The interfaces to report: only those with a bus device when ``physical_only``, and only names
    matching one of the shell-style ``patterns`` (``eno*``, ``vmbr0``) when there are any."""
    patterns = list(patterns)
    return {
        name: dict(info)
        for name, info in interfaces.items()
        if (not physical_only or info["physical"])
        and (not patterns or any(fnmatchcase(name, pattern) for pattern in patterns))
    }
