# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Decide what ``zfs_pool`` has to run: parsed state + request -> commands, diff, warnings.

No I/O here. Devices are compared by resolved path: ``devices`` maps every path
(requested or reported by zpool) to ``{'real': node, 'disk': whole disk}``; a
path missing from it is resolved from its name only (see ``fallback_parent``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.onprem.gpu_server.plugins.module_utils.blockdev.probe import fallback_parent
from ansible_collections.onprem.gpu_server.plugins.module_utils.blockdev.refusals import refusal, same_devices
from ansible_collections.onprem.gpu_server.plugins.module_utils.zfs.rules import (
    MIN_DISKS,
    ashift_problem,
    pool_name_problem,
    vdevs_shape_problem,
)

ROLES = ("data", "special", "dedup", "log", "cache")
TYPES = ("stripe", "mirror", "raidz1", "raidz2", "raidz3")
ROLE_TYPES = {"data": set(TYPES), "special": {"stripe", "mirror"}, "dedup": {"stripe", "mirror"},
              "log": {"stripe", "mirror"}, "cache": {"stripe"}}
# Dataset properties zfs accepts only at creation (``zfs get`` shows most of them with source "-").
FS_CREATE_ONLY = {"casesensitivity", "normalization", "utf8only", "encryption", "keyformat", "pbkdf2iters",
                  "volblocksize"}
# Values OpenZFS reports under another name. Since 2.2 ``xattr=on`` means system-attribute xattrs and
# ``zfs get`` prints ``on`` after ``zfs set xattr=sa`` (before 2.2, ``on`` meant ``dir``).
VALUE_ALIASES_2_2 = {"xattr": {"sa": "on"}}
_SIZE = re.compile(r"^(?P<num>\d+(?:\.\d+)?)\s*(?P<unit>[KMGTPE]?)(?:i?B)?$", re.IGNORECASE)


class PlanError(Exception):
    """The request cannot be carried out safely; the message says why and what to change."""


@dataclass
class Plan:
    """Outcome of planning: what to validate (dry runs), what to apply, and how to report it."""

    action: str = "none"
    validate: list[list[str]] = field(default_factory=list)
    commands: list[list[str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.commands)


def prop_text(value: Any) -> str:
    """Property value as zfs spells it (YAML booleans become on/off)."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def _size(text: str) -> int | None:
    match = _SIZE.match(text.strip())
    if not match:
        return None
    power = " KMGTPE".index((match.group("unit") or " ").upper())
    return int(float(match.group("num")) * (1024 ** power))


def value_aliases(version: tuple[int, ...] | None) -> dict[str, dict[str, str]]:
    """{property: {requested value: value zfs reports for it}} for the running OpenZFS version."""
    return VALUE_ALIASES_2_2 if version is not None and version >= (2, 2) else {}


def same_value(wanted: Any, current: str, prop: str = "", aliases: dict[str, dict[str, str]] | None = None) -> bool:
    """Whether a requested value equals what ``get -p`` reports (case-insensitive; sizes by bytes; aliases)."""
    text = prop_text(wanted)
    if text.lower() == current.lower():
        return True
    reported = ((aliases or {}).get(prop) or {}).get(text.lower())
    if reported is not None and reported == current.lower():
        return True
    a, b = _size(text), _size(current)
    return a is not None and a == b


def normalize_vdevs(vdevs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Validate the requested topology and expand ``stripe`` groups into single-disk vdevs."""
    shape = vdevs_shape_problem(vdevs)
    if shape:
        raise PlanError(shape)
    groups: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for index, vdev in enumerate(vdevs):
        role, kind, disks = vdev.get("role") or "data", vdev.get("type") or "stripe", list(vdev.get("disks") or [])
        where = f"vdevs[{index}]"
        if role not in ROLES:
            raise PlanError(f"{where}.role must be one of {', '.join(ROLES)}, got '{role}'")
        if kind not in TYPES:
            raise PlanError(f"{where}.type must be one of {', '.join(TYPES)}, got '{kind}'")
        if kind not in ROLE_TYPES[role]:
            raise PlanError(f"{where}: a {role} vdev cannot be {kind} (allowed: {', '.join(sorted(ROLE_TYPES[role]))})")
        if len(disks) < MIN_DISKS[kind]:
            raise PlanError(f"{where}: {kind} needs at least {MIN_DISKS[kind]} disks, got {len(disks)}")
        for disk in disks:
            if disk in seen:
                raise PlanError(f"{where}: disk {disk} is already listed in vdevs[{seen[disk]}]")
            seen[disk] = index
        if kind == "stripe":
            groups.extend({"role": role, "type": "stripe", "disks": [disk]} for disk in disks)
        else:
            groups.append({"role": role, "type": kind, "disks": disks})
    return groups


def check_request(request: dict[str, Any], devices: dict[str, dict[str, str]] | None = None) -> list[dict[str, Any]]:
    """Refuse a request that is wrong whatever the system holds; run before any command.

    Checks the pool name, ashift and (with state=present) the topology, and returns the
    normalized vdev groups. With ``devices`` (requested paths resolved, see
    ``BlockdevRunner.resolve``) it also refuses one disk listed under two names, or a disk
    together with one of its partitions: zpool itself notices that only after it has written a
    partition table to the disk.
    """
    for problem in (pool_name_problem(request.get("name")), ashift_problem(request.get("ashift"))):
        if problem:
            raise PlanError(problem)
    if request.get("state", "present") == "absent":
        return []
    groups = normalize_vdevs(request.get("vdevs") or [])
    if not groups:
        raise PlanError("vdevs must list at least one vdev")
    twice = same_devices([d for g in groups for d in g["disks"]], devices or {})
    if twice:
        raise PlanError("vdevs: " + "; ".join(twice) + "; list each disk once")
    return groups


def vdev_args(groups: list[dict[str, Any]]) -> list[str]:
    """The vdev part of ``zpool create``/``zpool add``: data vdevs first, then each class once."""
    args: list[str] = []
    for role in ROLES:
        members = [g for g in groups if g["role"] == role]
        if not members:
            continue
        if role != "data":
            args.append(role)
        for group in members:
            if group["type"] != "stripe":
                args.append(group["type"])
            args.extend(group["disks"])
    return args


def _dev(devices: dict[str, dict[str, str]], path: str) -> dict[str, str]:
    return devices.get(path) or {"real": path, "disk": fallback_parent(path)}


def _show(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"role": g["role"], "type": g["type"],
             "disks": [d["path"] if isinstance(d, dict) else d for d in g["disks"]]} for g in groups]


def _match_topology(name: str, wanted: list[dict[str, Any]], current: list[dict[str, Any]],
                    devices: dict[str, dict[str, str]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Pair requested with existing vdevs; return (vdevs to add, errors)."""
    wanted_reals = {_dev(devices, d)["real"] for g in wanted for d in g["disks"]}

    def member_key(path: str) -> str:
        info = _dev(devices, path)
        if info["real"] not in wanted_reals and info["disk"] in wanted_reals:
            return info["disk"]  # zpool labels a whole disk and reports its -part1
        return info["real"]

    existing = [(v["role"], v["type"], frozenset(member_key(d["path"]) for d in v["disks"]), v)
                for v in current if v["role"] != "spare"]
    in_pool = {member_key(d["path"]): v["name"] for v in current for d in v["disks"]}  # spares too
    missing, errors = [], []
    for group in wanted:
        keys = frozenset(_dev(devices, d)["real"] for d in group["disks"])
        hit = next((e for e in existing if e[:3] == (group["role"], group["type"], keys)), None)
        if hit:
            existing.remove(hit)
            continue
        overlap = sorted({in_pool[k] for k in keys if k in in_pool})
        if overlap:
            errors.append(f"requested {group['role']} {group['type']} vdev ({', '.join(group['disks'])}) does not "
                          f"match the pool's layout: its disks are in existing vdev {', '.join(overlap)}")
        else:
            missing.append(group)
    for role, kind, _keys, vdev in existing:
        errors.append(f"pool '{name}' has {role} vdev {vdev['name']} ({kind}: "
                      f"{', '.join(d['path'] for d in vdev['disks'])}) that vdevs does not list; "
                      "this module never removes a vdev: add it to vdevs, or remove it yourself with 'zpool remove'")
    return missing, errors


def _compare_props(kind: str, pool: str, wanted: dict[str, Any], current: dict[str, dict[str, str]],
                   aliases: dict[str, dict[str, str]] | None = None,
                   ) -> tuple[dict[str, str], list[str], list[str], dict[str, Any], dict[str, Any]]:
    """(props to set, errors, warnings, before, after) for pool (kind='pool') or root dataset properties."""
    to_set: dict[str, str] = {}
    errors, warnings = [], []
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for prop in sorted(wanted):
        text = prop_text(wanted[prop])
        have = current.get(prop)
        if have is None:
            if kind == "filesystem" and ":" in prop:  # user property, not set yet
                before[prop], after[prop] = None, text
                to_set[prop] = text
                continue
            errors.append(f"{kind} property '{prop}' is not reported for pool '{pool}' (unknown property?)")
            continue
        before[prop] = have["value"]
        after[prop] = have["value"]
        if same_value(wanted[prop], have["value"], prop, aliases):
            continue
        if kind == "pool" and prop == "ashift":
            warnings.append(f"pool '{pool}' has ashift {have['value']}, the request says {text}: ashift of existing "
                            "vdevs cannot change (it is fixed when a vdev is created); leaving it")
            continue
        if (kind == "filesystem" and prop in FS_CREATE_ONLY) or have["source"] == "-":
            reason = "can only be set at creation" if prop in FS_CREATE_ONLY else "is read-only"
            errors.append(f"{kind} property '{prop}' of pool '{pool}' {reason}: it is '{have['value']}', "
                          f"the request says '{text}' (recreate the pool to change it, or drop it from the request)")
            continue
        to_set[prop] = text
        after[prop] = text
    return to_set, errors, warnings, before, after


def disks_to_probe(request: dict[str, Any], state: dict[str, Any], devices: dict[str, dict[str, str]]) -> list[str]:
    """Requested disks that are not already members of this pool (they must be checked for signatures)."""
    groups = check_request(request, devices)
    pool = state.get("pool")
    if not pool:
        return [d for g in groups for d in g["disks"]]
    members = set()
    for vdev in pool["vdevs"]:
        for disk in vdev["disks"]:
            info = _dev(devices, disk["path"])
            members.update({info["real"], info["disk"]})
    return [d for g in groups for d in g["disks"] if _dev(devices, d)["real"] not in members]


def _refuse_used(action: str, name: str, disks: list[str], state: dict[str, Any],
                 devices: dict[str, dict[str, str]], probes: dict[str, Any], force: bool) -> None:
    others: dict[str, str] = {}
    for other, status in (state.get("other_pools") or {}).items():
        for vdev in status["vdevs"]:
            for disk in vdev["disks"]:
                info = _dev(devices, disk["path"])
                others[info["real"]] = others[info["disk"]] = other
    reasons = []
    for disk in disks:
        real = _dev(devices, disk)["real"]
        if real in others:
            reasons.append(f"{disk} ({real}) is a member of imported pool '{others[real]}'")
            continue
        if disk not in probes:
            raise PlanError(f"{disk} was not probed for signatures; refusing to {action} pool '{name}'")
        why = refusal(disk, probes[disk], force)
        if why:
            reasons.append(why)
    if reasons:
        raise PlanError(f"refusing to {action} pool '{name}': " + "; ".join(reasons))


def _topology_state(pool: dict[str, Any] | None, exported: bool) -> dict[str, Any]:
    if pool is None:
        return {"state": "absent"}
    return {"state": "exported" if exported else "present", "vdevs": _show(pool["vdevs"])}


def plan_pool(request: dict[str, Any], state: dict[str, Any], devices: dict[str, dict[str, str]] | None = None,
              probes: dict[str, Any] | None = None) -> Plan:
    """Plan one run of ``zfs_pool``.

    request: name, state, vdevs, ashift, properties, filesystem_properties, force,
    allow_expand, allow_destroy. state: pool (parsed ``zpool status -P`` entry or
    None), importable (``zpool import`` records with this name), properties and
    filesystem_properties (parsed ``get`` output), other_pools, zfs_version (tuple of the
    kernel module's version, for ``value_aliases``; None when unknown).
    """
    devices, probes = devices or {}, probes or {}
    name = request["name"]
    groups = check_request(request, devices)
    pool = state.get("pool")
    importable = [p for p in state.get("importable") or [] if p["name"] == name]
    plan = Plan()

    if request.get("state") == "absent":
        if pool is None:
            if importable:
                plan.warnings.append(f"pool '{name}' is exported, not imported; it was left as it is")
            plan.before = plan.after = {"state": "absent"}
            return plan
        if not request.get("allow_destroy"):
            raise PlanError(f"refusing to destroy pool '{name}' and all its data: set allow_destroy: true")
        plan.action = "destroy"
        plan.commands.append(["zpool", "destroy", name])
        plan.before, plan.after = _topology_state(pool, False), {"state": "absent"}
        return plan

    if pool is None and importable:
        if len(importable) > 1:
            ids = ", ".join(str(p.get("id")) for p in importable)
            raise PlanError(f"several exported pools are named '{name}' (ids {ids}); import the right one by id first")
        found = importable[0]
        if found.get("state") not in ("ONLINE", "DEGRADED"):
            raise PlanError(f"exported pool '{name}' cannot be imported (state {found.get('state')}: "
                            f"{found.get('action') or 'no action given'}); refusing to create a pool over it")
        plan.action = "import"
        plan.commands.append(["zpool", "import", str(found.get("id") or name)])
        plan.before = _topology_state({"vdevs": found["vdevs"]}, True)
        plan.after = dict(plan.before, state="present")
        plan.warnings.append(f"pool '{name}' was exported; importing it (topology and properties are compared "
                             "after the import)")
        return plan

    if pool is None:
        if request.get("ashift") is None:
            raise PlanError(f"ashift is required to create pool '{name}' (12 for 4K-sector disks)")
        disks = [d for g in groups for d in g["disks"]]
        _refuse_used("create", name, disks, state, devices, probes, bool(request.get("force")))
        argv = ["zpool", "create"] + (["-f"] if request.get("force") else [])
        argv += ["-o", f"ashift={request['ashift']}"]
        for prop, value in sorted((request.get("properties") or {}).items()):
            argv += ["-o", f"{prop}={prop_text(value)}"]
        for prop, value in sorted((request.get("filesystem_properties") or {}).items()):
            argv += ["-O", f"{prop}={prop_text(value)}"]
        argv += [name, *vdev_args(groups)]
        plan.action = "create"
        plan.validate.append([*argv[:2], "-n", *argv[2:]])
        plan.commands.append(argv)
        plan.before = {"state": "absent"}
        plan.after = {"state": "present", "vdevs": _show(groups),
                      "properties": {"ashift": str(request["ashift"]),
                                     **{k: prop_text(v) for k, v in (request.get("properties") or {}).items()}},
                      "filesystem_properties": {k: prop_text(v)
                                                for k, v in (request.get("filesystem_properties") or {}).items()}}
        return plan

    missing, errors = _match_topology(name, groups, pool["vdevs"], devices)
    pool_set, pool_err, pool_warn, pool_before, pool_after = _compare_props(
        "pool", name, {**(request.get("properties") or {}),
                       **({"ashift": request["ashift"]} if request.get("ashift") is not None else {})},
        state.get("properties") or {})
    fs_set, fs_err, fs_warn, fs_before, fs_after = _compare_props(
        "filesystem", name, request.get("filesystem_properties") or {}, state.get("filesystem_properties") or {},
        value_aliases(state.get("zfs_version")))
    errors += pool_err + fs_err
    if missing and not request.get("allow_expand"):
        errors.append(f"pool '{name}' lacks requested vdev(s) " +
                      "; ".join(f"{g['role']} {g['type']} ({', '.join(g['disks'])})" for g in missing) +
                      ": set allow_expand: true to add them with 'zpool add'")
    if errors:
        raise PlanError("; ".join(errors))
    plan.warnings += pool_warn + fs_warn
    plan.before = dict(_topology_state(pool, False), properties=pool_before, filesystem_properties=fs_before)
    plan.after = dict(_topology_state(pool, False), properties=pool_after, filesystem_properties=fs_after)
    if missing:
        disks = [d for g in missing for d in g["disks"]]
        _refuse_used("add to", name, disks, state, devices, probes, bool(request.get("force")))
        argv = ["zpool", "add"] + (["-f"] if request.get("force") else [])
        if request.get("ashift") is not None:
            argv += ["-o", f"ashift={request['ashift']}"]
        argv += [name, *vdev_args(missing)]
        plan.validate.append([*argv[:2], "-n", *argv[2:]])
        plan.commands.append(argv)
        plan.after["vdevs"] = plan.after["vdevs"] + _show(missing)
    plan.commands += [["zpool", "set", f"{k}={v}", name] for k, v in pool_set.items()]
    plan.commands += [["zfs", "set", f"{k}={v}", name] for k, v in fs_set.items()]
    plan.action = "update" if plan.commands else "none"
    return plan
