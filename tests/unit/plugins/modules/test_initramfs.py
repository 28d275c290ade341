"""initramfs module on a /boot tree: which kernels are rebuilt, the commands, check mode, bad input."""

from __future__ import annotations

import json
import os

import pytest
import yaml
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.onprem.gpu_server.plugins.module_utils.host import initramfs as planner
from ansible_collections.onprem.gpu_server.plugins.modules import initramfs

RUNNING = "6.1.0-57-amd64"
OLDER = "6.1.0-28-amd64"


def _touch(path, mtime: int, text: str = "x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, (mtime, mtime))


@pytest.fixture
def host(tmp_path, monkeypatch):
    """Two kernels with initrds built at t=1000 (running) and t=500 (older), and a few inputs."""
    _touch(tmp_path / "proc/sys/kernel/osrelease", 1, f"{RUNNING}\n")
    _touch(tmp_path / f"boot/initrd.img-{RUNNING}", 1000)
    _touch(tmp_path / f"boot/initrd.img-{OLDER}", 500)
    _touch(tmp_path / f"boot/initrd.img-{OLDER}.bak", 400)
    _touch(tmp_path / f"boot/vmlinuz-{RUNNING}", 900)
    _touch(tmp_path / "etc/mdadm/mdadm.conf", 700)
    monkeypatch.setattr(initramfs, "ROOT", str(tmp_path))
    calls: list[list[str]] = []

    def run_command(module, argv, **kwargs):
        assert kwargs["environ_update"]["LC_ALL"] == "C"
        calls.append(argv)
        return (1, "", "mkinitramfs failed") if (tmp_path / "fail").exists() else (0, "", "")

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path",
                        lambda module, name, required=False, opt_dirs=None: f"/usr/sbin/{name}")
    return tmp_path, calls


def run(capsys, args, check_mode=False):
    with patch_module_args({**args, "_ansible_check_mode": check_mode}), pytest.raises(SystemExit) as exc:
        initramfs.main()
    return exc.value.code, json.loads(capsys.readouterr().out)


def test_input_older_than_every_initrd_but_one(host, capsys):
    _tree, calls = host
    # mdadm.conf (t=700) is newer than the older kernel's initrd (t=500) only.
    code, result = run(capsys, {"inputs": ["/etc/mdadm/mdadm.conf"]})
    assert code == 0
    assert result["changed"] is True
    assert result["rebuilt"] == [OLDER]
    assert result["installed"] == [OLDER, RUNNING]
    assert result["reasons"][OLDER] == [f"/etc/mdadm/mdadm.conf is newer than /boot/initrd.img-{OLDER}"]
    assert calls == [["/usr/sbin/update-initramfs", "-u", "-k", OLDER]]


def test_running_kernel_only(host, capsys):
    _, calls = host
    code, result = run(capsys, {"inputs": ["/etc/mdadm/mdadm.conf"], "kernels": "running"})
    assert (code, result["changed"], result["rebuilt"], calls) == (0, False, [], [])


def test_newer_input_rebuilds_both_once_each(host, capsys):
    tree, calls = host
    _touch(tree / "etc/modprobe.d/vfio-pci-onprem.conf", 2000)
    _code, result = run(capsys, {"inputs": ["/etc/mdadm/mdadm.conf", "/etc/modprobe.d/vfio-pci-onprem.conf"]})
    assert result["rebuilt"] == [OLDER, RUNNING]
    assert calls == [["/usr/sbin/update-initramfs", "-u", "-k", OLDER],
                     ["/usr/sbin/update-initramfs", "-u", "-k", RUNNING]]


def test_check_mode_predicts_and_runs_nothing(host, capsys):
    tree, calls = host
    _touch(tree / "etc/modprobe.d/vfio-pci-onprem.conf", 2000)
    _code, result = run(capsys, {"inputs": ["/etc/modprobe.d/vfio-pci-onprem.conf"]}, check_mode=True)
    assert (result["changed"], result["rebuilt"], calls) == (True, [OLDER, RUNNING], [])


def test_pending_rebuilds_what_times_cannot_show(host, capsys):
    # A removed drop-in has no time; check mode wrote nothing: the caller says an input changed.
    _, calls = host
    _code, result = run(capsys, {"inputs": ["/etc/modprobe.d/gone.conf"], "pending": True, "kernels": "running"},
                       check_mode=True)
    assert (result["changed"], result["rebuilt"], calls) == (True, [RUNNING], [])
    assert result["reasons"] == {RUNNING: ["an input changed in this run"]}


def test_nothing_newer_nothing_run(host, capsys):
    tree, calls = host
    os.utime(tree / "etc/mdadm/mdadm.conf", (100, 100))
    code, result = run(capsys, {"inputs": ["/etc/mdadm/mdadm.conf", "/etc/absent.conf"]})
    assert (code, result["changed"], result["rebuilt"], calls) == (0, False, [], [])


def test_host_without_initrds(host, capsys):
    tree, calls = host
    for entry in (tree / "boot").iterdir():
        entry.unlink()
    _code, result = run(capsys, {"inputs": ["/etc/mdadm/mdadm.conf"], "pending": True})
    assert (result["changed"], result["installed"], calls) == (False, [], [])


def test_relative_input_refused(host, capsys):
    _, calls = host
    code, result = run(capsys, {"inputs": ["etc/mdadm/mdadm.conf"]})
    assert code == 1 and result["failed"]
    assert result["msg"] == "inputs must be absolute paths; got etc/mdadm/mdadm.conf"
    assert calls == []


def test_failed_rebuild_says_what_was_done(host, capsys):
    tree, _calls = host
    (tree / "fail").write_text("")
    _touch(tree / "etc/modprobe.d/vfio-pci-onprem.conf", 2000)
    code, result = run(capsys, {"inputs": ["/etc/modprobe.d/vfio-pci-onprem.conf"]})
    assert code == 1
    assert result["rebuilt"] == [] and result["changed"] is False
    assert "update-initramfs -u -k " + OLDER in result["msg"] and "mkinitramfs failed" in result["msg"]


@pytest.mark.parametrize(("entries", "expected"), [
    (["initrd.img-6.1.0-57-amd64", "vmlinuz-6.1.0-57-amd64", "config-6.1.0-57-amd64"], ["6.1.0-57-amd64"]),
    (["initrd.img-6.8.12-4-pve", "initrd.img-6.8.0-48-generic"], ["6.8.0-48-generic", "6.8.12-4-pve"]),
    (["initrd.img-6.1.0-57-amd64.bak", "initrd.img-6.1.0-57-amd64.old-dkms", "initrd.img-"], []),
    (["initrd.img", "System.map-6.1.0-57-amd64"], []),
])
def test_installed_initrds(entries, expected):
    assert planner.installed_initrds(entries) == expected


def test_examples_are_valid_module_calls():
    doc = yaml.safe_load(initramfs.DOCUMENTATION)
    assert set(doc["options"]) == set(initramfs.ARGUMENT_SPEC)
    for task in yaml.safe_load(initramfs.EXAMPLES):
        args = task["onprem.gpu_server.initramfs"]
        assert set(args) <= set(initramfs.ARGUMENT_SPEC), args
