"""Boot loader detection rules, on constructed trees."""

from __future__ import annotations

import pytest

from ansible_collections.onprem.gpu_server.plugins.module_utils.bootloader.detect import (
    LOADER_INFO,
    REFRESH_GRUB,
    REFRESH_PROXMOX,
    DetectionError,
    detect,
)

ESP_LIST = "etc/kernel/proxmox-boot-uuids"


def build(root, files):
    for rel, text in files.items():
        path = root / rel
        if text is None:
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    return str(root)


CASES = [
    # (name, files, bootctl is-installed, expected loader, refresh, rule)
    ("debian-bios-grub", {"boot/grub/grub.cfg": "menuentry\n"}, None, "grub", REFRESH_GRUB, "rule 3"),
    ("debian-uefi-grub", {"sys/firmware/efi": None, "boot/grub/grub.cfg": "x\n", "boot/efi/EFI/debian": None},
     False, "grub", REFRESH_GRUB, "rule 3"),
    ("pve-zfs-uefi-systemd-boot", {"sys/firmware/efi": None, LOADER_INFO: "x", ESP_LIST: "ABCD-1234\n"},
     None, "systemd-boot", REFRESH_PROXMOX, "rule 1"),
    ("pve-zfs-uefi-bootctl", {"sys/firmware/efi": None, ESP_LIST: "# comment\nABCD-1234\nEF01-2345\n",
                              "boot/grub/grub.cfg": "stale\n"},
     True, "systemd-boot", REFRESH_PROXMOX, "rule 1"),
    ("pve-zfs-legacy-bios", {ESP_LIST: "ABCD-1234\n", "boot/grub/grub.cfg": "x\n"},
     None, "grub", REFRESH_PROXMOX, "rule 1"),
    ("pve-secure-boot-grub", {"sys/firmware/efi": None, ESP_LIST: "ABCD-1234\n"},
     False, "grub", REFRESH_PROXMOX, "rule 1"),
    ("empty-esp-list-falls-through", {ESP_LIST: "\n", "boot/grub/grub.cfg": "x\n"},
     None, "grub", REFRESH_GRUB, "rule 3"),
]


@pytest.mark.parametrize(("name", "files", "bootctl", "loader", "refresh", "rule"), CASES, ids=[c[0] for c in CASES])
def test_detect(tmp_path, name, files, bootctl, loader, refresh, rule):
    result = detect(build(tmp_path, files), bootctl_installed=bootctl)
    assert (result.name, result.refresh) == (loader, refresh)
    assert result.reasons[0].startswith(rule)


@pytest.mark.parametrize(
    ("files", "bootctl", "message"),
    [
        ({"sys/firmware/efi": None, "boot/efi/loader": None}, None, "rule 2: systemd-boot without proxmox-boot-tool"),
        ({"sys/firmware/efi": None}, True, "rule 2"),
        ({}, None, "rule 4: no supported boot loader"),
    ],
)
def test_detect_refuses(tmp_path, files, bootctl, message):
    with pytest.raises(DetectionError, match=message):
        detect(build(tmp_path, files), bootctl_installed=bootctl)


def test_explicit_choice(tmp_path):
    root = build(tmp_path, {ESP_LIST: "ABCD-1234\n"})
    assert detect(root, requested="grub").refresh == REFRESH_PROXMOX
    assert detect(root, requested="systemd-boot").name == "systemd-boot"
    assert detect(str(tmp_path / "none"), requested="grub").refresh == REFRESH_GRUB
    with pytest.raises(DetectionError, match="needs proxmox-boot-tool"):
        detect(str(tmp_path / "none"), requested="systemd-boot")
