# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Decide what ``md_array`` has to run: parsed state + request -> commands, diff, warnings. No I/O."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.onprem.gpu_server.plugins.module_utils.blockdev.refusals import refusal, same_devices
from ansible_collections.onprem.gpu_server.plugins.module_utils.mdadm.parsers import array_line, merge_mdadm_conf

LEVELS = ("raid0", "raid1", "raid10")
MIN_DEVICES = {"raid0": 2, "raid1": 2, "raid10": 2}
PENDING_UUID = "<assigned at creation>"
# The array names mdadm 4.3 and later create: 1 to 32 characters from the POSIX portable filename
# set, not beginning with '-' or '.'. Older mdadm takes more, but the name becomes /dev/md/NAME, so
# a '/' or '..' would put the device node (and the mdadm.conf line) somewhere else.
MD_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,31}")
# mdadm --chunk: a number of KiB, or a number with a K, M, G or T suffix (upper case only).
CHUNK = re.compile(r"(?P<num>[0-9]+)(?P<unit>[KMGT]?)")
CHUNK_UNITS = {"": 1 << 10, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
# mdadm refuses a chunk that is not a power of two or is smaller than 4 KiB (8 sectors).
CHUNK_MIN = 4 << 10


class PlanError(Exception):
    """The request cannot be carried out safely; the message says why and what to change."""


@dataclass
class Plan:
    """What to run, what the array looks like before/after, and what to tell the user."""

    action: str = "none"
    commands: list[list[str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    md_device: str | None = None


def short_name(md_name: str | None) -> str:
    """'host:os' -> 'os' (mdadm prefixes the homehost)."""
    return (md_name or "").split(":", 1)[-1]


def _real(devices: dict[str, dict[str, str]], path: str) -> str:
    return (devices.get(path) or {}).get("real", path)


def find_active(request: dict[str, Any], active: dict[str, dict[str, Any]],
                devices: dict[str, dict[str, str]]) -> tuple[str | None, dict[str, Any] | None]:
    """The running array that is the requested one: same name, or one that holds requested devices."""
    wanted = {_real(devices, d) for d in request["devices"]}
    for md, detail in sorted(active.items()):
        if short_name(detail.get("MD_NAME")) == request["name"] or detail.get("MD_DEVNAME") == request["name"]:
            return md, detail
    for md, detail in sorted(active.items()):
        members = {_real(devices, m["dev"]) for m in detail["members"]}
        if members & wanted:
            raise PlanError(f"requested devices {', '.join(sorted(members & wanted))} belong to active array "
                            f"{md} (name '{detail.get('MD_NAME')}'), not to '{request['name']}'")
    return None, None


def name_problem(name: Any) -> str | None:
    """Why ``name`` cannot be an array name (a message naming the option), or None."""
    if isinstance(name, str) and MD_NAME.fullmatch(name):
        return None
    return (f"name: {name!r} cannot be an md array name: use 1 to 32 letters, digits, '.', '_' or '-', "
            "not beginning with '.' or '-' (the array appears as /dev/md/NAME)")


def chunk_problem(chunk: Any) -> str | None:
    """Why ``chunk`` is not a chunk size mdadm takes, or None (also when unset)."""
    if chunk is None or chunk == "":
        return None
    match = CHUNK.fullmatch(str(chunk))
    size = int(match.group("num")) * CHUNK_UNITS[match.group("unit")] if match else 0
    if size >= CHUNK_MIN and size & (size - 1) == 0:
        return None
    return (f"chunk: {chunk!r} is not a chunk size mdadm takes: a power of two of at least 4K, written as KiB "
            "with an optional K, M, G or T suffix (for example 64, 512K, 1M)")


def check_request(request: dict[str, Any], devices: dict[str, dict[str, str]] | None = None) -> None:
    """Refuse a request that is wrong whatever the system holds; run before any command.

    With ``devices`` (each requested path resolved, see ``BlockdevRunner.resolve``), also refuse
    one device listed under two names: mdadm would otherwise take it twice, and the refusal for a
    used device would name it twice instead of saying it is listed twice.
    """
    for problem in (name_problem(request.get("name")), chunk_problem(request.get("chunk"))):
        if problem:
            raise PlanError(problem)
    level, disks = request["level"], list(request["devices"])
    if level not in LEVELS:
        raise PlanError(f"level must be one of {', '.join(LEVELS)}, got '{level}'")
    if len(disks) < MIN_DEVICES[level] or len(set(disks)) != len(disks):
        got = ", ".join(disks) or "none"
        raise PlanError(f"{level} needs at least {MIN_DEVICES[level]} distinct devices, got {got}")
    twice = same_devices(disks, devices or {})
    if twice:
        raise PlanError("devices: " + "; ".join(twice) + "; list each device once")


def create_argv(request: dict[str, Any]) -> list[str]:
    """``mdadm --create`` with every choice explicit (no defaults that differ between mdadm versions)."""
    level = request["level"]
    argv = ["mdadm", "--create", request["device"], "--run", f"--metadata={request.get('metadata') or '1.2'}",
            f"--level={level}", f"--raid-devices={len(request['devices'])}", f"--name={request['name']}"]
    if request.get("homehost"):
        argv.append(f"--homehost={request['homehost']}")
    bitmap = request.get("bitmap") or "auto"
    if level != "raid0":
        argv.append("--bitmap=" + ("internal" if bitmap == "auto" else bitmap))
    elif bitmap == "internal":
        raise PlanError("bitmap: internal is not possible on raid0 (it has no redundancy to resync)")
    if request.get("chunk") and level != "raid1":
        argv.append(f"--chunk={request['chunk']}")
    return argv + list(request["devices"])


def _shown(detail: dict[str, Any], mdstat: dict[str, Any] | None) -> dict[str, Any]:
    return {"state": "active", "level": detail.get("MD_LEVEL"), "uuid": detail.get("MD_UUID"),
            "name": detail.get("MD_NAME"), "members": [m["dev"] for m in detail["members"]],
            "degraded": bool(mdstat and mdstat.get("degraded"))}


def plan_array(request: dict[str, Any], state: dict[str, Any],
               devices: dict[str, dict[str, str]] | None = None) -> Plan:
    """Plan one run of ``md_array``.

    state: mdstat (parsed /proc/mdstat), active ({mdN: parsed ``--detail --export``}),
    examine ({path: parsed ``--examine --export``, {} when no superblock}), probes
    ({path: block device findings}).
    """
    devices = devices or {}
    check_request(request, devices)
    level, disks = request["level"], list(request["devices"])
    plan = Plan()
    mdstat_arrays = (state.get("mdstat") or {}).get("arrays", {})

    md, detail = find_active(request, state.get("active") or {}, devices)
    if detail is not None:
        plan.md_device = md
        if detail.get("MD_LEVEL") != level:
            raise PlanError(f"array {md} ('{detail.get('MD_NAME')}') is {detail.get('MD_LEVEL')}, the request says "
                            f"{level}; changing the level is not done by this module")
        members = {_real(devices, m["dev"]) for m in detail["members"]}
        for disk in disks:
            if _real(devices, disk) not in members:
                plan.warnings.append(f"{disk} is not a member of {md}; add it yourself (mdadm --add) if intended")
        info = mdstat_arrays.get(md or "", {})
        if info.get("degraded"):
            plan.warnings.append(f"array {md} is degraded: {info.get('active_disks')} of {info.get('raid_disks')} "
                                 f"devices active [{info.get('map')}]")
        plan.before = plan.after = _shown(detail, info)
        return plan

    examined = {d: (state.get("examine") or {}).get(d) or {} for d in disks}
    uuids = {e.get("MD_UUID") for e in examined.values() if e.get("MD_UUID")}
    ours = [d for d, e in examined.items() if e.get("MD_UUID") and short_name(e.get("MD_NAME")) == request["name"]]
    if len(uuids) == 1 and ours and len(ours) == len([e for e in examined.values() if e.get("MD_UUID")]):
        uuid = uuids.pop()
        sample = examined[ours[0]]
        if sample.get("MD_LEVEL") != level:
            raise PlanError(f"devices {', '.join(ours)} carry the superblock of array '{sample.get('MD_NAME')}' "
                            f"({sample.get('MD_LEVEL')}), the request says {level}; refusing to re-create it")
        plan.action = "assemble"
        plan.commands.append(["mdadm", "--assemble", request["device"], f"--uuid={uuid}", *ours])
        rest = [d for d in disks if d not in ours]
        if rest:
            plan.warnings.append(f"{', '.join(rest)} carry no superblock of '{request['name']}'; assembling "
                                 f"from {', '.join(ours)} only (the array may start degraded)")
        plan.before = {"state": "stopped", "uuid": uuid, "name": sample.get("MD_NAME"), "members": ours}
        plan.after = dict(plan.before, state="active", level=level)
        return plan

    reasons = []
    for disk in disks:
        why = refusal(disk, (state.get("probes") or {}).get(disk) or {"real": _real(devices, disk)},
                      bool(request.get("force")))
        if why:
            reasons.append(why)
        elif disk not in (state.get("probes") or {}):
            raise PlanError(f"{disk} was not probed for signatures; refusing to create array '{request['name']}'")
    if reasons:
        raise PlanError(f"refusing to create md array '{request['name']}': " + "; ".join(reasons))
    plan.action = "create"
    plan.commands.append(create_argv(request))
    plan.before = {"state": "absent"}
    plan.after = {"state": "active", "level": level, "uuid": PENDING_UUID, "name": request["name"],
                  "members": disks, "degraded": False}
    return plan


def plan_conf(conf_text: str, device: str, detail: dict[str, Any]) -> str | None:
    """New mdadm.conf text with the array's ARRAY line, or None when it is already there as wanted."""
    line = array_line(device, detail)
    new = merge_mdadm_conf(conf_text, device, detail["MD_UUID"], line)
    old = conf_text if conf_text.endswith("\n") or not conf_text else conf_text + "\n"
    return None if new == old else new


def md_node(device: str) -> str:
    """The kernel name (mdN) behind /dev/md/NAME (the resolved link, or the name itself)."""
    return os.path.basename(os.path.realpath(device))
