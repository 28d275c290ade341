# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A NIC's interrupts and their CPU affinity, read from sysfs and /proc.

Used by the nic_irq_affinity module and, unchanged, by the boot-time script the nic_tuning role
installs (IRQ numbers change between boots, so the boot script plans again from the NIC's MAC).
For that reason this file imports nothing but the standard library.

Every reader takes ``root`` (``/`` on a host, a fixture tree in tests). Nothing here writes,
except ``write_affinity``.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

NET = "sys/class/net"
CPU = "sys/devices/system/cpu"
NODE = "sys/devices/system/node"
PROC_IRQ = "proc/irq"
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")


class IrqError(ValueError):
    """A NIC, a CPU list or a policy that cannot be used; the message says which and why."""


def parse_cpulist(text: str, what: str = "cpu list") -> list[int]:
    """``"0-3,8,10-11"`` -> ``[0, 1, 2, 3, 8, 10, 11]`` (the kernel's cpulist syntax; empty -> [])."""
    cpus: set[int] = set()
    for raw in str(text).strip().split(","):
        item = raw.strip()
        if not item:
            continue
        match = _RANGE.match(item)
        if not match:
            raise IrqError(f"{what}: cannot read {item!r} in {text!r} (expected N or N-M, e.g. '0-3,8')")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        if last < first:
            raise IrqError(f"{what}: range {item!r} is reversed in {text!r}")
        cpus.update(range(first, last + 1))
    return sorted(cpus)


def format_cpulist(cpus: Iterable[int]) -> str:
    """``[0, 1, 2, 3, 8]`` -> ``"0-3,8"``: runs of two or more as ``a-b``, as the kernel prints them."""
    numbers = sorted(set(cpus))
    parts: list[str] = []
    start = 0
    for index in range(1, len(numbers) + 1):
        if index == len(numbers) or numbers[index] != numbers[index - 1] + 1:
            first, last = numbers[start], numbers[index - 1]
            parts.append(str(first) if first == last else f"{first}-{last}")
            start = index
    return ",".join(parts)


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            return handle.read().strip()
    except OSError:
        return None


def find_interface(root: str, mac: str | None = None, name: str | None = None) -> str:
    """The interface name of the NIC with ``mac`` (current or bonding-permanent address) or ``name``."""
    net = os.path.join(root, NET)
    if name:
        if not os.path.isdir(os.path.join(net, name)):
            raise IrqError(f"no interface named {name}")
        return name
    wanted = str(mac or "").strip().lower()
    if not _MAC.match(wanted):
        raise IrqError(f"{mac!r} is not a MAC address (expected six hex pairs, e.g. 52:54:00:4c:ab:11)")
    for ifname in sorted(os.listdir(net)) if os.path.isdir(net) else []:
        base = os.path.join(net, ifname)
        # A bonding slave carries the bond's MAC; its own is kept in bonding_slave/perm_hwaddr.
        addresses = {_read(os.path.join(base, "address")), _read(os.path.join(base, "bonding_slave", "perm_hwaddr"))}
        if wanted in addresses and os.path.exists(os.path.join(base, "device")):
            return ifname
    raise IrqError(f"no interface with MAC {wanted} on a bus device")


def _device_dir(root: str, ifname: str) -> str:
    """The bus device that owns the NIC's interrupts.

    For most NICs that is ``device`` itself; for virtio-net, ``device`` is the virtio device and
    the interrupts belong to the PCI function above it.
    """
    device = os.path.realpath(os.path.join(root, NET, ifname, "device"))
    if not os.path.isdir(device):
        raise IrqError(f"{ifname} is not on a bus device (virtual interfaces have no interrupts of their own)")
    for candidate in (device, os.path.dirname(device)):
        if os.path.isdir(os.path.join(candidate, "msi_irqs")) or _int(_read(os.path.join(candidate, "irq"))):
            return candidate
    return device


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def nic_irqs(root: str, ifname: str) -> list[int]:
    """The NIC's IRQ numbers: its MSI/MSI-X vectors, else its legacy INTx line, else []."""
    device = _device_dir(root, ifname)
    msi = os.path.join(device, "msi_irqs")
    if os.path.isdir(msi):
        numbers = [int(entry) for entry in os.listdir(msi) if entry.isdigit()]
        if numbers:
            return sorted(numbers)
    legacy = _int(_read(os.path.join(device, "irq")))
    return [legacy] if legacy else []


def numa_node(root: str, ifname: str) -> int:
    """The NIC's NUMA node; -1 when the firmware gives none (single-node machines, most VMs)."""
    value = _int(_read(os.path.join(_device_dir(root, ifname), "numa_node")))
    return -1 if value is None else value


def online_cpus(root: str) -> list[int]:
    text = _read(os.path.join(root, CPU, "online"))
    if text is None:
        raise IrqError(f"cannot read {os.path.join('/', CPU, 'online')}")
    return parse_cpulist(text, "/sys/devices/system/cpu/online")


def isolated_cpus(root: str) -> list[int]:
    """CPUs kept from the scheduler with ``isolcpus=`` ([] when the file is missing or empty)."""
    return parse_cpulist(_read(os.path.join(root, CPU, "isolated")) or "", "/sys/devices/system/cpu/isolated")


def node_cpus(root: str, node: int) -> list[int]:
    text = _read(os.path.join(root, NODE, f"node{node}", "cpulist"))
    if text is None:
        raise IrqError(f"cannot read /sys/devices/system/node/node{node}/cpulist")
    return parse_cpulist(text, f"node{node} cpulist")


def current_affinity(root: str, irq: int) -> list[int] | None:
    """The IRQ's affinity list, or None when the IRQ has no /proc entry (never requested by its driver)."""
    text = _read(os.path.join(root, PROC_IRQ, str(irq), "smp_affinity_list"))
    return None if text is None else parse_cpulist(text, f"/proc/irq/{irq}/smp_affinity_list")


def allowed_cpus(root: str, ifname: str, policy: str = "numa", exclude: Sequence[int] = (),
                 exclude_isolated: bool = True) -> dict[str, Any]:
    """The CPUs the NIC's interrupts may use, and how they were chosen.

    ``policy`` is ``numa`` (the online CPUs of the NIC's node; all online CPUs when the node is
    unknown) or an explicit cpulist. Isolated CPUs (unless ``exclude_isolated`` is false) and
    ``exclude`` are removed. Raises IrqError when nothing is left or an explicit CPU is offline.
    """
    online = online_cpus(root)
    node = numa_node(root, ifname)
    if policy == "numa":
        base = online if node < 0 else [cpu for cpu in node_cpus(root, node) if cpu in online]
        source = "all online CPUs (no NUMA node)" if node < 0 else f"NUMA node {node}"
    else:
        base = parse_cpulist(policy, "cpus")
        offline = [cpu for cpu in base if cpu not in online]
        if offline:
            raise IrqError(f"{ifname}: CPU(s) {format_cpulist(offline)} of cpus {policy!r} are not online "
                           f"(online: {format_cpulist(online)})")
        source = f"cpus {format_cpulist(base)}"
    isolated = isolated_cpus(root) if exclude_isolated else []
    removed = set(isolated) | set(exclude)
    allowed = [cpu for cpu in base if cpu not in removed]
    if not allowed:
        raise IrqError(
            f"{ifname}: no CPU is left for its interrupts: {source} gives {format_cpulist(base) or 'none'}, "
            f"minus isolated {format_cpulist(isolated) or 'none'} and exclude_cpus {format_cpulist(exclude) or 'none'}")
    return {"cpus": allowed, "numa_node": node, "source": source, "isolated": isolated}


def plan_affinity(irqs: Sequence[int], current: Mapping[int, list[int] | None],
                  allowed: Sequence[int]) -> dict[str, Any]:
    """One CPU per IRQ, round-robin over ``allowed``, so that the queues of a multi-queue NIC land
    on different cores.

    Returns ``wanted`` ({irq: [cpu]}) for the IRQs that have a /proc entry, ``differ`` (those whose
    current affinity is not the wanted one) and ``inactive`` (IRQs without a /proc entry: the driver
    has not requested them, typically because the interface was never brought up).
    """
    if not allowed:
        raise IrqError("no CPU allowed for the interrupts")
    wanted: dict[int, list[int]] = {}
    differ: list[int] = []
    inactive: list[int] = []
    for index, irq in enumerate(irqs):
        target = [allowed[index % len(allowed)]]
        if current.get(irq) is None:
            inactive.append(irq)
            continue
        wanted[irq] = target
        if current[irq] != target:
            differ.append(irq)
    return {"wanted": wanted, "differ": differ, "inactive": inactive}


def write_affinity(root: str, irq: int, cpus: Sequence[int]) -> bool:
    """Write the affinity; False when the kernel manages the IRQ itself (EIO), True when written."""
    path = os.path.join(root, PROC_IRQ, str(irq), "smp_affinity_list")
    try:
        with open(path, "w", encoding="ascii") as handle:
            handle.write(format_cpulist(cpus) + "\n")
    except OSError as err:
        if err.errno == errno.EIO:
            return False
        raise IrqError(f"writing {format_cpulist(cpus)} to /proc/irq/{irq}/smp_affinity_list failed: "
                       f"{err.strerror}") from err
    return True


def read_nic(root: str, mac: str | None = None, name: str | None = None, policy: str = "numa",
             exclude: Sequence[int] = (), exclude_isolated: bool = True) -> dict[str, Any]:
    """Everything about one NIC's interrupts plus the plan: interface, irqs, current, allowed, plan."""
    ifname = find_interface(root, mac=mac, name=name)
    irqs = nic_irqs(root, ifname)
    if not irqs:
        raise IrqError(f"{ifname}: the device has no MSI/MSI-X vectors and no legacy IRQ")
    allowed = allowed_cpus(root, ifname, policy, exclude, exclude_isolated)
    current = {irq: current_affinity(root, irq) for irq in irqs}
    return {"interface": ifname, "mac": _read(os.path.join(root, NET, ifname, "address")), "irqs": irqs,
            "current": current, "allowed": allowed, "plan": plan_affinity(irqs, current, allowed["cpus"])}


def apply_config(root: str, nics: Iterable[Mapping[str, Any]]) -> list[str]:
    """Boot-time use: plan and write each configured NIC; returns one log line per NIC.

    A NIC that is missing, down since boot or refused is logged and skipped, so that one NIC
    cannot keep the others from being set.
    """
    lines = []
    for entry in nics:
        mac = str(entry.get("mac", ""))
        try:
            state = read_nic(root, mac=mac, policy=str(entry.get("cpus", "numa")),
                             exclude=parse_cpulist(str(entry.get("exclude_cpus", "")), "exclude_cpus"),
                             exclude_isolated=bool(entry.get("exclude_isolated", True)))
        except IrqError as err:
            lines.append(f"{mac}: skipped: {err}")
            continue
        written: list[str] = []
        managed: list[str] = []
        for irq in state["plan"]["differ"]:
            target = state["plan"]["wanted"][irq]
            try:
                (written if write_affinity(root, irq, target) else managed).append(f"{irq}:{format_cpulist(target)}")
            except IrqError as err:
                lines.append(f"{mac} ({state['interface']}): {err}")
        inactive = state["plan"]["inactive"]
        lines.append(f"{mac} ({state['interface']}): set {' '.join(written) or 'nothing'}"
                     + (f"; left to the kernel {' '.join(managed)}" if managed else "")
                     + (f"; not requested yet (interface never up) {format_cpulist(inactive)}" if inactive else ""))
    return lines


def banned(root: str, nics: Iterable[Mapping[str, Any]], irq: int) -> bool:
    """irqbalance policy: whether ``irq`` belongs to one of the configured NICs."""
    for entry in nics:
        try:
            ifname = find_interface(root, mac=str(entry.get("mac", "")))
            if irq in nic_irqs(root, ifname):
                return True
        except IrqError:
            continue
    return False
