# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The refusal rules shared by zfs_pool and md_array: when a device must not be written to, in words.

``same_devices`` finds one device listed under two names (or a disk with one of its partitions);
``describe_findings`` turns a probe result (``probe.BlockdevRunner.probe``) into the phrases of a
message; ``refusal`` decides: a device in use is always refused, one that only carries signatures
unless ``force``. Pure functions: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def _shown(path: str, real: str) -> str:
    return path if path == real else f"{path} ({real})"


def same_devices(paths: Sequence[str], devices: Mapping[str, Mapping[str, str]]) -> list[str]:
    """Phrases for each path that names a device an earlier path of ``paths`` names too.

    ``devices`` maps a path to ``{'real': resolved node, 'disk': its whole disk}`` (paths
    missing from it stand for themselves). Two names are one device when they resolve to the
    same node (``/dev/disk/by-id/wwn-...`` and ``/dev/sdg``); a partition and its whole disk
    overlap, since writing the disk destroys the partition. Identical strings are left to the
    caller, which reports them in its own words.
    """
    seen: list[tuple[str, str, str]] = []
    found = []
    for path in paths:
        info = devices.get(path) or {}
        real, disk = info.get("real", path), info.get("disk", path)
        for earlier, earlier_real, earlier_disk in seen:
            if earlier == path:
                continue
            if real == earlier_real:
                found.append(f"{earlier} and {path} are the same device ({real})")
            elif disk == earlier_real:
                found.append(f"{_shown(path, real)} is a partition of {_shown(earlier, earlier_real)}")
            elif earlier_disk == real:
                found.append(f"{_shown(earlier, earlier_real)} is a partition of {_shown(path, real)}")
            else:
                continue
            break
        seen.append((path, real, disk))
    return found


def _sig_words(sig: dict[str, Any]) -> str:
    kind = sig["type"]
    if kind in ("gpt", "dos", "PMBR", "atari", "sun", "bsd"):
        what = f"{kind} partition table"
    elif kind == "zfs_member":
        what = "ZFS pool label" + (f" (pool '{sig['label']}')" if sig.get("label") else "")
    elif kind == "linux_raid_member":
        what = "md superblock" + (f" (array '{sig['label']}')" if sig.get("label") else "")
    else:
        what = f"{kind} signature" + (f" (label '{sig['label']}')" if sig.get("label") else "")
    return f"{what} on {sig['on']}"


def describe_findings(findings: dict[str, Any]) -> dict[str, list[str]]:
    """Split a probe result into {'in_use': [...], 'signatures': [...]} phrases for messages."""
    in_use = [f"mounted at {point} ({dev})" for dev, points in sorted(findings.get("mounts", {}).items())
              for point in points]
    in_use += [f"held by {holder} ({dev})" for dev, holders in sorted(findings.get("holders", {}).items())
               for holder in holders]
    in_use += [f"member of active md array {name}" for name in findings.get("md_arrays", [])]
    in_use += [f"active swap ({dev})" for dev in findings.get("swaps", [])]
    sigs = findings.get("signatures", [])
    # wipefs lists a GPT disk's protective MBR as a table of its own; it is part of the GPT.
    gpt_on = {sig["on"] for sig in sigs if sig["type"] == "gpt"}
    signatures = [_sig_words(sig) for sig in sigs if not (sig["type"] == "PMBR" and sig["on"] in gpt_on)]
    return {"in_use": in_use, "signatures": signatures}


def refusal(device: str, findings: dict[str, Any], force: bool) -> str | None:
    """The refusal message for one device, or None when it may be written to.

    A device in use (mounted, held by md/dm, member of an active array, active swap) is
    always refused; a device that only carries signatures is refused unless ``force``.
    """
    words = describe_findings(findings)
    real = findings.get("real") or device
    shown = device if real == device else f"{device} ({real})"
    if words["in_use"]:
        return f"{shown} is in use: " + "; ".join(words["in_use"] + words["signatures"]) + \
            " (force does not override a device in use)"
    if words["signatures"] and not force:
        return f"{shown} is not blank: found " + "; ".join(words["signatures"]) + \
            " (set force: true to overwrite it)"
    return None
