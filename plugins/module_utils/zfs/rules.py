# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the collection accepts in a ZFS pool request, checked before any command runs.

Pure functions and constants only: the ``zfs_pool`` planner and the host-plan check
(``plan/zfs.py``) both take their numbers from here, so a layout that one accepts the
other does not refuse.
"""

from __future__ import annotations

import re
from typing import Any

# Minimum disks per vdev: the collection's policy, one table for the module, the plan check and
# (through a copy a unit test keeps equal) the zfs_lake role's preflight.
# zpool create accepts parity + 1 disks for a raidzN vdev, but that vdev holds a single disk's
# worth of data: a mirror of the same disks stores as much, survives as many failures (or more),
# and reads, writes and resilvers faster. So every raidz vdev must have at least two data disks,
# parity + 2, which is also why DESIGN.md calls "a RAIDZ2 with 3 disks" bad input.
MIN_DISKS = {"stripe": 1, "mirror": 2, "raidz": 3, "raidz1": 3, "raidz2": 4, "raidz3": 5}

# OpenZFS limits of a vdev's ashift (ASHIFT_MIN, ASHIFT_MAX: 512 B to 64 KiB sectors); 0 asks
# zpool to detect the sector size itself.
ASHIFT_MIN, ASHIFT_MAX, ASHIFT_AUTO = 9, 16, 0

# pool_namecheck() (zfs_namecheck.c) refuses names longer than this: room is kept for
# "<pool>/$ORIGIN@$ORIGIN" within the 256-byte dataset name.
POOL_NAME_MAX = 256 - 2 - 2 * len("$ORIGIN") - 1
# Letters, digits and _ - . : as pool_namecheck() allows. OpenZFS also allows a space; the
# collection does not, because a pool name becomes a mount point and a word in unit files.
_POOL_CHARS = re.compile(r"[A-Za-z0-9_.:-]")
# Exact names pool_namecheck() and zpool_name_valid() reserve, plus the vdev class words, which
# zpool would accept as a name but which read as vdev keywords in every zpool add/status line.
RESERVED_POOL_NAMES = ("mirror", "raidz", "draid", "log", "spare", "cache", "special", "dedup")
# zpool_name_valid() refuses, when creating or importing, every name that begins with these.
RESERVED_POOL_PREFIXES = ("mirror", "raidz", "draid", "spare")


def pool_name_problem(name: Any) -> str | None:
    """Why ``name`` cannot be a pool name (a message naming the option), or None when it can."""
    if not isinstance(name, str) or not name:
        return f"name: a pool name cannot be empty, got {name!r}"
    if len(name) > POOL_NAME_MAX:
        return f"name: {name!r} is {len(name)} characters long; a pool name has at most {POOL_NAME_MAX}"
    bad = sorted({char for char in name if not _POOL_CHARS.fullmatch(char)})
    if bad:
        return (f"name: {name!r} contains {', '.join(repr(char) for char in bad)}; a pool name may contain only "
                "letters, digits and _ - . :")
    if not name[0].isalpha():
        return f"name: {name!r} does not begin with a letter, as a pool name must"
    if name in RESERVED_POOL_NAMES:
        return f"name: {name!r} is reserved: zpool reads it as a vdev keyword"
    prefix = next((p for p in RESERVED_POOL_PREFIXES if name.startswith(p)), None)
    if prefix:
        return f"name: {name!r} is reserved: zpool refuses pool names that begin with {prefix!r}"
    if re.match(r"c[0-9]", name):
        # Solaris disk names (c0t0d0): older OpenZFS releases refuse them, so a plan that uses one
        # would work on some hosts only.
        return f"name: {name!r} is reserved: pool names that begin with 'c' and a digit look like disk names"
    return None


def ashift_problem(ashift: Any) -> str | None:
    """Why ``ashift`` cannot be used (None when unset, 0 for auto-detection, or 9-16)."""
    if ashift is None or ashift == ASHIFT_AUTO:
        return None
    if isinstance(ashift, bool) or not isinstance(ashift, int) or not ASHIFT_MIN <= ashift <= ASHIFT_MAX:
        return (f"ashift: {ashift!r} is outside {ASHIFT_MIN}-{ASHIFT_MAX} (sectors of 512 B to 64 KiB; "
                f"12 for 4K-sector disks, {ASHIFT_AUTO} to let zpool detect it)")
    return None


def vdevs_shape_problem(vdevs: Any) -> str | None:
    """Why ``vdevs`` is not a list of vdev dicts, or None.

    Ansible's own check of a list of dicts reports a string item as 'dictionary requested,
    could not parse JSON or key=value', without naming the option; this names it.
    """
    example = "[{type: raidz2, disks: [/dev/disk/by-id/...]}]"
    if vdevs is None:
        return None
    if isinstance(vdevs, str):
        return f"vdevs: expected a list of vdevs such as {example}, got the string {vdevs!r}"
    if not isinstance(vdevs, list):
        return f"vdevs: expected a list of vdevs such as {example}, got {type(vdevs).__name__} {vdevs!r}"
    for index, vdev in enumerate(vdevs):
        if not isinstance(vdev, dict):
            return (f"vdevs[{index}]: expected a vdev such as {{type: mirror, disks: [...]}}, got "
                    f"{type(vdev).__name__} {vdev!r}")
    return None
