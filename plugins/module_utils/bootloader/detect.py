# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which boot loader reads the kernel command line on this host: a pure function of a file tree.

Rules, first match wins (``root`` is ``/`` on a real host, a constructed tree in tests):

1. ``/etc/kernel/proxmox-boot-uuids`` lists at least one ESP: proxmox-boot-tool copies
   kernels to those ESPs, so its ``refresh`` is the apply command. The loader on them is
   systemd-boot when the host runs UEFI and either ``bootctl is-installed`` said yes or the
   firmware reports systemd-boot as the loader that booted (``LoaderInfo`` EFI variable);
   otherwise GRUB (legacy BIOS, or UEFI with Secure Boot, where Proxmox uses GRUB).
2. UEFI and systemd-boot in use (``bootctl is-installed`` yes, the ``LoaderInfo`` variable,
   or a ``loader/`` directory on ``/boot/efi``, ``/efi`` or ``/boot``) and no GRUB config:
   systemd-boot without proxmox-boot-tool. Reported, but the module has no refresh command
   for it and refuses.
3. ``/boot/grub/grub.cfg`` exists: GRUB, applied with ``update-grub``.
4. Nothing matched: refuse and name what was looked for.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

PROXMOX_BOOT_UUIDS = "etc/kernel/proxmox-boot-uuids"
EFI_DIR = "sys/firmware/efi"
# systemd-boot sets LoaderInfo in its vendor GUID namespace on every boot it performs.
LOADER_INFO = "sys/firmware/efi/efivars/LoaderInfo-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"
LOADER_DIRS = ("boot/efi/loader", "efi/loader", "boot/loader")
GRUB_CFG = "boot/grub/grub.cfg"

GRUB = "grub"
SYSTEMD_BOOT = "systemd-boot"
REFRESH_PROXMOX = ["proxmox-boot-tool", "refresh"]
REFRESH_GRUB = ["update-grub"]


class DetectionError(RuntimeError):
    """The boot loader could not be determined or is not supported."""


@dataclass
class BootLoader:
    """The detection result: which loader, how to apply a change, and why."""

    name: str
    refresh: list[str]
    reasons: list[str] = field(default_factory=list)

    @property
    def proxmox(self) -> bool:
        return self.refresh == REFRESH_PROXMOX


def _path(root: str, rel: str) -> str:
    return os.path.join(root, rel)


def proxmox_esps(root: str) -> list[str]:
    """ESP UUIDs listed in ``/etc/kernel/proxmox-boot-uuids`` (blank lines and comments skipped)."""
    try:
        with open(_path(root, PROXMOX_BOOT_UUIDS), encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        return []
    return [line.split()[0] for line in lines if line.strip() and not line.lstrip().startswith("#")]


def detect(root: str = "/", bootctl_installed: bool | None = None, requested: str = "auto") -> BootLoader:
    """Apply the rules in this module's docstring; ``requested`` other than auto only picks the refresh.

    ``bootctl_installed`` is the outcome of ``bootctl is-installed`` (None when bootctl is
    absent or was not asked).
    """
    uefi = os.path.isdir(_path(root, EFI_DIR))
    loader_info = os.path.exists(_path(root, LOADER_INFO))
    loader_dirs = [rel for rel in LOADER_DIRS if os.path.isdir(_path(root, rel))]
    grub_cfg = os.path.isfile(_path(root, GRUB_CFG))
    esps = proxmox_esps(root)

    facts = [
        f"firmware: {'UEFI' if uefi else 'legacy BIOS'} (/{EFI_DIR})",
        f"proxmox-boot-tool ESPs: {len(esps)} (/{PROXMOX_BOOT_UUIDS})",
        f"bootctl is-installed: {'n/a' if bootctl_installed is None else ('yes' if bootctl_installed else 'no')}",
        f"systemd-boot LoaderInfo variable: {'present' if loader_info else 'absent'}",
        f"loader directories: {', '.join('/' + rel for rel in loader_dirs) or 'none'}",
        f"/{GRUB_CFG}: {'present' if grub_cfg else 'absent'}",
    ]
    sd_boot_in_use = uefi and (bool(bootctl_installed) or loader_info)

    if requested != "auto":
        refresh = REFRESH_PROXMOX if esps else REFRESH_GRUB
        if requested == SYSTEMD_BOOT and not esps:
            raise DetectionError(
                "bootloader=systemd-boot needs proxmox-boot-tool (/etc/kernel/proxmox-boot-uuids is empty "
                "or missing); plain systemd-boot hosts are not supported"
            )
        return BootLoader(requested, refresh, [f"bootloader={requested} requested", *facts])
    if esps:
        name = SYSTEMD_BOOT if sd_boot_in_use else GRUB
        return BootLoader(name, REFRESH_PROXMOX, [f"rule 1: proxmox-boot-tool with {name}", *facts])
    if uefi and (sd_boot_in_use or loader_dirs) and not grub_cfg:
        raise DetectionError(
            "rule 2: systemd-boot without proxmox-boot-tool is not supported (no refresh command); "
            + "; ".join(facts)
        )
    if grub_cfg:
        return BootLoader(GRUB, REFRESH_GRUB, ["rule 3: GRUB configuration found", *facts])
    raise DetectionError("rule 4: no supported boot loader found; set bootloader explicitly. " + "; ".join(facts))
