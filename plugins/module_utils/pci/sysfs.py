# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read PCI functions and IOMMU groups from a sysfs tree.

Pure apart from reading files below ``root`` (``/`` on a host; a fixture tree in tests).
Only the attributes the kernel exports are read; nothing runs ``lspci``. A missing
attribute is None: virtual machines lack link attributes, kernels without an IOMMU have
no ``iommu_group`` link and no ``/sys/kernel/iommu_groups`` entries.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from ansible_collections.onprem.gpu_server.plugins.module_utils.host.sysfs import link_name, read_attr, to_int
from ansible_collections.onprem.gpu_server.plugins.module_utils.pci.address import parse

DEVICES = "sys/bus/pci/devices"
IOMMU_GROUPS = "sys/kernel/iommu_groups"

GPU_BASE_CLASS = "03"
BRIDGE_CLASS = "0604"


def normalize_address(text: str) -> tuple[str, int | None]:
    """``0b:00.0`` / ``0000:0b:00.0`` / ``0b:00`` -> (``0000:0b:00``, function or None); AddressError otherwise."""
    address = parse(text)
    return address.device, address.function


def _hex(value: str | None, width: int) -> str | None:
    if value is None:
        return None
    digits = value.lower().removeprefix("0x")
    return digits.zfill(width) if re.fullmatch(r"[0-9a-f]+", digits) else None


def _speed(value: str | None) -> str | None:
    return None if value in (None, "", "Unknown", "Unknown speed") else value


def read_function(root: str, address: str) -> dict[str, Any]:
    """All known fields of one function (``address`` as named in ``/sys/bus/pci/devices``)."""
    base = os.path.join(root, DEVICES, address)
    pci_class = _hex(read_attr(os.path.join(base, "class")), 6)
    vendor = _hex(read_attr(os.path.join(base, "vendor")), 4)
    device = _hex(read_attr(os.path.join(base, "device")), 4)
    numa = to_int(read_attr(os.path.join(base, "numa_node")))
    group = link_name(os.path.join(base, "iommu_group"))
    override = read_attr(os.path.join(base, "driver_override"))
    width = to_int(read_attr(os.path.join(base, "current_link_width")))
    max_width = to_int(read_attr(os.path.join(base, "max_link_width")))
    return {
        "address": address,
        "slot": address.rsplit(".", 1)[0],
        "function": int(address.rsplit(".", 1)[1], 16),
        "class": pci_class,
        "vendor": vendor,
        "device": device,
        "id": f"{vendor}:{device}" if vendor and device else None,
        "subsystem_vendor": _hex(read_attr(os.path.join(base, "subsystem_vendor")), 4),
        "subsystem_device": _hex(read_attr(os.path.join(base, "subsystem_device")), 4),
        "revision": _hex(read_attr(os.path.join(base, "revision")), 2),
        "driver": link_name(os.path.join(base, "driver")),
        "driver_module": link_name(os.path.join(base, "driver", "module")),
        "driver_override": None if override in (None, "", "(null)") else override,
        # The kernel reports -1 when the platform does not say which node a device hangs off.
        "numa_node": None if numa is None or numa < 0 else numa,
        "iommu_group": to_int(group),
        "current_link_speed": _speed(read_attr(os.path.join(base, "current_link_speed"))),
        "current_link_width": width or None,
        "max_link_speed": _speed(read_attr(os.path.join(base, "max_link_speed"))),
        "max_link_width": max_width or None,
    }


def read_functions(root: str) -> dict[str, dict[str, Any]]:
    """Every function under ``/sys/bus/pci/devices``, keyed and sorted by address."""
    base = os.path.join(root, DEVICES)
    try:
        names = sorted(os.listdir(base))
    except FileNotFoundError:
        return {}
    return {name: read_function(root, name) for name in names if not name.startswith(".")}


def read_iommu_groups(root: str) -> dict[str, list[str]]:
    """``/sys/kernel/iommu_groups/<n>/devices/*``: ``{"30": ["0000:0b:00.0", ...]}`` in numeric order."""
    base = os.path.join(root, IOMMU_GROUPS)
    try:
        groups = [name for name in os.listdir(base) if name.isdigit()]
    except FileNotFoundError:
        return {}
    result = {}
    for group in sorted(groups, key=int):
        try:
            members = sorted(os.listdir(os.path.join(base, group, "devices")))
        except FileNotFoundError:
            members = []
        result[group] = members
    return result


def is_bridge(function: Mapping[str, Any]) -> bool:
    """PCI-to-PCI bridges (class 0x0604) may share a group with passed-through devices."""
    return (function.get("class") or "").startswith(BRIDGE_CLASS)


def functions_of_slot(functions: Mapping[str, Mapping[str, Any]], slot: str) -> list[str]:
    """Addresses of every function of one device (same domain:bus:slot)."""
    return [address for address, info in functions.items() if info["slot"] == slot]


def gpus(functions: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per device that has a display-class (0x03xx) function, with its sibling functions."""
    slots = sorted({info["slot"] for info in functions.values()
                    if (info["class"] or "").startswith(GPU_BASE_CLASS)})
    result = []
    for slot in slots:
        members = functions_of_slot(functions, slot)
        display = next(a for a in members if (functions[a]["class"] or "").startswith(GPU_BASE_CLASS))
        main = functions[display]
        result.append({
            "address": display,
            "slot": slot,
            "id": main["id"],
            "class": main["class"],
            "driver": main["driver"],
            "numa_node": main["numa_node"],
            "iommu_groups": sorted({functions[a]["iommu_group"] for a in members
                                    if functions[a]["iommu_group"] is not None}),
            "current_link_speed": main["current_link_speed"],
            "current_link_width": main["current_link_width"],
            "max_link_speed": main["max_link_speed"],
            "max_link_width": main["max_link_width"],
            "functions": [
                {key: functions[a][key] for key in ("address", "class", "id", "driver", "iommu_group")}
                for a in members
            ],
        })
    return result


def collect(root: str = "/") -> dict[str, Any]:
    """The ``pci`` facts: functions, GPUs with their siblings, IOMMU groups."""
    functions = read_functions(root)
    groups = read_iommu_groups(root)
    if not groups:
        # Older layouts only have the per-device link; build the groups from it.
        for address, info in functions.items():
            if info["iommu_group"] is not None:
                groups.setdefault(str(info["iommu_group"]), []).append(address)
        groups = {key: sorted(groups[key]) for key in sorted(groups, key=int)}
    return {
        "devices": functions,
        "gpus": gpus(functions),
        "iommu_groups": groups,
        "iommu_enabled": bool(groups),
    }
