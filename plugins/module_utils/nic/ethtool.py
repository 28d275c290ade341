# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure parsers for ``ethtool -g/-l/-c/-k/-P`` and ``ip -j -d link`` output (C locale).

Keys are the parameter names ``ethtool -G/-L/-C/-K`` accept, so a parsed value can be
compared with a wanted one and written back under the same name. ``n/a`` (the driver does
not implement the parameter) parses to None.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Labels of ``ethtool -g`` / ``-l`` sections -> ``ethtool -G`` / ``-L`` parameter names.
RING_LABELS = {"RX": "rx", "RX Mini": "rx-mini", "RX Jumbo": "rx-jumbo", "TX": "tx"}
CHANNEL_LABELS = {"RX": "rx", "TX": "tx", "Other": "other", "Combined": "combined"}
MAX_HEADER = "Pre-set maximums:"
CURRENT_HEADER = "Current hardware settings:"


class ParseError(ValueError):
    """Output that does not look like the tool's (wrong command, another locale, a new format)."""


def _number(value: str) -> int | None:
    value = value.strip()
    if value == "n/a":
        return None
    if not re.fullmatch(r"\d+", value):
        raise ParseError(f"not a number: {value!r}")
    return int(value)


def _sections(text: str, labels: dict[str, str], what: str) -> dict[str, dict[str, int | None]]:
    """The maximum and current blocks of ``ethtool -g`` or ``-l``; labels outside ``labels`` are skipped."""
    result: dict[str, dict[str, int | None]] = {"max": {}, "current": {}}
    section: str | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped == MAX_HEADER:
            section = "max"
            continue
        if stripped == CURRENT_HEADER:
            section = "current"
            continue
        if section is None or ":" not in stripped:
            continue
        label, _sep, value = stripped.partition(":")
        key = labels.get(label.strip())
        if key is not None and key not in result[section]:
            result[section][key] = _number(value)
    if not result["max"] or not result["current"]:
        raise ParseError(f"no '{MAX_HEADER}' and '{CURRENT_HEADER}' blocks in {what} output")
    return result


def parse_rings(text: str) -> dict[str, dict[str, int | None]]:
    """``ethtool -g IF`` -> ``{"max": {"rx": 4096, ...}, "current": {"rx": 256, ...}}``."""
    return _sections(text, RING_LABELS, "ethtool -g")


def parse_channels(text: str) -> dict[str, dict[str, int | None]]:
    """``ethtool -l IF`` -> ``{"max": {"combined": 1, ...}, "current": {...}}``."""
    return _sections(text, CHANNEL_LABELS, "ethtool -l")


def _on_off(value: str) -> bool | None:
    value = value.strip()
    if value == "n/a":
        return None
    if value in ("on", "off"):
        return value == "on"
    raise ParseError(f"not on/off/n/a: {value!r}")


def parse_coalesce(text: str) -> dict[str, int | bool | None]:
    """``ethtool -c IF`` -> ``{"adaptive-rx": None, "rx-usecs": 3, ...}`` (adaptive and CQE modes as bool)."""
    result: dict[str, int | bool | None] = {}
    lines = text.splitlines()
    if not lines or not lines[0].startswith("Coalesce parameters for "):
        raise ParseError("ethtool -c output does not start with 'Coalesce parameters for'")
    for line in lines[1:]:
        stripped = line.strip()
        # "Adaptive RX: off  TX: n/a" and "CQE mode RX: n/a  TX: n/a" carry two values.
        pair = re.fullmatch(r"(Adaptive|CQE mode) RX:\s*(\S+)\s+TX:\s*(\S+)", stripped)
        if pair:
            prefix = "adaptive" if pair.group(1) == "Adaptive" else "cqe-mode"
            result[f"{prefix}-rx"] = _on_off(pair.group(2))
            result[f"{prefix}-tx"] = _on_off(pair.group(3))
            continue
        match = re.fullmatch(r"([a-z][a-z0-9-]*):\s*(\S+)", stripped)
        if match:
            result[match.group(1)] = _number(match.group(2))
    return result


def parse_features(text: str) -> dict[str, dict[str, bool]]:
    """``ethtool -k IF`` -> ``{"generic-receive-offload": {"on": True, "fixed": False}, ...}``.

    Sub-features (indented lines) are kept under their own names; ``[requested on]`` means the
    driver keeps the feature off although it was asked for, so ``on`` is the active state.
    """
    lines = text.splitlines()
    if not lines or not lines[0].startswith("Features for "):
        raise ParseError("ethtool -k output does not start with 'Features for'")
    result: dict[str, dict[str, bool]] = {}
    for line in lines[1:]:
        match = re.fullmatch(r"\s*([a-z0-9][a-z0-9_-]*): (on|off)( \[fixed\]| \[requested (?:on|off)\])?\s*", line)
        if not match:
            continue
        result[match.group(1)] = {"on": match.group(2) == "on", "fixed": match.group(3) == " [fixed]"}
    if not result:
        raise ParseError("no features in ethtool -k output")
    return result


def parse_driver(text: str) -> str:
    """``ethtool -i IF`` -> the driver name (``e1000e``, ``ixgbe``, ``mlx5_core``, ``igb``)."""
    match = re.search(r"^driver:\s*(\S+)", text, re.MULTILINE)
    if not match:
        raise ParseError("no 'driver:' line in ethtool -i output")
    return match.group(1)


def parse_permanent_address(text: str) -> str | None:
    """``ethtool -P IF`` -> the permanent MAC in lower case, None when the device has none (all zeros)."""
    match = re.search(r"Permanent address:\s*([0-9a-fA-F:]{17})", text)
    if not match:
        raise ParseError("no 'Permanent address:' in ethtool -P output")
    mac = match.group(1).lower()
    return None if mac == "00:00:00:00:00:00" else mac


LINK_FIELDS = ("ifname", "address", "permaddr", "mtu", "min_mtu", "max_mtu", "operstate", "parentbus",
               "parentdev", "altnames", "link_type")


def parse_ip_links(text: str) -> list[dict[str, Any]]:
    """``ip -j -d link show`` -> one dict per interface with the fields this collection uses."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ParseError(f"ip -j link output is not JSON: {exc}") from None
    if not isinstance(data, list):
        raise ParseError("ip -j link output is not a list")
    links = []
    for item in data:
        link = {key: item.get(key) for key in LINK_FIELDS}
        link["altnames"] = list(link["altnames"] or [])
        for key in ("address", "permaddr"):
            if isinstance(link[key], str):
                link[key] = link[key].lower()
        links.append(link)
    return links


def normalize_mac(mac: str) -> str:
    """``52-54-00-4C-AB-11`` or ``52:54:00:4c:ab:11`` -> ``52:54:00:4c:ab:11``; ValueError otherwise."""
    parts = re.split(r"[:-]", mac.strip().lower())
    if len(parts) != 6 or not all(re.fullmatch(r"[0-9a-f]{2}", p) for p in parts):
        raise ValueError(f"not a MAC address: {mac!r}")
    return ":".join(parts)


def select_link(links: list[dict[str, Any]], name: str | None = None, mac: str | None = None) -> dict[str, Any]:
    """The one interface with ``name``, or the one physical interface whose (permanent) MAC is ``mac``.

    VLANs, bridges and bonds carry their port's MAC; they have no parent bus device, so only
    interfaces with one are candidates for a MAC match. LookupError when none or several match.
    """
    if name is not None:
        found = [link for link in links if link["ifname"] == name or name in link["altnames"]]
        if not found:
            raise LookupError(f"no interface named {name}")
        return found[0]
    if mac is None:
        raise LookupError("give a name or a MAC")
    wanted = normalize_mac(mac)
    found = [link for link in links
             if link.get("parentbus") and wanted in (link.get("permaddr"), link.get("address"))]
    if not found:
        raise LookupError(f"no interface with MAC {wanted} on a bus device (ip -j -d link show)")
    if len(found) > 1:
        names = ", ".join(sorted(link["ifname"] for link in found))
        raise LookupError(f"MAC {wanted} matches several interfaces: {names}")
    return found[0]
