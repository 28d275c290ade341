"""PCI facts from fixture sysfs trees (sources: tests/unit/fixtures/sysfs/SOURCES.md)."""

from __future__ import annotations

import pytest
from fixtures import lspci_listing, recorded
from fixtures.sysfs import sysfs_tree

from ansible_collections.onprem.gpu_server.plugins.module_utils.pci.address import AddressError
from ansible_collections.onprem.gpu_server.plugins.module_utils.pci.sysfs import collect, normalize_address

SYSFS = recorded.directory("sysfs")


def test_x570_recorded_listing():
    facts = collect(str(SYSFS / "x570-2x-gtx1080ti-gt710"))
    assert len(facts["devices"]) == 54
    assert len(facts["iommu_groups"]) == 39
    assert facts["iommu_enabled"] is True
    gpu = facts["devices"]["0000:0b:00.0"]
    assert (gpu["class"], gpu["id"], gpu["revision"], gpu["iommu_group"]) == ("030000", "10de:1b06", "a1", 30)
    assert gpu["driver"] is None and gpu["numa_node"] is None and gpu["current_link_speed"] is None
    assert facts["iommu_groups"]["23"] == ["0000:03:08.0", "0000:08:00.0", "0000:08:00.1", "0000:08:00.3"]
    gpus = facts["gpus"]
    assert [g["address"] for g in gpus] == ["0000:0b:00.0", "0000:0c:00.0"]
    assert [f["address"] for f in gpus[0]["functions"]] == ["0000:0b:00.0", "0000:0b:00.1"]
    assert [f["class"] for f in gpus[1]["functions"]] == ["030000", "040300"]
    assert gpus[1]["iommu_groups"] == [31]


def test_host_vm_recording_has_no_iommu_and_no_numa():
    facts = collect(str(SYSFS / "host-vm-virtio"))
    assert facts["iommu_enabled"] is False and facts["iommu_groups"] == {}
    assert facts["gpus"] == []
    dev = facts["devices"]["0000:00:01.0"]
    assert dev["driver"] == "virtio-pci"
    assert dev["driver_override"] is None  # sysfs says "(null)"
    assert dev["numa_node"] is None  # sysfs says -1
    assert (dev["class"], dev["id"], dev["subsystem_vendor"]) == ("ffff00", "1af4:1045", "1af4")
    assert facts["devices"]["0000:00:00.0"]["driver"] is None


def test_constructed_gpu_with_all_siblings_and_link(tmp_path):
    # Shape of a Turing card (VGA + HDMI audio + USB-C xHCI + UCSI), values written by the test.
    funcs = {
        "0000:3b:00.0": ("0x030000", "0x1e07", "nvidia"),
        "0000:3b:00.1": ("0x040300", "0x10f7", "snd_hda_intel"),
        "0000:3b:00.2": ("0x0c0330", "0x1ad6", "xhci_hcd"),
        "0000:3b:00.3": ("0x0c8000", "0x1ad7", "nvidia-gpu"),
    }
    for address, (pci_class, device, driver) in funcs.items():
        sysfs_tree.add_function(tmp_path, address, {
            "class": pci_class, "vendor": "0x10de", "device": device, "numa_node": "1",
            "current_link_speed": "8.0 GT/s PCIe", "current_link_width": "16",
            "max_link_speed": "16.0 GT/s PCIe", "max_link_width": "16",
        }, driver=driver, group=74)
    facts = collect(str(tmp_path))
    (gpu,) = facts["gpus"]
    assert gpu["numa_node"] == 1 and gpu["driver"] == "nvidia"
    assert (gpu["current_link_speed"], gpu["current_link_width"], gpu["max_link_speed"]) == (
        "8.0 GT/s PCIe", 16, "16.0 GT/s PCIe")
    assert [f["driver"] for f in gpu["functions"]] == ["nvidia", "snd_hda_intel", "xhci_hcd", "nvidia-gpu"]
    assert facts["iommu_groups"] == {"74": sorted(funcs)}


def test_groups_from_links_when_group_dir_missing(tmp_path):
    sysfs_tree.add_function(tmp_path, "0000:01:00.0", {"class": "0x030000"}, group=5)
    (tmp_path / "sys/kernel/iommu_groups/5/devices/0000:01:00.0").unlink()
    (tmp_path / "sys/kernel/iommu_groups/5/devices").rmdir()
    (tmp_path / "sys/kernel/iommu_groups/5").rmdir()
    (tmp_path / "sys/kernel/iommu_groups").rmdir()
    assert collect(str(tmp_path))["iommu_groups"] == {"5": ["0000:01:00.0"]}


def test_empty_tree(tmp_path):
    assert collect(str(tmp_path)) == {"devices": {}, "gpus": [], "iommu_groups": {}, "iommu_enabled": False}


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0b:00.0", ("0000:0b:00", 0)), ("0000:0B:00.1", ("0000:0b:00", 1)), ("0b:00", ("0000:0b:00", None)),
     ("0001:3b:1f.7", ("0001:3b:1f", 7))],
)
def test_normalize_address(text, expected):
    assert normalize_address(text) == expected


@pytest.mark.parametrize("text", ["0b:20.0", "b:00.0", "0b:00.8", "gpu0", ""])
def test_normalize_address_refuses(text):
    with pytest.raises(AddressError):
        normalize_address(text)


def test_lab_tree_agrees_with_the_lspci_listing_recorded_with_it():
    """Both recorded in the lab VM in one go (SOURCES.md): every function, class, ids, subsystem, driver."""
    listing = lspci_listing.parse((SYSFS / "labvm-q35" / "lspci-nnk.txt").read_text(encoding="utf-8"))
    facts = collect(str(SYSFS / "labvm-q35"))
    assert len(listing) == 18
    assert listing["0000:01:02.0"] == {"class4": "0880", "id": "1b36:0011", "revision": "01",
                                       "subsystem": "1af4:1100", "driver": "pvpanic-pci"}
    assert lspci_listing.compare(facts["devices"], listing) == []
    assert facts["iommu_groups"]["11"] == ["0000:00:11.0", "0000:01:01.0", "0000:01:02.0"]


def test_lspci_comparison_reports_a_wrong_driver():
    listing = lspci_listing.parse((SYSFS / "labvm-q35" / "lspci-nnk.txt").read_text(encoding="utf-8"))
    facts = collect(str(SYSFS / "labvm-q35"))
    listing["0000:00:10.1"]["driver"] = "vfio-pci"
    del listing["0000:00:05.0"]
    assert lspci_listing.compare(facts["devices"], listing) == [
        "addresses differ: facts only ['0000:00:05.0'], lspci only []",
        "0000:00:10.1 driver: pci_facts 'snd_hda_intel', lspci 'vfio-pci'",
    ]
