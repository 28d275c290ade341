# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""When the initramfs must be rebuilt, for which kernels, and the one command that does it.

Roles change files that initramfs-tools copies into the image (``/etc/initramfs-tools/modules``,
modprobe drop-ins, ``mdadm.conf``, ``.link`` files). Each rebuild costs minutes, so the roles only
name their inputs and one call rebuilds once at the end of a run. The decision is made from the
host, not from memory of the run: an input newer than a kernel's initrd means that initrd lacks it,
whichever run wrote the input, so a run that failed before its rebuild is completed by the next.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ansible_collections.onprem.gpu_server.plugins.module_utils.tool_runner import ToolRunner

BOOT_DIR = "/boot"
INITRD_PREFIX = "initrd.img-"
# Kernel releases as Debian, Ubuntu and Proxmox VE name them (6.1.0-57-amd64, 6.8.12-4-pve, 6.8.0-48-generic).
_RELEASE = re.compile(r"^[0-9][A-Za-z0-9._+~-]*$")


@dataclass
class RebuildPlan:
    """What one call decides: the kernels whose initrd is rebuilt, and why."""

    kernels: list[str]
    reasons: dict[str, list[str]] = field(default_factory=dict)
    installed: list[str] = field(default_factory=list)


def installed_initrds(boot_entries: Iterable[str]) -> list[str]:
    """Kernel releases that have an initrd, from the names in /boot (``initrd.img-<release>``)."""
    releases = []
    for name in boot_entries:
        if not name.startswith(INITRD_PREFIX):
            continue
        release = name[len(INITRD_PREFIX):]
        # update-initramfs keeps backups as initrd.img-<release>.bak / .old-dkms: not kernels.
        if _RELEASE.match(release) and not release.endswith((".bak", ".old-dkms", ".dpkg-bak")):
            releases.append(release)
    return sorted(releases)


def plan_rebuild(input_mtimes: Mapping[str, float | None], initrd_mtimes: Mapping[str, float],
                 pending: bool, running: str | None, kernels: str) -> RebuildPlan:
    """Which initrds to rebuild.

    ``input_mtimes``: each input path and its mtime (None when the file does not exist: a removed
    drop-in also changes the initramfs, so it counts when ``pending`` says this run removed it).
    ``initrd_mtimes``: kernel release -> initrd mtime. ``pending``: a caller changed an input in this
    run (in check mode nothing was written, so the mtimes cannot tell). ``kernels``: ``all`` or
    ``running``.
    """
    installed = sorted(initrd_mtimes)
    selected = [k for k in installed if kernels == "all" or k == running]
    reasons: dict[str, list[str]] = {}
    for release in selected:
        newer = sorted(path for path, mtime in input_mtimes.items()
                       if mtime is not None and mtime > initrd_mtimes[release])
        if newer:
            reasons[release] = [f"{path} is newer than {BOOT_DIR}/{INITRD_PREFIX}{release}" for path in newer]
        elif pending:
            reasons[release] = ["an input changed in this run"]
    return RebuildPlan(kernels=[k for k in selected if k in reasons], reasons=reasons, installed=installed)


def read_host(root: str, inputs: Iterable[str]) -> tuple[dict[str, float | None], dict[str, float]]:
    """(input path -> mtime or None, kernel release -> initrd mtime) read below ``root``."""
    def mtime(path: str) -> float | None:
        try:
            return os.stat(os.path.join(root, path.lstrip("/"))).st_mtime
        except FileNotFoundError:
            return None

    boot = os.path.join(root, BOOT_DIR.lstrip("/"))
    try:
        entries = os.listdir(boot)
    except FileNotFoundError:
        entries = []
    initrds = {}
    for release in installed_initrds(entries):
        found = mtime(f"{BOOT_DIR}/{INITRD_PREFIX}{release}")
        if found is not None:
            initrds[release] = found
    return {path: mtime(path) for path in inputs}, initrds


def running_release(root: str) -> str:
    """The running kernel's release (``/proc/sys/kernel/osrelease`` below ``root``)."""
    with open(os.path.join(root, "proc/sys/kernel/osrelease"), encoding="utf-8") as handle:
        return handle.read().strip()


class InitramfsCommands(ToolRunner):
    """``update-initramfs`` through the collection's ToolRunner; failures raise CommandFailed."""

    def update(self, kernel_release: str) -> None:
        """Rebuild one kernel's initrd (Proxmox VE's hook copies it to the ESPs as well)."""
        self.call(["update-initramfs", "-u", "-k", kernel_release])
