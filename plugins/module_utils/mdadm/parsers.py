# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure parsers for mdadm output, ``/proc/mdstat`` and ``mdadm.conf`` (text in, dict out)."""

from __future__ import annotations

import re
from typing import Any

_MDSTAT_HEAD = re.compile(r"^(?P<name>md\S+)\s*:\s*(?P<state>\S+)\s*(?P<rest>.*)$")
_MDSTAT_MEMBER = re.compile(r"^(?P<name>[^\[\s]+)\[(?P<slot>\d+)\](?P<flags>(?:\([A-Z]\))*)$")
_MDSTAT_COUNT = re.compile(r"\[(?P<raid>\d+)/(?P<active>\d+)\]\s+\[(?P<map>[U_]+)\]")
_LEVELS = ("raid0", "raid1", "raid4", "raid5", "raid6", "raid10", "linear", "multipath", "faulty")


def parse_mdadm_export(text: str) -> dict[str, Any]:
    """``mdadm --detail --export`` or ``mdadm --examine --export`` -> dict.

    Scalar ``MD_*`` keys are kept by name; ``MD_DEVICE_<dev>_ROLE/_DEV`` pairs become
    ``members``: [{'dev', 'role'}] ordered by role (roles may be numbers or words
    such as ``spare``).
    """
    values: dict[str, Any] = {}
    devices: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        if "=" not in line:
            continue
        key, value = line.strip().split("=", 1)
        match = re.match(r"^MD_DEVICE_(?P<id>.+)_(?P<field>ROLE|DEV)$", key)
        if match:
            devices.setdefault(match.group("id"), {})[match.group("field").lower()] = value
        else:
            values[key] = value
    members = [{"dev": d.get("dev", ""), "role": d.get("role", "")} for d in devices.values()]
    members.sort(key=lambda m: (not m["role"].isdigit(), int(m["role"]) if m["role"].isdigit() else 0, m["dev"]))
    values["members"] = members
    return values


def parse_mdstat(text: str) -> dict[str, Any]:
    """``/proc/mdstat`` -> {'personalities': [...], 'arrays': {mdN: {...}}}.

    Each array: state (active/inactive), readonly flag, level, members [{name, slot,
    faulty, spare}], raid_disks/active_disks and the [U_] map where the kernel prints
    them (not for raid0/linear), degraded, and the resync/recovery line if any.
    """
    personalities: list[str] = []
    arrays: dict[str, Any] = {}
    current: dict[str, Any] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("Personalities"):
            personalities = re.findall(r"\[(\w+)\]", line)
            continue
        if not line or line.startswith("unused devices"):
            current = None
            continue
        head = _MDSTAT_HEAD.match(line)
        if head and not raw[:1].isspace():
            words = head.group("rest").split()
            readonly = bool(words) and words[0].startswith("(")
            if readonly:
                words = words[1:]
            level = words[0] if words and words[0] in _LEVELS else None
            members = []
            for word in words[1 if level else 0:]:
                member = _MDSTAT_MEMBER.match(word)
                if member:
                    flags = member.group("flags")
                    members.append({"name": member.group("name"), "slot": int(member.group("slot")),
                                    "faulty": "(F)" in flags, "spare": "(S)" in flags})
            current = {"state": head.group("state"), "readonly": readonly, "level": level, "members": members,
                       "raid_disks": None, "active_disks": None, "map": None, "degraded": False, "sync": None}
            arrays[head.group("name")] = current
            continue
        if current is None:
            continue
        count = _MDSTAT_COUNT.search(line)
        if count:
            current["raid_disks"] = int(count.group("raid"))
            current["active_disks"] = int(count.group("active"))
            current["map"] = count.group("map")
            current["degraded"] = current["active_disks"] < current["raid_disks"]
        sync = re.search(r"(resync|recovery|reshape|check)\s*=\s*(\S+)", line)
        if sync:
            current["sync"] = {"action": sync.group(1), "progress": sync.group(2)}
    return {"personalities": personalities, "arrays": arrays}


def array_line(device: str, info: dict[str, Any]) -> str:
    """The ``ARRAY`` line for mdadm.conf from export data (same fields ``mdadm --detail --brief`` prints)."""
    parts = ["ARRAY", device, f"metadata={info.get('MD_METADATA', '1.2')}"]
    if info.get("MD_NAME"):
        parts.append(f"name={info['MD_NAME']}")
    parts.append(f"UUID={info['MD_UUID']}")
    return " ".join(parts)


def merge_mdadm_conf(text: str, device: str, uuid: str, line: str) -> str:
    """Put ``line`` into mdadm.conf in place of any ARRAY line for the same UUID or device.

    Every other line (comments, DEVICE, MAILADDR, other arrays, continuation lines
    of other arrays) is kept as it is; a replaced entry's continuation lines go.
    """
    out: list[str] = []
    placed = False
    skipping = False
    for raw in text.splitlines():
        if skipping and raw[:1].isspace() and raw.strip():
            continue  # continuation of the entry being replaced
        skipping = False
        fields = raw.split()
        if fields and fields[0] == "ARRAY":
            same_uuid = any(f.lower() == f"uuid={uuid}".lower() for f in fields[1:])
            same_dev = len(fields) > 1 and fields[1] == device
            if same_uuid or same_dev:
                skipping = True
                if not placed:
                    out.append(line)
                    placed = True
                continue
        out.append(raw)
    if not placed:
        out.append(line)
    return "\n".join(out) + "\n"
