# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Proxmox VE property strings (``virtio,bridge=vmbr0,tag=10``) as dicts and back.

Proxmox stores most VM options as one comma-separated ``key=value`` string. One
key per option may be written without its name (the "default key"), and NIC
models double as keys whose value is the MAC address (``virtio=BC:24:...``).
"""

from __future__ import annotations

import re
from typing import Any

# The option's default key: the value written first without ``key=``.
DEFAULT_KEYS = {
    "hostpci": "host",
    "net": "model",
    "scsi": "file",
    "virtio": "file",
    "sata": "file",
    "ide": "file",
    "efidisk": "file",
    "tpmstate": "file",
    "unused": "file",
    "machine": "type",
    "memory": "current",
    "cpu": "cputype",
    "boot": "legacy",
    "agent": "enabled",
    "vga": "type",
}

# net[n]: ``<model>=<MAC>`` is shorthand for ``model=<model>,macaddr=<MAC>``.
NIC_MODELS = frozenset(
    (
        "e1000",
        "e1000-82540em",
        "e1000-82544gc",
        "e1000-82545em",
        "e1000e",
        "i82551",
        "i82557b",
        "i82559er",
        "ne2k_isa",
        "ne2k_pci",
        "pcnet",
        "rtl8139",
        "virtio",
        "vmxnet3",
    )
)

_INDEXED = re.compile(r"^([a-z][a-z_-]*?)(\d+)$")


def option_base(key: str) -> str:
    """``hostpci3`` -> ``hostpci``, ``efidisk0`` -> ``efidisk``, ``cores`` -> ``cores``."""
    match = _INDEXED.match(key)
    return match.group(1) if match else key


def parse(key: str, value: Any) -> dict[str, str]:
    """Split the property string of option ``key`` into ``{subkey: text}``.

    Raises ValueError for a subkey given twice or a second unnamed item.
    """
    base = option_base(key)
    default_key = DEFAULT_KEYS.get(base)
    result: dict[str, str] = {}
    for item in str(value).split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, text = item.partition("=")
        if not sep:
            if default_key is None or default_key in result:
                raise ValueError(f"{key}: {item!r} has no key and {key} has no (free) default key")
            name, text = default_key, item
        elif base == "net" and name in NIC_MODELS:
            result["model"] = name
            name = "macaddr"
        if name in result:
            raise ValueError(f"{key}: {name!r} is given twice")
        result[name] = text
    return result


def render(key: str, fields: dict[str, Any]) -> str:
    """Build the property string for option ``key``; the default key goes first, unnamed."""
    default_key = DEFAULT_KEYS.get(option_base(key))
    parts: list[str] = []
    if default_key is not None and default_key in fields:
        parts.append(str(fields[default_key]))
    parts += [f"{name}={fields[name]}" for name in fields if name != default_key]
    return ",".join(parts)
