"""GPU passthrough on the lab VM's real kernel: what the trading profile's vfio role left behind.

The spare device at 00:10 (pci-testdev + Intel HDA, one IOMMU group) stands in for a GPU and its
HDMI audio; 01:02.0 (pvpanic behind a PCIe-to-PCI bridge) shares group 11 with a virtio-rng that
stays with the host, so passing it through must be refused.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
from testinfra.modules.ansible import AnsibleException

testinfra_hosts = ["ansible://lab-trading"]

PROJECT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[3]))
sys.path.insert(0, str(PROJECT / "tests" / "unit"))
# the same comparison the unit tests run on the recorded listing
from fixtures import lspci_listing

SPARE = ["0000:00:10.0", "0000:00:10.1"]
WANTED_PARAMS = ["intel_iommu=on", "iommu=pt", "default_hugepagesz=1G", "hugepagesz=1G", "hugepages=1"]
OWNED_AND_BOOT_FILES = (
    "/etc/modprobe.d/vfio-pci-onprem.conf /etc/modprobe.d/onprem-gpu-host-blacklist.conf "
    "/etc/initramfs-tools/modules /etc/default/grub.d/60-onprem-vfio.cfg /boot/grub/grub.cfg /boot/initrd.img-*"
)


def _driver(host: Any, address: str) -> str | None:
    link = host.file(f"/sys/bus/pci/devices/{address}/driver")
    return Path(link.linked_to).name if link.exists else None


@pytest.mark.parametrize("address", SPARE)
def test_spare_device_functions_bound_to_vfio_pci(host: Any, address: str) -> None:
    assert _driver(host, address) == "vfio-pci"


def test_kernel_parameters_came_through_the_boot_loader(host: Any) -> None:
    running = host.file("/proc/cmdline").content_string.split()
    assert [p for p in WANTED_PARAMS if p not in running] == [], running
    dropin = host.file("/etc/default/grub.d/60-onprem-vfio.cfg").content_string
    assert all(p in dropin for p in WANTED_PARAMS), dropin


def test_one_gib_huge_page_reserved_at_boot(host: Any) -> None:
    assert host.file("/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages").content_string.strip() == "1"


def test_vfio_and_blacklist_are_in_the_initramfs(host: Any) -> None:
    listing = host.check_output("lsinitramfs /boot/initrd.img-$(uname -r)")
    assert "etc/modprobe.d/vfio-pci-onprem.conf" in listing
    assert "etc/modprobe.d/onprem-gpu-host-blacklist.conf" in listing
    assert "/vfio-pci.ko" in listing or "/vfio-pci.ko.xz" in listing or "vfio/pci/vfio-pci" in listing, \
        [line for line in listing.splitlines() if "vfio" in line]


def test_host_gpu_drivers_blacklisted(host: Any) -> None:
    config = host.check_output("modprobe --showconfig")
    assert "blacklist nouveau" in config.splitlines()
    assert "blacklist nvidia" in config.splitlines()


def test_pci_facts_match_lspci(host: Any) -> None:
    facts = host.ansible("onprem.gpu_server.pci_facts", check=False)["ansible_facts"]["pci"]
    listing = lspci_listing.parse(host.check_output("lspci -nnk -D"))
    assert len(listing) == 18
    assert lspci_listing.compare(facts["devices"], listing) == []
    assert facts["iommu_groups"]["11"] == ["0000:00:11.0", "0000:01:01.0", "0000:01:02.0"]


def test_shared_iommu_group_refused_and_nothing_changed(host: Any) -> None:
    before = host.check_output(f"sha256sum {OWNED_AND_BOOT_FILES}")
    try:
        result = host.ansible("onprem.gpu_server.vfio_pci", "devices=0000:01:02.0 update_initramfs=true", check=False)
    except AnsibleException as exc:  # testinfra raises only when the parsed result keeps its "failed" key
        result = exc.result
    assert result.get("changed") is False, result
    message = result.get("msg", "")
    assert "refusing to claim devices whose IOMMU group is shared" in message
    assert "IOMMU group 11 also holds 0000:01:01.0," in message
    for line in ("  0000:00:11.0 class 060400 1b36:000e driver (none) [bridge]\n",
                 "  0000:01:01.0 class 00ff00 1af4:1005 driver virtio-pci\n",
                 "  0000:01:02.0 class 088000 1b36:0011 driver pvpanic-pci [requested]"):
        assert line in message, message
    assert host.check_output(f"sha256sum {OWNED_AND_BOOT_FILES}") == before
    assert _driver(host, "0000:01:02.0") == "pvpanic-pci"
    assert _driver(host, "0000:01:01.0") == "virtio-pci"
