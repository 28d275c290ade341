"""What the lab VM really provides: kernel, bootloader, IOMMU, disks, NICs, reboot."""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

testinfra_hosts = ["ansible://lab-trading"]

PROJECT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[3]))


def _labvm() -> ModuleType:
    """The VM definition (serials, WWNs, PCI slot) is the one labvm.py starts QEMU with."""
    spec = importlib.util.spec_from_file_location("labvm", PROJECT / "lab" / "vm" / "labvm.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while it executes.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


LABVM = _labvm()
DATA_SERIALS = {LABVM.data_disk_serial(i) for i in range(LABVM.DATA_DISKS)}
DATA_WWNS = {LABVM.data_disk_wwn(i) for i in range(LABVM.DATA_DISKS)}
NVME_SERIALS = {LABVM.nvme_serial(i) for i in range(LABVM.NVME_DISKS)}
SPARE_FUNCTIONS = [f"0000:00:{LABVM.SPARE_SLOT:02x}.{fn}" for fn in (0, 1)]


def _by_id(host: Any) -> list[str]:
    return host.check_output("ls -1 /dev/disk/by-id").split()


def _read(host: Any, path: str) -> str:
    return host.file(path).content_string


def test_zfs_module_loaded_and_tools_work(host: Any) -> None:
    assert host.file("/sys/module/zfs").is_directory, "zfs kernel module is not loaded"
    version = host.run("zpool version")
    assert version.rc == 0, version.stderr
    assert re.search(r"^zfs-kmod-2\.\d+", version.stdout, re.M), version.stdout


def test_intel_iommu_comes_through_the_bootloader(host: Any) -> None:
    cmdline = _read(host, "/proc/cmdline").split()
    assert "intel_iommu=on" in cmdline
    # BOOT_IMAGE= is set by GRUB: the kernel was not started by QEMU -kernel.
    assert any(arg.startswith("BOOT_IMAGE=") for arg in cmdline), cmdline
    grub_linux_lines = [
        line for line in _read(host, "/boot/grub/grub.cfg").splitlines() if line.strip().startswith("linux")
    ]
    assert grub_linux_lines, "no linux entries in grub.cfg"
    assert all("intel_iommu=on" in line for line in grub_linux_lines), grub_linux_lines


def test_iommu_groups_populated(host: Any) -> None:
    groups = host.check_output("ls -1 /sys/kernel/iommu_groups").split()
    assert len(groups) >= 5, groups
    devices = host.check_output("find /sys/kernel/iommu_groups -mindepth 3 -maxdepth 3 -path '*/devices/*'").split()
    assert len(devices) >= len(groups)


def _scsi_serial(host: Any, link: str) -> str:
    props = host.check_output(f"udevadm info --query=property --name=/dev/disk/by-id/{link}")
    return next(line.split("=", 1)[1] for line in props.splitlines() if line.startswith("ID_SCSI_SERIAL="))


def test_exactly_the_data_lake_disks_by_id(host: Any) -> None:
    names = _by_id(host)
    # Disks with a WWN get SAS-style names: wwn-0x<naa> and scsi-3<naa>.
    wwns = {m.group(1) for n in names if (m := re.fullmatch(r"wwn-(0x[0-9a-f]+)", n))}
    assert wwns == DATA_WWNS
    scsi = {m.group(1) for n in names if (m := re.fullmatch(r"scsi-3([0-9a-f]+)", n))}
    assert scsi == {w.removeprefix("0x") for w in DATA_WWNS}
    serials = {_scsi_serial(host, f"wwn-{w}") for w in wwns}
    assert serials == DATA_SERIALS


def test_data_lake_disks_are_rotational(host: Any) -> None:
    for wwn in sorted(DATA_WWNS):
        dev = host.file(f"/dev/disk/by-id/wwn-{wwn}").linked_to
        assert _read(host, f"/sys/block/{Path(dev).name}/queue/rotational").strip() == "1", wwn


def test_nvme_serials(host: Any) -> None:
    names = _by_id(host)
    serials = {m.group(1) for n in names if (m := re.fullmatch(r"nvme-QEMU_NVMe_Ctrl_([^_]+)", n))}
    assert serials == NVME_SERIALS


@pytest.mark.parametrize("function", [0, 1])
def test_spare_device_present(host: Any, function: int) -> None:
    assert host.file(f"/sys/bus/pci/devices/{SPARE_FUNCTIONS[function]}").exists


def test_spare_device_functions_share_an_iommu_group(host: Any) -> None:
    groups = {host.file(f"/sys/bus/pci/devices/{dev}/iommu_group").linked_to for dev in SPARE_FUNCTIONS}
    assert len(groups) == 1, groups


def test_ethtool_ring_query_on_e1000e(host: Any) -> None:
    ifaces = [
        iface
        for iface in host.check_output("ls -1 /sys/class/net").split()
        if host.file(f"/sys/class/net/{iface}/device/driver").exists
        and Path(host.file(f"/sys/class/net/{iface}/device/driver").linked_to).name == "e1000e"
    ]
    assert len(ifaces) == 2, ifaces
    rings = host.run(f"ethtool -g {ifaces[0]}")
    assert rings.rc == 0, rings.stderr
    assert "Pre-set maximums" in rings.stdout


def test_management_nic_found_by_mac(host: Any) -> None:
    iface = host.check_output(f'ip -o link | awk -v mac={LABVM.MGMT_MAC} \'$0 ~ mac {{sub(":", "", $2); print $2}}\'')
    assert iface
    assert "inet 10.0.2.15/" in host.check_output(f"ip -4 -o addr show dev {iface}")


def test_reboot_survived(host: Any) -> None:
    records = [line.split() for line in _read(host, "/var/lib/onprem-lab/boot_ids").splitlines() if line.strip()]
    assert len(records) == 2, records
    (first_id, first_time), (second_id, _) = records
    assert first_id != second_id
    assert _read(host, "/proc/sys/kernel/random/boot_id").strip() == second_id
    btime = int(next(line.split()[1] for line in _read(host, "/proc/stat").splitlines() if line.startswith("btime")))
    assert btime > int(first_time)
