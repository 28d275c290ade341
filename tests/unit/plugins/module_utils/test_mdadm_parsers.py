"""mdadm / mdstat / wipefs parsers against recorded real output (tests/unit/fixtures/mdadm/SOURCES.md)."""

from __future__ import annotations

import pytest
from fixtures import recorded

from ansible_collections.onprem.gpu_server.plugins.module_utils.blockdev.probe import (
    fallback_parent,
    parse_blkid_export,
    parse_mounts,
    parse_wipefs_json,
)
from ansible_collections.onprem.gpu_server.plugins.module_utils.blockdev.refusals import describe_findings, refusal
from ansible_collections.onprem.gpu_server.plugins.module_utils.mdadm.parsers import (
    array_line,
    merge_mdadm_conf,
    parse_mdadm_export,
    parse_mdstat,
)

read = recorded.reader("mdadm")


def test_detail_export_raid0_recorded():
    got = parse_mdadm_export(read("mdadm-detail-export_raid0_3disk.txt"))
    assert got["MD_LEVEL"] == "raid0"
    assert got["MD_UUID"] == "8dc170a5:b1862dac:6373e532:61d36e9f"
    assert got["MD_NAME"] == "ubuntu-server:jenkins-raid"
    assert got["members"] == [{"dev": "/dev/sda", "role": "0"}, {"dev": "/dev/sdb", "role": "1"},
                              {"dev": "/dev/sdd", "role": "2"}]


def test_detail_export_raid1_recorded():
    got = parse_mdadm_export(read("mdadm-detail-export_raid1_2disk.txt"))
    assert (got["MD_LEVEL"], got["MD_DEVICES"], got["MD_METADATA"]) == ("raid1", "2", "1.2")
    assert [m["dev"] for m in got["members"]] == ["/dev/sda2", "/dev/sdb2"]
    assert "MD_UUID" not in got


def test_examine_export_constructed():
    """Constructed: `mdadm --examine --export` of a RAID1 member."""
    got = parse_mdadm_export(read("constructed_mdadm-examine-export_raid1-member.txt"))
    assert got["MD_UUID"] == "5f2b7c1e:8a9d0b3c:4e6f7a8b:9c0d1e2f"
    assert got["MD_NAME"] == "lab:os"
    assert got["members"] == []


# file, array, level, members, raid_disks, active, map, degraded
MDSTAT_CASES = [
    ("mdstat_4x-raid1_degraded_failed-member.txt", "md0", "raid1", ["sdb1", "sda1"], 2, 1, "_U", True),
    ("mdstat_raid0-over-two-raid1_clean.txt", "md2", "raid0", ["md0", "md1"], None, None, None, False),
    ("mdstat_raid0-over-two-raid1_clean.txt", "md1", "raid1", ["sdd1", "sde1"], 2, 2, "UU", False),
    ("mdstat_raid0_2disk.txt", "md1", "raid0", ["sdd", "sdb"], None, None, None, False),
    ("mdstat_raid0_6disk_partial.txt", "md125", "raid0", ["sdh", "sdg", "sdf", "sde", "sdc", "sdb"],
     None, None, None, False),
    ("mdstat_raid1-raid0-raid1_v0.90_clean.txt", "md3", "raid1", ["sdb3", "sda3"], 2, 2, "UU", False),
    ("mdstat_raid10-22disk_degraded.txt", "md127", "raid10", None, 22, 20, "UUUUUUUUUUUUUUUUU_U_UU", True),
]


@pytest.mark.parametrize(("name", "array", "level", "members", "raid", "active", "umap", "degraded"), MDSTAT_CASES)
def test_mdstat_recorded(name, array, level, members, raid, active, umap, degraded):
    got = parse_mdstat(read(name))["arrays"][array]
    assert got["state"] == "active"
    assert got["level"] == level
    if members is not None:
        assert [m["name"] for m in got["members"]] == members
    assert (got["raid_disks"], got["active_disks"], got["map"], got["degraded"]) == (raid, active, umap, degraded)


def test_mdstat_faulty_flag_and_counts():
    got = parse_mdstat(read("mdstat_4x-raid1_degraded_failed-member.txt"))
    assert sorted(got["arrays"]) == ["md0", "md1", "md2", "md3"]
    assert [(m["name"], m["faulty"]) for m in got["arrays"]["md3"]["members"]] == [("sdb4", False), ("sda4", True)]
    assert "raid10" in got["personalities"]
    assert len(parse_mdstat(read("mdstat_raid10-22disk_degraded.txt"))["arrays"]["md127"]["members"]) == 20


def test_mdstat_resync_constructed():
    """Constructed: a RAID1 resyncing after creation."""
    text = ("Personalities : [raid1]\nmd127 : active raid1 nvme1n1p2[1] nvme0n1p2[0]\n"
            "      33520640 blocks super 1.2 [2/2] [UU]\n"
            "      [=>...................]  resync =  7.5% (2514944/33520640) finish=2.0min speed=251494K/sec\n"
            "      bitmap: 1/1 pages [4KB], 65536KB chunk\n\nunused devices: <none>\n")
    got = parse_mdstat(text)["arrays"]["md127"]
    assert got["sync"] == {"action": "resync", "progress": "7.5%"}
    assert got["degraded"] is False


def test_wipefs_gpt_constructed():
    """Constructed: util-linux `wipefs --no-act -J` of a GPT disk (two GPT copies + PMBR)."""
    got = parse_wipefs_json(read("constructed_wipefs-J_gpt-disk.json"))
    assert [(s["on"], s["type"]) for s in got] == [("/dev/sdb", "gpt"), ("/dev/sdb", "PMBR")]
    assert parse_wipefs_json("") == []


def test_wipefs_zfs_member_constructed():
    got = parse_wipefs_json(read("constructed_wipefs-J_zfs-member-partition.json"))
    assert got == [{"on": "/dev/sdb1", "type": "zfs_member", "offset": "0x3f000", "label": "tank",
                    "uuid": "15378598475931358045"}]


def test_blkid_export():
    text = "DEVNAME=/dev/sdc\nUUID=5f2b7c1e-8a9d-0b3c-4e6f-7a8b9c0d1e2f\nLABEL=lab:os\nTYPE=linux_raid_member\n"
    assert parse_blkid_export(text, "/dev/sdc") == [
        {"on": "/dev/sdc", "type": "linux_raid_member", "offset": None, "label": "lab:os",
         "uuid": "5f2b7c1e-8a9d-0b3c-4e6f-7a8b9c0d1e2f"}]
    assert parse_blkid_export("", "/dev/sdc") == []


def test_mounts_decodes_spaces():
    text = "/dev/sda1 /boot ext4 rw 0 0\nproc /proc proc rw 0 0\n/dev/sdb1 /mnt/my\\040disk xfs rw 0 0\n"
    assert parse_mounts(text) == {"/dev/sda1": ["/boot"], "/dev/sdb1": ["/mnt/my disk"]}


@pytest.mark.parametrize(("path", "parent"), [
    ("/dev/disk/by-id/wwn-0x5000c50000ab0001-part1", "/dev/disk/by-id/wwn-0x5000c50000ab0001"),
    ("/dev/disk/by-id/wwn-0x5000c50000ab0001", "/dev/disk/by-id/wwn-0x5000c50000ab0001"),
    ("/dev/sdb1", "/dev/sdb"),
    ("/dev/sdb", "/dev/sdb"),
    ("/dev/nvme0n1p3", "/dev/nvme0n1"),
    ("/dev/nvme0n1", "/dev/nvme0n1"),
    ("/dev/md127", "/dev/md127"),
])
def test_fallback_parent(path, parent):
    assert fallback_parent(path) == parent


def test_refusal_messages():
    sigs = parse_wipefs_json(read("constructed_wipefs-J_zfs-member-partition.json"))
    findings = {"real": "/dev/sdb", "signatures": sigs}
    assert refusal("/dev/disk/by-id/wwn-1", findings, force=False) == (
        "/dev/disk/by-id/wwn-1 (/dev/sdb) is not blank: found ZFS pool label (pool 'tank') on /dev/sdb1 "
        "(set force: true to overwrite it)")
    assert refusal("/dev/disk/by-id/wwn-1", findings, force=True) is None
    busy = dict(findings, mounts={"/dev/sdb2": ["/srv"]}, holders={"/dev/sdb1": ["md127"]})
    msg = refusal("/dev/disk/by-id/wwn-1", busy, force=True)
    assert msg is not None
    assert msg.startswith("/dev/disk/by-id/wwn-1 (/dev/sdb) is in use: mounted at /srv (/dev/sdb2); held by md127")
    assert msg.endswith("(force does not override a device in use)")
    assert refusal("/dev/sdc", {"real": "/dev/sdc"}, force=False) is None
    assert describe_findings({"md_arrays": ["md0"]})["in_use"] == ["member of active md array md0"]


def test_array_line_and_merge():
    detail = parse_mdadm_export(read("mdadm-detail-export_raid0_3disk.txt"))
    line = array_line("/dev/md/jenkins-raid", detail)
    assert line == ("ARRAY /dev/md/jenkins-raid metadata=1.2 name=ubuntu-server:jenkins-raid "
                    "UUID=8dc170a5:b1862dac:6373e532:61d36e9f")
    conf = ("# mdadm.conf\nHOMEHOST <system>\nMAILADDR root\n"
            "ARRAY /dev/md/jenkins-raid metadata=1.2 UUID=8DC170A5:b1862dac:6373e532:61d36e9f\n"
            "   devices=/dev/sda,/dev/sdb\n"
            "ARRAY /dev/md/other metadata=1.2 UUID=11111111:22222222:33333333:44444444\n")
    merged = merge_mdadm_conf(conf, "/dev/md/jenkins-raid", detail["MD_UUID"], line)
    assert merged == ("# mdadm.conf\nHOMEHOST <system>\nMAILADDR root\n" + line + "\n"
                      "ARRAY /dev/md/other metadata=1.2 UUID=11111111:22222222:33333333:44444444\n")
    assert merge_mdadm_conf(merged, "/dev/md/jenkins-raid", detail["MD_UUID"], line) == merged
    assert merge_mdadm_conf("", "/dev/md/x", "u", "ARRAY /dev/md/x UUID=u") == "ARRAY /dev/md/x UUID=u\n"


# Recorded in the lab VM (Debian 12, util-linux 2.38.1): 'wipefs --no-act -J /dev/sdb' after
# "printf 'label: gpt\n,1G\n' | sfdisk /dev/sdb", and the same for /dev/sdb1 after mkfs.ext4 -L canary2.
LAB_GPT_DISK = """{"signatures": [
  {"device": "sdb", "offset": "0x200", "type": "gpt", "uuid": null, "label": null},
  {"device": "sdb", "offset": "0xffffffe00", "type": "gpt", "uuid": null, "label": null},
  {"device": "sdb", "offset": "0x1fe", "type": "PMBR", "uuid": null, "label": null}]}"""
LAB_EXT4_PART = """{"signatures": [{"device": "sdb1", "offset": "0x438", "type": "ext4",
  "uuid": "e77d29e3-4b7b-40e5-9a86-1db52580ffd3", "label": "canary2"}]}"""


def test_gpt_protective_mbr_is_not_named_twice():
    sigs = parse_wipefs_json(LAB_GPT_DISK) + parse_wipefs_json(LAB_EXT4_PART)
    assert [s["type"] for s in sigs] == ["gpt", "PMBR", "ext4"]
    assert refusal("/dev/disk/by-id/wwn-2", {"real": "/dev/sdb", "signatures": sigs}, force=False) == (
        "/dev/disk/by-id/wwn-2 (/dev/sdb) is not blank: found gpt partition table on /dev/sdb; "
        "ext4 signature (label 'canary2') on /dev/sdb1 (set force: true to overwrite it)")


def test_protective_mbr_alone_is_still_reported():
    pmbr = [{"on": "/dev/sdc", "type": "PMBR", "offset": "0x1fe", "label": None, "uuid": None}]
    assert describe_findings({"signatures": pmbr})["signatures"] == ["PMBR partition table on /dev/sdc"]
