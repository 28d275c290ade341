# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure parsers for OpenZFS command output (text in, dict out)."""

from __future__ import annotations

import re
from typing import Any

# Section headers zpool prints at the pool's own indent; values are our role names.
CLASS_HEADERS = {"logs": "log", "cache": "cache", "spares": "spare", "special": "special", "dedup": "dedup"}
_GROUP = re.compile(r"^(?P<type>mirror|raidz[123]?|draid[^-]*)-\d+$")
_CONTAINER = re.compile(r"^(replacing|spare)-\d+$")


def _group_type(name: str) -> str | None:
    match = _GROUP.match(name)
    if not match:
        return None
    kind = match.group("type")
    return "raidz1" if kind == "raidz" else kind


_SUFFIX = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def _errors(fields: list[str]) -> dict[str, int | None]:
    """READ, WRITE, CKSUM of a config row (name, state, then the three counts)."""
    counts: list[int | None] = []
    for text in fields[2:5]:
        match = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT]?)", text)
        counts.append(round(float(match.group(1)) * _SUFFIX[match.group(2)]) if match else None)
    counts += [None] * (3 - len(counts))
    return {"read": counts[0], "write": counts[1], "cksum": counts[2]}


def parse_config(lines: list[str]) -> dict[str, Any]:
    """The ``config:`` block of ``zpool status``/``zpool import`` -> {'state', 'vdevs'}.

    vdevs: [{'role', 'type', 'name', 'state', 'disks': [{'path', 'state', 'errors'}]}]; a
    single-disk top-level vdev has type ``stripe``. Disks under ``replacing-N`` or
    ``spare-N`` count as disks of the enclosing vdev. A disk's errors are its READ, WRITE
    and CKSUM counts ({'read', 'write', 'cksum'}: int, None where the column is absent,
    as in ``zpool import``; ``1.2K`` without ``-p`` counts as 1200).
    """
    base: int | None = None
    role = "data"
    pool_state = None
    vdevs: list[dict[str, Any]] = []
    group: dict[str, Any] | None = None
    for raw in lines:
        text = raw.expandtabs(8)
        fields = text.split()
        if not fields:
            continue
        if fields[0] == "NAME" and "STATE" in fields:
            continue
        indent = len(text) - len(text.lstrip())
        name, state = fields[0], fields[1] if len(fields) > 1 else ""
        if base is None:
            base, pool_state = indent, state
            continue
        depth = (indent - base) // 2
        if depth <= 0:
            role = CLASS_HEADERS.get(name, name)
            group = None
        elif depth == 1:
            if name.startswith("indirect-"):
                group = None  # what is left of a removed vdev: not a vdev the request can name
                continue
            kind = _group_type(name)
            if kind or _CONTAINER.match(name):
                group = {"role": role, "type": kind or "stripe", "name": name, "state": state, "disks": []}
                vdevs.append(group)
            else:
                group = None
                vdevs.append({"role": role, "type": "stripe", "name": name, "state": state,
                              "disks": [{"path": name, "state": state, "errors": _errors(fields)}]})
        elif group is not None and not _CONTAINER.match(name):
            group["disks"].append({"path": name, "state": state, "errors": _errors(fields)})
    return {"state": pool_state, "vdevs": vdevs}


def _split_records(text: str, key: str) -> list[list[str]]:
    records: list[list[str]] = []
    for line in text.splitlines():
        if line.strip().startswith(f"{key}:"):
            records.append([])
        if records:
            records[-1].append(line)
    return records


def _record(lines: list[str]) -> dict[str, Any]:
    """One pool's record: the 'key: value' header fields and the parsed config block."""
    fields: dict[str, str] = {}
    config: list[str] = []
    in_config = False
    last = None
    for line in lines:
        stripped = line.strip()
        head = re.match(r"^\s*([a-z]+):\s?(.*)$", line)
        if in_config:
            if head and head.group(1) == "errors":
                in_config = False
            else:
                config.append(line)
                continue
        if head and head.group(1) == "config":
            in_config = True
        elif head:
            last = head.group(1)
            fields[last] = head.group(2).strip()
        elif last and stripped:
            fields[last] += " " + stripped
    return {"fields": fields, "config": parse_config(config)}


def parse_zpool_status(text: str) -> dict[str, Any]:
    """``zpool status [-P]`` -> {pool: {'state', 'status', 'scan', 'errors', 'vdevs'}}."""
    pools: dict[str, Any] = {}
    for lines in _split_records(text, "pool"):
        rec = _record(lines)
        fields = rec["fields"]
        pools[fields["pool"]] = {
            "state": fields.get("state") or rec["config"]["state"],
            "status": fields.get("status"),
            "scan": fields.get("scan"),
            "errors": fields.get("errors"),
            "vdevs": rec["config"]["vdevs"],
        }
    return pools


def parse_zpool_import(text: str) -> list[dict[str, Any]]:
    """``zpool import`` (the listing of importable pools) -> [{'name', 'id', 'state', 'vdevs'}]."""
    found = []
    for lines in _split_records(text, "pool"):
        rec = _record(lines)
        fields = rec["fields"]
        found.append({"name": fields["pool"], "id": fields.get("id"), "state": fields.get("state"),
                      "action": fields.get("action"), "vdevs": rec["config"]["vdevs"]})
    return found


def parse_get(text: str) -> dict[str, dict[str, str]]:
    """``zpool get -H -p -o property,value,source all POOL`` or the same ``zfs get`` -> {prop: {value, source}}."""
    props: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) >= 3:
            props[fields[0]] = {"value": fields[1], "source": fields[2]}
    return props


def parse_zpool_list(text: str) -> dict[str, dict[str, Any]]:
    """``zpool list -p [-H]`` (pool rows only) -> {pool: {size, allocated, free, health, ...}}.

    Accepts the scripted form (tabs, no header, default columns) and the
    header form; numbers stay integers where ``-p`` printed them.
    """
    columns = ["name", "size", "alloc", "free", "ckpoint", "expandsz", "frag", "cap", "dedup", "health", "altroot"]
    pools: dict[str, dict[str, Any]] = {}
    for line in text.splitlines():
        if not line.strip() or line[:1].isspace():
            continue  # vdev rows of -v are indented
        fields = line.split("\t") if "\t" in line else line.split()
        if fields[0] == "NAME":
            columns = [f.lower() for f in fields]
            continue
        row: dict[str, Any] = {}
        for key, value in zip(columns, fields, strict=False):
            row[key] = int(value) if value.isdigit() else (None if value == "-" else value)
        pools[str(row["name"])] = row
    return pools


def parse_zfs_version(text: str) -> tuple[int, ...] | None:
    """``/sys/module/zfs/version`` (``2.3.2-2~bpo12+2``) or ``zfs version`` (its ``zfs-kmod-`` line) -> (2, 3, 2)."""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("zfs-") and not line.startswith("zfs-kmod-"):
            continue  # userland line of ``zfs version``; the kernel module decides property semantics
        match = re.match(r"^(?:zfs-kmod-)?(\d+(?:\.\d+)+)", line)
        if match:
            return tuple(int(n) for n in match.group(1).split("."))
    return None
