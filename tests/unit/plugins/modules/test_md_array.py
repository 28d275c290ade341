"""md_array module wiring with the system faked: check mode, creation, mdadm.conf, initramfs, refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_zfs_pool_fakes import install_fake, run_module

from ansible_collections.onprem.gpu_server.plugins.module_utils.blockdev import probe as blockdev_probe
from ansible_collections.onprem.gpu_server.plugins.module_utils.mdadm import runner as md_runner
from ansible_collections.onprem.gpu_server.plugins.module_utils.mdadm.parsers import parse_mdstat
from ansible_collections.onprem.gpu_server.plugins.modules import md_array

A, B = "/dev/disk/by-id/nvme-LABNVME000-part2", "/dev/disk/by-id/nvme-LABNVME001-part2"
UUID = "5f2b7c1e:8a9d0b3c:4e6f7a8b:9c0d1e2f"
DETAIL = (f"MD_LEVEL=raid1\nMD_DEVICES=2\nMD_METADATA=1.2\nMD_UUID={UUID}\nMD_DEVNAME=os\nMD_NAME=lab:os\n"
          f"MD_DEVICE_dev_nvme0n1p2_ROLE=0\nMD_DEVICE_dev_nvme0n1p2_DEV={A}\n"
          f"MD_DEVICE_dev_nvme1n1p2_ROLE=1\nMD_DEVICE_dev_nvme1n1p2_DEV={B}\n")
MDSTAT = ("Personalities : [raid1]\nmd127 : active raid1 nvme1n1p2[1] nvme0n1p2[0]\n"
          "      33520640 blocks super 1.2 [2/2] [UU]\n      bitmap: 0/1 pages [0KB], 65536KB chunk\n\n"
          "unused devices: <none>\n")
CREATE = ["mdadm", "--create", "/dev/md/os", "--run", "--metadata=1.2", "--level=raid1", "--raid-devices=2",
          "--name=os", "--bitmap=internal", A, B]
LINE = f"ARRAY /dev/md/os metadata=1.2 name=lab:os UUID={UUID}\n"


def setup_blank(system, monkeypatch):
    state = {"created": False}

    def create(_):
        state["created"] = True
        return (0, "", "mdadm: array /dev/md/os started.\n")

    monkeypatch.setattr(md_runner.MdadmRunner, "mdstat",
                        lambda self: parse_mdstat(MDSTAT if state["created"] else "Personalities : [raid1]\n"))
    system.table.update({
        ("mdadm", "--examine", "--export", A): (1, "", "mdadm: No md superblock detected on it.\n"),
        ("mdadm", "--examine", "--export", B): (1, "", "mdadm: No md superblock detected on it.\n"),
        tuple(CREATE): create,
        ("mdadm", "--detail", "--export", "/dev/md127"): (0, DETAIL, ""),
        ("update-initramfs", "-u"): (0, "", ""),
    })


def test_check_mode_predicts_and_touches_nothing(monkeypatch, tmp_path, capsys):
    fake = install_fake(monkeypatch)
    setup_blank(fake, monkeypatch)
    conf = tmp_path / "mdadm.conf"
    conf.write_text("MAILADDR root\n")
    result = run_module(md_array.main, {"name": "os", "level": "raid1", "devices": [A, B], "config": str(conf),
                                        "update_initramfs": True, "_ansible_check_mode": True,
                                        "_ansible_diff": True}, capsys)
    assert result["changed"] is True
    assert result["commands"] == [CREATE]
    assert [c for c in fake.calls if c[0] != "probe" and "--examine" not in c] == []
    assert conf.read_text() == "MAILADDR root\n"
    assert result["mdadm_conf_changed"] is True
    assert result["initramfs_update_required"] is True
    assert result["initramfs_updated"] is False
    assert "ARRAY /dev/md/os metadata=1.2 name=os UUID=<assigned at creation>" in result["diff"][1]["after"]


def test_create_writes_conf_and_updates_initramfs(monkeypatch, tmp_path, capsys):
    fake = install_fake(monkeypatch)
    setup_blank(fake, monkeypatch)
    monkeypatch.setattr(md_array, "md_node", lambda device: "md127")
    conf = tmp_path / "mdadm.conf"
    conf.write_text("# site settings\nMAILADDR root\nARRAY /dev/md/other UUID=11111111:22222222:33333333:44444444\n")
    result = run_module(md_array.main, {"name": "os", "level": "raid1", "devices": [A, B], "config": str(conf),
                                        "update_initramfs": True}, capsys)
    assert result["changed"] is True
    assert fake.ran(["mdadm", "--create"]) == [CREATE]
    assert fake.ran(["update-initramfs"]) == [["update-initramfs", "-u"]]
    assert conf.read_text() == ("# site settings\nMAILADDR root\n"
                                "ARRAY /dev/md/other UUID=11111111:22222222:33333333:44444444\n" + LINE)
    assert result["array"]["uuid"] == UUID
    assert result["array"]["degraded"] is False
    assert result["initramfs_update_required"] is False


def test_running_array_with_conf_is_unchanged(monkeypatch, tmp_path, capsys):
    fake = install_fake(monkeypatch)
    monkeypatch.setattr(md_runner.MdadmRunner, "mdstat", lambda self: parse_mdstat(MDSTAT))
    fake.table[("mdadm", "--detail", "--export", "/dev/md127")] = (0, DETAIL, "")
    conf = tmp_path / "mdadm.conf"
    conf.write_text("MAILADDR root\n" + LINE)
    result = run_module(md_array.main, {"name": "os", "level": "raid1", "devices": [A, B], "config": str(conf)}, capsys)
    assert result["changed"] is False
    assert result["array"]["md_device"] == "md127"
    assert result["mdadm_conf_changed"] is False
    assert [c for c in fake.calls if c[0] == "probe"] == []


def test_degraded_array_reported(monkeypatch, tmp_path, capsys):
    fake = install_fake(monkeypatch)
    degraded = MDSTAT.replace("[2/2] [UU]", "[2/1] [U_]").replace("nvme1n1p2[1]", "nvme1n1p2[1](F)")
    monkeypatch.setattr(md_runner.MdadmRunner, "mdstat", lambda self: parse_mdstat(degraded))
    fake.table[("mdadm", "--detail", "--export", "/dev/md127")] = (0, DETAIL, "")
    conf = tmp_path / "mdadm.conf"
    conf.write_text(LINE)
    result = run_module(md_array.main, {"name": "os", "level": "raid1", "devices": [A, B], "config": str(conf)}, capsys)
    assert result["degraded"] is True
    assert result["array"]["map"] == "U_"
    assert result["changed"] is False
    assert "array md127 is degraded: 1 of 2 devices active [U_]" in str(result["warnings"])


def test_member_with_signature_refused(monkeypatch, tmp_path, capsys):
    fake = install_fake(monkeypatch)
    setup_blank(fake, monkeypatch)
    fake.probes[B] = {"real": "/dev/nvme1n1p2",
                      "signatures": [{"on": "/dev/nvme1n1p2", "type": "xfs", "label": None, "offset": "0x0",
                                      "uuid": "u"}]}
    result = run_module(md_array.main, {"name": "os", "level": "raid1", "devices": [A, B],
                                        "config": str(tmp_path / "mdadm.conf")}, capsys)
    assert result["failed"] is True
    assert result["msg"] == (f"refusing to create md array 'os': {B} (/dev/nvme1n1p2) is not blank: found xfs "
                             "signature on /dev/nvme1n1p2 (set force: true to overwrite it)")
    assert fake.ran(["mdadm", "--create"]) == []
    assert not (tmp_path / "mdadm.conf").exists()


def test_detail_without_uuid_leaves_conf_alone(monkeypatch, tmp_path, capsys):
    """The recorded RAID1 export (Starosdev/scrutiny#530) has no MD_UUID line."""
    fake = install_fake(monkeypatch)
    recorded = (Path(__file__).resolve().parents[2] / "fixtures" / "mdadm" / "mdadm-detail-export_raid1_2disk.txt")
    monkeypatch.setattr(md_runner.MdadmRunner, "mdstat", lambda self: parse_mdstat(MDSTAT))
    fake.table[("mdadm", "--detail", "--export", "/dev/md127")] = (0, recorded.read_text() + "MD_NAME=h:os\n", "")
    conf = tmp_path / "mdadm.conf"
    conf.write_text("MAILADDR root\n")
    result = run_module(md_array.main, {"name": "os", "level": "raid1", "devices": ["/dev/sda2", "/dev/sdb2"],
                                        "config": str(conf)}, capsys)
    assert result["changed"] is False
    assert conf.read_text() == "MAILADDR root\n"
    assert "reported no UUID" in str(result["warnings"])


# Bad input: refused with a message naming the option, before any command (mdadm --detail/--examine, wipefs).
BAD_INPUT = [
    ("path in the name", {"name": "../../etc/x"},
     "name: '../../etc/x' cannot be an md array name: use 1 to 32 letters, digits, '.', '_' or '-', not beginning "
     "with '.' or '-' (the array appears as /dev/md/NAME)"),
    ("space in the name", {"name": "my os"},
     "name: 'my os' cannot be an md array name: use 1 to 32 letters, digits, '.', '_' or '-', not beginning "
     "with '.' or '-' (the array appears as /dev/md/NAME)"),
    ("chunk abc", {"level": "raid0", "chunk": "abc"},
     "chunk: 'abc' is not a chunk size mdadm takes: a power of two of at least 4K, written as KiB with an optional "
     "K, M, G or T suffix (for example 64, 512K, 1M)"),
    ("one device by two names", {"devices": [A, "/dev/nvme0n1p2"]},
     f"devices: {A} and /dev/nvme0n1p2 are the same device (/dev/nvme0n1p2); list each device once"),
]
NODES = {A: "/dev/nvme0n1p2", "/dev/nvme0n1p2": "/dev/nvme0n1p2", B: "/dev/nvme1n1p2"}


@pytest.mark.parametrize("check_mode", [False, True], ids=["run", "check"])
@pytest.mark.parametrize(("label", "args", "message"), BAD_INPUT, ids=[c[0] for c in BAD_INPUT])
def test_bad_input_is_refused_before_any_command(monkeypatch, tmp_path, capsys, label, args, message, check_mode):
    fake = install_fake(monkeypatch)
    monkeypatch.setattr(md_runner.MdadmRunner, "mdstat", lambda self: parse_mdstat(MDSTAT))
    monkeypatch.setattr(blockdev_probe.BlockdevRunner, "resolve",
                        lambda self, path: {"real": NODES.get(path, path), "disk": NODES.get(path, path)})
    conf = tmp_path / "mdadm.conf"
    result = run_module(md_array.main, {"name": "os", "level": "raid1", "devices": [A, B], "config": str(conf),
                                        **args, "_ansible_check_mode": check_mode}, capsys)
    assert result["failed"] is True
    assert result["msg"] == message
    assert fake.calls == []
    assert not conf.exists()
