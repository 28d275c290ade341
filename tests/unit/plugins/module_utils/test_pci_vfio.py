"""vfio-pci planning on fixture trees (sources: tests/unit/fixtures/sysfs/SOURCES.md)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fixtures import recorded
from fixtures.sysfs import sysfs_tree

from ansible_collections.onprem.gpu_server.plugins.module_utils.pci import sysfs
from ansible_collections.onprem.gpu_server.plugins.module_utils.pci.vfio import (
    MARKER,
    FileChange,
    VfioRefused,
    bind_steps,
    initramfs_update_required,
    merge_initramfs_modules,
    plan,
)

SYSFS = recorded.directory("sysfs")
TREES = {name: str(SYSFS / name) for name in ("labvm-q35", "x570-2x-gtx1080ti-gt710", "host-vm-virtio")}
MODPROBE = "/etc/modprobe.d/vfio-pci-onprem.conf"
UDEV = "/etc/udev/rules.d/60-vfio-pci-onprem.rules"
INITRAMFS = "/etc/initramfs-tools/modules"
DEBIAN_INITRAMFS_MODULES = (
    "# List of modules that you want to include in your initramfs.\n# Examples:\n# raid1\n# sd_mod\n"
)


def run_plan(tree, devices, binding="ids", modprobe=None, udev=None, initramfs=DEBIAN_INITRAMFS_MODULES, **kwargs):
    root = TREES[tree]
    return plan(sysfs.read_functions(root), sysfs.read_iommu_groups(root), devices, binding,
                FileChange(MODPROBE, modprobe, None), FileChange(UDEV, udev, None),
                FileChange(INITRAMFS, initramfs, None), **kwargs)


# (name, tree, devices, binding) -> (functions, softdeps, key modprobe lines, udev lines)
CASES = [
    ("lab-spare-device", "labvm-q35", ["00:10.0"], "ids",
     ["0000:00:10.0", "0000:00:10.1"], ["snd_hda_intel"],
     ["options vfio-pci ids=1b36:0005,8086:2668", "softdep snd_hda_intel pre: vfio-pci"], 0),
    ("lab-by-address", "labvm-q35", ["0000:00:10.1"], "driver_override",
     ["0000:00:10.0", "0000:00:10.1"], ["snd_hda_intel"], ["softdep snd_hda_intel pre: vfio-pci"], 2),
    ("x570-gtx1080ti-from-audio-function", "x570-2x-gtx1080ti-gt710", ["0b:00.1"], "ids",
     ["0000:0b:00.0", "0000:0b:00.1"], ["nouveau", "nvidia", "snd_hda_intel"],
     ["options vfio-pci ids=10de:10ef,10de:1b06", "softdep nvidia pre: vfio-pci"], 0),
    ("x570-both-gpus", "x570-2x-gtx1080ti-gt710", ["0b:00.0", "0c:00"], "ids",
     ["0000:0b:00.0", "0000:0b:00.1", "0000:0c:00.0", "0000:0c:00.1"], ["nouveau", "nvidia", "snd_hda_intel"],
     ["options vfio-pci ids=10de:0e0f,10de:10ef,10de:128b,10de:1b06"], 0),
    ("x570-group-with-bridge-is-viable", "x570-2x-gtx1080ti-gt710", ["08:00.1"], "driver_override",
     ["0000:08:00.0", "0000:08:00.1", "0000:08:00.3"], ["xhci_hcd", "xhci_pci"],
     ["softdep xhci_pci pre: vfio-pci"], 3),
    ("x570-sata-by-address", "x570-2x-gtx1080ti-gt710", ["09:00.0"], "driver_override",
     ["0000:09:00.0"], [], [], 1),
]


@pytest.mark.parametrize(("name", "tree", "devices", "binding", "functions", "softdeps", "lines", "udev_rules"),
                         CASES, ids=[case[0] for case in CASES])
def test_plan(name, tree, devices, binding, functions, softdeps, lines, udev_rules):
    result = run_plan(tree, devices, binding)
    assert result.functions == functions
    assert result.softdeps == softdeps
    assert result.groups_verified and result.warnings == []
    modprobe, udev, initramfs = result.files
    assert modprobe.after.startswith(MARKER)
    for line in lines:
        assert line in modprobe.after.splitlines()
    assert ("options vfio-pci ids=" in modprobe.after) == (binding == "ids")
    rules = [line for line in (udev.after or "").splitlines() if line.startswith("ACTION")]
    assert len(rules) == udev_rules
    assert all('ATTR{driver_override}="vfio-pci"' in rule for rule in rules)
    assert initramfs.after == DEBIAN_INITRAMFS_MODULES + "vfio\nvfio_iommu_type1\nvfio_pci\n"
    assert result.to_bind == functions  # nothing is on vfio-pci yet


def test_second_run_is_stable():
    first = run_plan("labvm-q35", ["00:10.0"])
    modprobe, udev, initramfs = (change.after for change in first.files)
    second = run_plan("labvm-q35", ["00:10.0"], modprobe=modprobe, udev=udev, initramfs=initramfs)
    assert [change.changed for change in first.files] == [True, False, True]
    assert not any(change.changed for change in second.files)


def test_switching_to_ids_removes_own_udev_rule():
    by_address = run_plan("labvm-q35", ["00:10.0"], "driver_override")
    result = run_plan("labvm-q35", ["00:10.0"], "ids", udev=by_address.files[1].after)
    assert result.files[1].changed and result.files[1].after is None


# (name, tree, devices, binding, kwargs) -> refusal pattern
REFUSALS = [
    ("x570-bridge-alone-leaves-its-endpoints", "x570-2x-gtx1080ti-gt710", ["03:08.0"], "ids", {},
     r"IOMMU group 23 also holds 0000:08:00.0, 0000:08:00.1, 0000:08:00.3"),
    ("x570-sata-ids-would-take-three-more", "x570-2x-gtx1080ti-gt710", ["09:00.0"], "ids", {},
     r"(?s)binding=ids would also give .*0000:0a:00.0 class 010600 1022:7901.*0000:10:00.0"),
    ("unknown-device", "labvm-q35", ["00:13.0"], "ids", {}, r"no PCI device '00:13.0'"),
    # Recorded lab VM: the pvpanic behind the PCIe-to-PCI bridge shares group 11 with the virtio-rng.
    ("labvm-device-behind-pci-bridge", "labvm-q35", ["01:02.0"], "ids", {},
     r"(?s)IOMMU group 11 also holds 0000:01:01\.0, which.*0000:00:11\.0 class 060400 1b36:000e"
     r".*0000:01:01\.0 class 00ff00 1af4:1005 driver virtio-pci\n.*0000:01:02\.0 class 088000 1b36:0011 driver "
     r"pvpanic-pci \[requested\]"),
    ("bad-address", "labvm-q35", ["gpu0"], "ids", {}, r"not a PCI address"),
    ("iommu-off", "host-vm-virtio", ["00:03.0"], "ids", {}, r"the IOMMU is off"),
    ("foreign-modprobe-file", "labvm-q35", ["00:10.0"], "ids", {"modprobe": "options vfio-pci ids=1:2\n"},
     r"not managed by this module"),
]


@pytest.mark.parametrize(("name", "tree", "devices", "binding", "kwargs", "pattern"), REFUSALS,
                         ids=[case[0] for case in REFUSALS])
def test_refusals(name, tree, devices, binding, kwargs, pattern):
    with pytest.raises(VfioRefused, match=pattern):
        run_plan(tree, devices, binding, **kwargs)


def test_group_shared_with_a_nic_is_refused_with_the_whole_group(tmp_path):
    # Constructed from the recorded lab tree: its spare device (group 10) with an e1000e NIC put into that group,
    # as a slot without ACS would.
    recorded_root = SYSFS / "labvm-q35"
    for address in ("0000:00:10.0", "0000:00:10.1"):
        attrs = {name: (recorded_root / "sys/bus/pci/devices" / address / name).read_text().strip()
                 for name in ("class", "vendor", "device")}
        driver_link = recorded_root / "sys/bus/pci/devices" / address / "driver"
        driver = Path(os.readlink(driver_link)).name if driver_link.is_symlink() else None
        sysfs_tree.add_function(tmp_path, address, attrs, driver=driver, group=10)
    sysfs_tree.add_function(tmp_path, "0000:00:08.0", {"class": "0x020000", "vendor": "0x8086", "device": "0x10d3"},
                            driver="e1000e", group=10)
    root = str(tmp_path)
    with pytest.raises(VfioRefused) as info:
        plan(sysfs.read_functions(root), sysfs.read_iommu_groups(root), ["00:10.0"], "ids",
             FileChange(MODPROBE, None, None), FileChange(UDEV, None, None), None)
    message = str(info.value)
    assert "nothing was changed" in message
    assert "IOMMU group 10 also holds 0000:00:08.0," in message
    for line in ("  0000:00:08.0 class 020000 8086:10d3 driver e1000e\n",
                 "  0000:00:10.0 class 00ff00 1b36:0005 driver (none) [requested]\n",
                 "  0000:00:10.1 class 040300 8086:2668 driver snd_hda_intel [requested]"):
        assert line in message


def test_every_function_of_a_device_is_claimed():
    # Asking for the lab's ICH9 SMBus (00:1f.3) claims LPC and AHCI too: same device, same group.
    result = run_plan("labvm-q35", ["00:1f.3"], "driver_override")
    assert result.functions == ["0000:00:1f.0", "0000:00:1f.2", "0000:00:1f.3"]


def test_iommu_off_can_be_allowed_explicitly():
    result = run_plan("host-vm-virtio", ["00:03.0"], allow_unverified_groups=True)
    assert result.groups_verified is False
    assert "NOT checked" in result.warnings[0]
    assert result.softdeps == ["virtio_pci"]  # the bound driver, from the recorded driver link


def test_no_initramfs_tools():
    root = TREES["labvm-q35"]
    result = plan(sysfs.read_functions(root), sysfs.read_iommu_groups(root), ["00:10.0"], "ids",
                  FileChange(MODPROBE, None, None), FileChange(UDEV, None, None), None)
    assert len(result.files) == 2
    assert "initramfs-tools not found" in result.warnings[0]


@pytest.mark.parametrize(
    ("text", "modules", "expected"),
    [
        (None, ["vfio"], "vfio\n"),
        ("vfio-pci ids=1:2\nvfio", ["vfio", "vfio_pci", "vfio_iommu_type1"],
         "vfio-pci ids=1:2\nvfio\nvfio_iommu_type1\n"),
        ("# vfio\n", ["vfio"], "# vfio\nvfio\n"),
        ("vfio\n", ["vfio"], "vfio\n"),
    ],
)
def test_merge_initramfs_modules(text, modules, expected):
    assert merge_initramfs_modules(text, modules) == expected


@pytest.mark.parametrize(
    ("changed", "file_mtime", "initrd_mtime", "expected"),
    [(True, 1.0, 2.0, True), (False, 3.0, 2.0, True), (False, 1.0, 2.0, False), (False, 3.0, None, False)],
)
def test_initramfs_update_required(changed, file_mtime, initrd_mtime, expected):
    change = FileChange("/a", "x" if not changed else None, "x")
    assert initramfs_update_required([change], {"/a": file_mtime}, initrd_mtime) is expected


def test_bind_steps():
    functions = sysfs.read_functions(TREES["labvm-q35"])
    assert bind_steps(functions, ["0000:00:10.0", "0000:00:10.1"]) == [
        ("/sys/bus/pci/devices/0000:00:10.0/driver_override", "vfio-pci"),
        ("/sys/bus/pci/drivers_probe", "0000:00:10.0"),
        ("/sys/bus/pci/devices/0000:00:10.1/driver_override", "vfio-pci"),
        ("/sys/bus/pci/devices/0000:00:10.1/driver/unbind", "0000:00:10.1"),
        ("/sys/bus/pci/drivers_probe", "0000:00:10.1"),
    ]
