"""vfio_pci module on a copy of the lab VM tree, commands and sysfs writes checked."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import yaml
from ansible.module_utils import basic
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.testing import patch_module_args
from fixtures import recorded
from fixtures.sysfs import sysfs_tree

from ansible_collections.onprem.gpu_server.plugins.modules import vfio_pci

SYSFS = recorded.directory("sysfs")
MODPROBE = "etc/modprobe.d/vfio-pci-onprem.conf"
UDEV = "etc/udev/rules.d/60-vfio-pci-onprem.rules"
MODULES = "etc/initramfs-tools/modules"


@pytest.fixture
def lab(tmp_path, monkeypatch):
    """The lab VM tree (recorded, see SOURCES.md) plus a Debian 12 /etc and /boot."""
    shutil.copytree(SYSFS / "labvm-q35", tmp_path, symlinks=True, dirs_exist_ok=True)
    for link in (tmp_path / "sys/bus/pci/devices").iterdir():
        # The recorded link text climbs above the copy; point it at the copy's drivers/ so unbind writes land there.
        link = link / "driver"
        if not link.is_symlink():
            continue
        target = os.path.basename(os.readlink(link))
        link.unlink()
        link.symlink_to(f"../../drivers/{target}")
    (tmp_path / "sys/bus/pci/drivers/snd_hda_intel").mkdir(parents=True)
    (tmp_path / "etc/initramfs-tools").mkdir(parents=True)
    (tmp_path / MODULES).write_text("# List of modules that you want to include in your initramfs.\n")
    (tmp_path / "proc/sys/kernel").mkdir(parents=True)
    (tmp_path / "proc/sys/kernel/osrelease").write_text("6.1.0-28-amd64\n")
    (tmp_path / "boot").mkdir()
    (tmp_path / "boot/initrd.img-6.1.0-28-amd64").write_text("initrd")
    os.utime(tmp_path / "boot/initrd.img-6.1.0-28-amd64", (1_000_000, 1_000_000))
    monkeypatch.setattr(vfio_pci, "ROOT", str(tmp_path))
    calls: list[list[str]] = []

    def run_command(module, argv, **kwargs):
        assert kwargs["environ_update"]["LC_ALL"] == "C"
        calls.append(argv)
        if argv[-1] == "vfio-pci":
            # modprobe loaded the driver: make drivers_probe writes land in a file
            (tmp_path / "sys/bus/pci/drivers/vfio-pci").mkdir(parents=True, exist_ok=True)
        return 0, "", ""

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path",
                        lambda module, name, required=False, opt_dirs=None: f"/usr/sbin/{name}")
    return tmp_path, calls


def run(args, capsys, check=False, diff=False):
    with patch_module_args(dict(args, _ansible_check_mode=check, _ansible_diff=diff)), pytest.raises(SystemExit):
        vfio_pci.main()
    return json.loads(capsys.readouterr().out)


def test_check_mode_predicts_and_writes_nothing(lab, capsys):
    root, calls = lab
    result = run({"devices": ["00:10.0"]}, capsys, check=True, diff=True)
    assert result["changed"] is True
    assert [f["address"] for f in result["functions"]] == ["0000:00:10.0", "0000:00:10.1"]
    assert result["ids"] == ["1b36:0005", "8086:2668"]
    assert result["initramfs_update_required"] is True and result["reboot_required"] is True
    assert [d["after_header"] for d in result["diff"]] == ["/etc/modprobe.d/vfio-pci-onprem.conf",
                                                          "/etc/initramfs-tools/modules"]
    assert not (root / MODPROBE).exists() and calls == []


def test_apply_idempotent_and_initramfs_state(lab, capsys):
    root, calls = lab
    first = run({"devices": ["00:10.0"]}, capsys)
    assert first["changed"] is True
    assert "options vfio-pci ids=1b36:0005,8086:2668\n" in (root / MODPROBE).read_text()
    assert (root / MODULES).read_text().endswith("vfio\nvfio_iommu_type1\nvfio_pci\n")
    second = run({"devices": ["00:10.0"]}, capsys)
    assert second["changed"] is False
    assert second["initramfs_update_required"] is True  # files are newer than the initrd
    assert second["reboot_required"] is True
    # update-initramfs ran after the files were written (explicit times: the clock is coarser than mtimes)
    later = max((root / rel).stat().st_mtime for rel in (MODPROBE, MODULES)) + 5
    os.utime(root / "boot/initrd.img-6.1.0-28-amd64", (later, later))
    third = run({"devices": ["00:10.0"]}, capsys)
    assert third["initramfs_update_required"] is False
    assert calls == []


def test_update_initramfs_runs_for_the_running_kernel(lab, capsys):
    _root, calls = lab
    result = run({"devices": ["00:10.0"], "update_initramfs": True}, capsys)
    assert result["initramfs_update_required"] is False
    assert calls == [["/usr/sbin/update-initramfs", "-u", "-k", "6.1.0-28-amd64"]]


def fake_kernel(monkeypatch, root):
    """After drivers_probe, a function whose driver_override says vfio-pci is bound to vfio-pci."""
    devices = root / "sys/bus/pci/devices"
    real_read = vfio_pci.sysfs.read_functions

    def read_functions(tree):
        if (root / "sys/bus/pci/drivers_probe").exists():
            for override in devices.glob("*/driver_override"):
                if override.read_text().strip() == "vfio-pci":
                    link = override.parent / "driver"
                    if link.is_symlink():
                        link.unlink()
                    link.symlink_to("../../drivers/vfio-pci")
        return real_read(tree)

    monkeypatch.setattr(vfio_pci.sysfs, "read_functions", read_functions)


def test_bind_now_hands_both_functions_over(lab, capsys, monkeypatch):
    root, calls = lab
    fake_kernel(monkeypatch, root)
    result = run({"devices": ["00:10.1"], "bind_now": True}, capsys)
    devices = root / "sys/bus/pci/devices"
    assert calls == [["/usr/sbin/modprobe", "vfio-pci"]]
    assert (devices / "0000:00:10.0/driver_override").read_text() == "vfio-pci"
    assert (root / "sys/bus/pci/drivers/snd_hda_intel/unbind").read_text() == "0000:00:10.1"
    assert result["bound_now"] == ["0000:00:10.0", "0000:00:10.1"]
    assert result["reboot_required"] is False
    assert {f["driver"] for f in result["functions"]} == {"vfio-pci"}


def test_bind_now_fails_when_the_kernel_does_not_bind(lab, capsys):
    result = run({"devices": ["00:10.0"], "bind_now": True}, capsys)
    assert result["failed"] is True
    assert "still not bound to vfio-pci: 0000:00:10.0" in result["msg"]


def test_refusal_changes_nothing(lab, capsys):
    root, calls = lab
    sysfs_tree.add_function(root, "0000:00:08.0", {"class": "0x020000", "vendor": "0x8086", "device": "0x10d3"},
                            driver="e1000e", group=10)
    result = run({"devices": ["00:10.0"]}, capsys)
    assert result["failed"] is True
    assert "IOMMU group 10 also holds 0000:00:08.0" in result["msg"]
    assert "0000:00:08.0 class 020000 8086:10d3 driver e1000e" in result["msg"]
    assert not (root / MODPROBE).exists() and not (root / UDEV).exists()
    assert (root / MODULES).read_text() == "# List of modules that you want to include in your initramfs.\n"
    assert calls == []


def test_documentation_matches_argument_spec_and_examples_validate():
    doc = yaml.safe_load(vfio_pci.DOCUMENTATION)
    spec = vfio_pci.ARGUMENT_SPEC
    assert set(doc["options"]) == set(spec)
    for name, option in doc["options"].items():
        for key in ("type", "default", "choices", "required", "elements"):
            assert option.get(key) == spec[name].get(key), (name, key)
    tasks = [t for t in yaml.safe_load(vfio_pci.EXAMPLES) if "onprem.gpu_server.vfio_pci" in t]
    assert len(tasks) == 4
    for task in tasks:
        assert ArgumentSpecValidator(spec).validate(task["onprem.gpu_server.vfio_pci"]).error_messages == []
    assert {"functions", "initramfs_update_required", "reboot_required"} <= set(yaml.safe_load(vfio_pci.RETURN))
