# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Probe block devices before anything is written to them (read-only).

Pure parsers (``wipefs -J``, ``blkid -p -o export``, ``/proc/self/mounts``, ``/proc/swaps``) and
``BlockdevRunner``, the only part that touches the system (argv lists, ``LC_ALL=C``, read-only
commands and sysfs). What the findings mean for a write is decided in ``refusals``.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from ansible_collections.onprem.gpu_server.plugins.module_utils.mdadm.parsers import parse_mdstat
from ansible_collections.onprem.gpu_server.plugins.module_utils.tool_runner import C_LOCALE, SBIN_DIRS

_PART_SUFFIX = re.compile(r"^(?P<disk>.+?)(?:-part\d+|(?<=\d)p\d+|(?<=[a-z])\d+)$")


def parse_wipefs_json(text: str) -> list[dict[str, Any]]:
    """Signatures from ``wipefs --no-act -J DEV``: [{on, type, offset, label, uuid}], one per (device, type)."""
    if not text.strip():
        return []
    data = json.loads(text)
    seen: set[tuple[str, str]] = set()
    found: list[dict[str, Any]] = []
    for sig in data.get("signatures") or []:
        dev = str(sig.get("device") or "")
        on = dev if dev.startswith("/") else "/dev/" + dev
        kind = str(sig.get("type") or "unknown")
        if (on, kind) in seen:
            continue  # ZFS and GPT write several copies; one mention is enough
        seen.add((on, kind))
        found.append({"on": on, "type": kind, "offset": sig.get("offset"),
                      "label": sig.get("label"), "uuid": sig.get("uuid")})
    return found


def parse_blkid_export(text: str, device: str) -> list[dict[str, Any]]:
    """Signatures from ``blkid -p -o export DEV`` (a partition table and/or one content signature)."""
    values = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    found = []
    if values.get("PTTYPE"):
        found.append({"on": device, "type": values["PTTYPE"], "offset": None, "label": None,
                      "uuid": values.get("PTUUID")})
    if values.get("TYPE"):
        found.append({"on": device, "type": values["TYPE"], "offset": None, "label": values.get("LABEL"),
                      "uuid": values.get("UUID")})
    return found


def _unescape(field: str) -> str:
    """The kernel's octal escapes (``\\040`` for a space) in /proc/self/mounts and /proc/swaps."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def parse_mounts(text: str) -> dict[str, list[str]]:
    """``/proc/self/mounts`` -> {source device: [mount points]} (octal escapes decoded)."""
    mounts: dict[str, list[str]] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0].startswith("/dev/"):
            mounts.setdefault(fields[0], []).append(_unescape(fields[1]))
    return mounts


def parse_swaps(text: str) -> list[str]:
    """Block devices in active use as swap, from ``/proc/swaps`` (header skipped, swap files left out).

    A swap file lives on a mounted filesystem, which the mounts already report; only
    ``partition`` entries (any block device: a partition, a whole disk, zram, dm) are listed.
    """
    devices = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 2 and fields[1] == "partition":
            devices.append(_unescape(fields[0]))
    return devices


def fallback_parent(path: str) -> str:
    """The whole disk a partition path belongs to, from its name alone (``-partN``, ``nvme0n1p1``, ``sdb1``)."""
    if path.startswith("/dev/disk/by-id/"):
        match = re.match(r"^(.*)-part\d+$", path)
        return match.group(1) if match else path
    if path.startswith("/dev/") and "/" not in path[5:]:
        match = _PART_SUFFIX.match(path)
        if match and not re.search(r"nvme\d+n\d+$", path) and not re.search(r"/(md|loop|zd)\d+$", path):
            return match.group("disk")
    return path


class BlockdevRunner:
    """Read-only probing of block devices: realpath, sysfs, wipefs, mounts, /proc/swaps, /proc/mdstat."""

    def __init__(self, module: Any) -> None:
        self.module = module
        self.wipefs = module.get_bin_path("wipefs", required=True, opt_dirs=SBIN_DIRS)
        self._mounts: dict[str, list[str]] | None = None
        self._swaps: set[str] | None = None
        self._mdstat: dict[str, Any] | None = None

    @staticmethod
    def _read(path: str) -> str:
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read()
        except OSError:
            return ""

    def resolve(self, path: str) -> dict[str, str]:
        """{'real': resolved node, 'disk': its whole disk (itself unless a partition)}."""
        real = os.path.realpath(path)
        name = os.path.basename(real)
        sys_dir = f"/sys/class/block/{name}"
        disk = real
        if os.path.exists(os.path.join(sys_dir, "partition")):
            disk = "/dev/" + os.path.basename(os.path.dirname(os.path.realpath(sys_dir)))
        return {"real": real, "disk": disk}

    def partitions(self, real: str) -> list[str]:
        name = os.path.basename(real)
        base = f"/sys/class/block/{name}"
        try:
            entries = sorted(os.listdir(os.path.realpath(base)))
        except OSError:
            return []
        return [f"/dev/{entry}" for entry in entries
                if entry.startswith(name) and os.path.exists(f"{base}/{entry}/partition")]

    def mounts(self) -> dict[str, list[str]]:
        if self._mounts is None:
            raw = parse_mounts(self._read("/proc/self/mounts"))
            self._mounts = {}
            for dev, points in raw.items():
                self._mounts.setdefault(os.path.realpath(dev), []).extend(points)
        return self._mounts

    def swaps(self) -> set[str]:
        """Resolved nodes of the active swap devices (a by-id or /dev/mapper name becomes its node)."""
        if self._swaps is None:
            self._swaps = {os.path.realpath(dev) for dev in parse_swaps(self._read("/proc/swaps"))}
        return self._swaps

    def mdstat(self) -> dict[str, Any]:
        if self._mdstat is None:
            self._mdstat = parse_mdstat(self._read("/proc/mdstat"))
        return self._mdstat

    def signatures(self, dev: str) -> list[dict[str, Any]]:
        rc, out, err = self.module.run_command([self.wipefs, "--no-act", "-J", dev], environ_update=C_LOCALE)
        if rc != 0:
            self.module.fail_json(msg=f"wipefs --no-act -J {dev} failed: {err.strip() or out.strip()}")
        return parse_wipefs_json(out)

    def probe(self, path: str) -> dict[str, Any]:
        """Everything that makes a device unsafe to write: signatures, mounts, swap, holders, md membership."""
        real = os.path.realpath(path)
        if not os.path.exists(real):
            self.module.fail_json(msg=f"device {path} does not exist")
        nodes = [real, *self.partitions(real)]
        findings: dict[str, Any] = {"device": path, "real": real, "signatures": [], "mounts": {},
                                    "swaps": [], "holders": {}, "md_arrays": []}
        for node in nodes:
            findings["signatures"].extend(self.signatures(node))
            if self.mounts().get(node):
                findings["mounts"][node] = self.mounts()[node]
            if node in self.swaps():
                # A swap partition on the disk makes the whole disk busy, as a mount on it does.
                findings["swaps"].append(node)
            try:
                holders = sorted(os.listdir(f"/sys/class/block/{os.path.basename(node)}/holders"))
            except OSError:
                holders = []
            if holders:
                findings["holders"][node] = holders
        names = {os.path.basename(node) for node in nodes}
        for array, info in sorted(self.mdstat().get("arrays", {}).items()):
            if names & {member["name"] for member in info["members"]}:
                findings["md_arrays"].append(array)
        return findings
