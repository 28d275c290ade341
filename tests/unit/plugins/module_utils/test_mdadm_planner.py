"""md_array planner: request + parsed state -> commands / refusal (tables)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_collections.onprem.gpu_server.plugins.module_utils.mdadm.parsers import parse_mdadm_export, parse_mdstat
from ansible_collections.onprem.gpu_server.plugins.module_utils.mdadm.planner import (
    PENDING_UUID,
    PlanError,
    check_request,
    chunk_problem,
    create_argv,
    name_problem,
    plan_array,
    plan_conf,
)

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "mdadm"
A, B = "/dev/disk/by-id/nvme-LABNVME000-part2", "/dev/disk/by-id/nvme-LABNVME001-part2"
CLEAN = {"signatures": [], "mounts": {}, "holders": {}, "md_arrays": []}


def read(name: str) -> str:
    return (FIX / name).read_text(encoding="utf-8")


def req(**kw) -> dict:
    base = {"name": "os", "device": "/dev/md/os", "level": "raid1", "devices": [A, B], "metadata": "1.2",
            "homehost": None, "bitmap": "auto", "chunk": None, "force": False}
    base.update(kw)
    return base


def blank_state(**probes) -> dict:
    found = {A: dict(CLEAN, real="/dev/nvme0n1p2"), B: dict(CLEAN, real="/dev/nvme1n1p2")}
    found.update(probes)
    return {"mdstat": {"arrays": {}}, "active": {}, "examine": {A: {}, B: {}}, "probes": found}


CREATE_CASES = [
    ("raid1 default bitmap", {}, ["mdadm", "--create", "/dev/md/os", "--run", "--metadata=1.2", "--level=raid1",
                                  "--raid-devices=2", "--name=os", "--bitmap=internal", A, B]),
    ("raid1 no bitmap, homehost", {"bitmap": "none", "homehost": "trading"},
     ["mdadm", "--create", "/dev/md/os", "--run", "--metadata=1.2", "--level=raid1", "--raid-devices=2",
      "--name=os", "--homehost=trading", "--bitmap=none", A, B]),
    ("raid0 chunk, no bitmap", {"level": "raid0", "chunk": "512K", "name": "models", "device": "/dev/md/models"},
     ["mdadm", "--create", "/dev/md/models", "--run", "--metadata=1.2", "--level=raid0", "--raid-devices=2",
      "--name=models", "--chunk=512K", A, B]),
    ("raid10", {"level": "raid10"}, ["mdadm", "--create", "/dev/md/os", "--run", "--metadata=1.2", "--level=raid10",
                                     "--raid-devices=2", "--name=os", "--bitmap=internal", A, B]),
]


@pytest.mark.parametrize(("label", "kw", "argv"), CREATE_CASES, ids=[c[0] for c in CREATE_CASES])
def test_create(label, kw, argv):
    plan = plan_array(req(**kw), blank_state())
    assert plan.action == "create"
    assert plan.commands == [argv]
    assert plan.after["uuid"] == PENDING_UUID


def test_raid0_internal_bitmap_refused():
    with pytest.raises(PlanError, match="bitmap: internal is not possible on raid0"):
        create_argv(req(level="raid0", bitmap="internal"))


ZFS_SIG = {"on": "/dev/nvme1n1p2", "type": "zfs_member", "label": "tank", "offset": "0x3f000", "uuid": "1"}
REFUSALS = [
    ("one device", {"devices": [A]}, {}, f"raid1 needs at least 2 distinct devices, got {A}"),
    ("same device twice", {"devices": [A, A]}, {}, f"raid1 needs at least 2 distinct devices, got {A}, {A}"),
    ("zfs label", {}, {B: dict(CLEAN, real="/dev/nvme1n1p2", signatures=[ZFS_SIG])},
     f"refusing to create md array 'os': {B} (/dev/nvme1n1p2) is not blank: found ZFS pool label (pool 'tank') "
     "on /dev/nvme1n1p2 (set force: true to overwrite it)"),
    ("held by dm, force", {"force": True},
     {A: dict(CLEAN, real="/dev/nvme0n1p2", holders={"/dev/nvme0n1p2": ["dm-0"]})},
     f"refusing to create md array 'os': {A} (/dev/nvme0n1p2) is in use: held by dm-0 (/dev/nvme0n1p2) "
     "(force does not override a device in use)"),
    ("active swap", {"force": True}, {B: dict(CLEAN, real="/dev/nvme1n1p2", swaps=["/dev/nvme1n1p2"])},
     f"refusing to create md array 'os': {B} (/dev/nvme1n1p2) is in use: active swap (/dev/nvme1n1p2) "
     "(force does not override a device in use)"),
    ("in another array", {}, {A: dict(CLEAN, real="/dev/nvme0n1p2", md_arrays=["md0"])},
     f"refusing to create md array 'os': {A} (/dev/nvme0n1p2) is in use: member of active md array md0 "
     "(force does not override a device in use)"),
]


@pytest.mark.parametrize(("label", "kw", "probes", "message"), REFUSALS, ids=[c[0] for c in REFUSALS])
def test_refusals(label, kw, probes, message):
    with pytest.raises(PlanError) as err:
        plan_array(req(**kw), blank_state(**probes))
    assert str(err.value) == message


def test_force_overrides_signatures_only():
    plan = plan_array(req(force=True), blank_state(**{B: dict(CLEAN, real="/dev/nvme1n1p2", signatures=[ZFS_SIG])}))
    assert plan.action == "create"


def test_assemble_instead_of_create():
    sb = parse_mdadm_export(read("constructed_mdadm-examine-export_raid1-member.txt"))
    state = blank_state()
    state["examine"] = {A: sb, B: sb}
    plan = plan_array(req(), state)
    assert plan.action == "assemble"
    assert plan.commands == [["mdadm", "--assemble", "/dev/md/os", "--uuid=5f2b7c1e:8a9d0b3c:4e6f7a8b:9c0d1e2f", A, B]]
    assert plan.warnings == []


def test_assemble_partial_warns():
    sb = parse_mdadm_export(read("constructed_mdadm-examine-export_raid1-member.txt"))
    state = blank_state()
    state["examine"] = {A: sb, B: {}}
    plan = plan_array(req(), state)
    assert plan.commands[0][-1] == A
    assert plan.warnings == [
        f"{B} carry no superblock of 'os'; assembling from {A} only (the array may start degraded)"]


def test_superblock_of_other_level_not_recreated():
    sb = dict(parse_mdadm_export(read("constructed_mdadm-examine-export_raid1-member.txt")), MD_LEVEL="raid0")
    state = blank_state()
    state["examine"] = {A: sb, B: sb}
    with pytest.raises(PlanError, match="carry the superblock of array 'lab:os' \\(raid0\\), the request says raid1"):
        plan_array(req(), state)


def test_active_array_is_left_alone_and_degraded_reported():
    """The recorded raid0 detail + mdstat; the request matches it by name."""
    detail = parse_mdadm_export(read("mdadm-detail-export_raid0_3disk.txt"))
    state = {"mdstat": parse_mdstat(read("mdstat_raid0_2disk.txt")), "active": {"md1": detail}}
    plan = plan_array(req(name="jenkins-raid", level="raid0", devices=["/dev/sda", "/dev/sdb", "/dev/sdd"]), state)
    assert plan.commands == []
    assert plan.md_device == "md1"
    assert plan.warnings == []

    degraded = parse_mdstat(read("mdstat_4x-raid1_degraded_failed-member.txt"))
    detail1 = dict(parse_mdadm_export(read("mdadm-detail-export_raid1_2disk.txt")), MD_NAME="h:os")
    plan = plan_array(req(devices=["/dev/sda2", "/dev/sdb2"]), {"mdstat": degraded, "active": {"md1": detail1}})
    assert plan.commands == []
    assert plan.warnings == ["array md1 is degraded: 1 of 2 devices active [_U]"]
    assert plan.before["degraded"] is True


def test_active_array_level_mismatch_and_foreign_members():
    detail = parse_mdadm_export(read("mdadm-detail-export_raid0_3disk.txt"))
    state = {"mdstat": {"arrays": {}}, "active": {"md1": detail}}
    with pytest.raises(PlanError, match="is raid0, the request says raid1"):
        plan_array(req(name="jenkins-raid", devices=["/dev/sda", "/dev/sdb"]), state)
    with pytest.raises(PlanError, match="requested devices /dev/sda belong to active array md1 "
                                        "\\(name 'ubuntu-server:jenkins-raid'\\), not to 'os'"):
        plan_array(req(devices=["/dev/sda", "/dev/sdx"]), state)


def test_member_not_in_running_array_warns():
    detail = parse_mdadm_export(read("mdadm-detail-export_raid0_3disk.txt"))
    plan = plan_array(req(name="jenkins-raid", level="raid0", devices=["/dev/sda", "/dev/sde"]),
                      {"mdstat": {"arrays": {}}, "active": {"md1": detail}})
    assert plan.warnings == ["/dev/sde is not a member of md1; add it yourself (mdadm --add) if intended"]


def test_plan_conf_merges_and_is_idempotent():
    detail = parse_mdadm_export(read("mdadm-detail-export_raid0_3disk.txt"))
    before = "# keep me\nMAILADDR root\n"
    new = plan_conf(before, "/dev/md/jenkins-raid", detail)
    assert new == before + ("ARRAY /dev/md/jenkins-raid metadata=1.2 name=ubuntu-server:jenkins-raid "
                            "UUID=8dc170a5:b1862dac:6373e532:61d36e9f\n")
    assert plan_conf(new, "/dev/md/jenkins-raid", detail) is None


# ---------------------------------------------------------------- input refused before any command
NAME_RULE = ("use 1 to 32 letters, digits, '.', '_' or '-', not beginning with '.' or '-' "
             "(the array appears as /dev/md/NAME)")
GOOD_MD_NAMES = ["os", "models", "tier0", "0", "jenkins-raid", "a.b_c-d", "x" * 32, "_scratch"]
BAD_MD_NAMES = ["../../etc/x", "os/../x", "..", ".hidden", "-os", "", "my array", "x" * 33, "host:os", "os\n", None]


@pytest.mark.parametrize("name", GOOD_MD_NAMES)
def test_md_name_accepted(name):
    assert name_problem(name) is None


@pytest.mark.parametrize("name", BAD_MD_NAMES)
def test_md_name_refused_before_anything(name):
    message = f"name: {name!r} cannot be an md array name: {NAME_RULE}"
    assert name_problem(name) == message
    with pytest.raises(PlanError) as err:
        plan_array(req(name=name, device=f"/dev/md/{name}"), blank_state())
    assert str(err.value) == message


CHUNK_RULE = ("is not a chunk size mdadm takes: a power of two of at least 4K, written as KiB with an optional K, M, "
              "G or T suffix (for example 64, 512K, 1M)")


@pytest.mark.parametrize("chunk", [None, "", "4", "64", "512K", "1M", "2G", "4096K"])
def test_chunk_accepted(chunk):
    assert chunk_problem(chunk) is None


@pytest.mark.parametrize("chunk", ["abc", "512k", "1m", "2", "3K", "96K", "0", "-64", "64 K", "1.5M", "512KB", "K"])
def test_chunk_refused_before_anything(chunk):
    message = f"chunk: {chunk!r} {CHUNK_RULE}"
    assert chunk_problem(chunk) == message
    with pytest.raises(PlanError) as err:
        plan_array(req(level="raid0", chunk=chunk), blank_state())
    assert str(err.value) == message


# One device under two names (a by-id link and the node it resolves to), or a disk with its partition.
RESOLVED = {A: {"real": "/dev/nvme0n1p2", "disk": "/dev/nvme0n1"}, "/dev/nvme0n1p2": {"real": "/dev/nvme0n1p2",
                                                                                       "disk": "/dev/nvme0n1"},
            "/dev/nvme0n1": {"real": "/dev/nvme0n1", "disk": "/dev/nvme0n1"},
            B: {"real": "/dev/nvme1n1p2", "disk": "/dev/nvme1n1"}}
SAME_DEVICE = [
    ("by-id and node", [A, "/dev/nvme0n1p2"],
     f"devices: {A} and /dev/nvme0n1p2 are the same device (/dev/nvme0n1p2); list each device once"),
    ("third of three", [A, B, "/dev/nvme0n1p2"],
     f"devices: {A} and /dev/nvme0n1p2 are the same device (/dev/nvme0n1p2); list each device once"),
    ("partition and its disk", [A, "/dev/nvme0n1"],
     f"devices: {A} (/dev/nvme0n1p2) is a partition of /dev/nvme0n1; list each device once"),
]


@pytest.mark.parametrize(("label", "devices", "message"), SAME_DEVICE, ids=[c[0] for c in SAME_DEVICE])
def test_one_device_under_two_names_is_refused(label, devices, message):
    with pytest.raises(PlanError) as err:
        check_request(req(devices=devices), RESOLVED)
    assert str(err.value) == message
    # The planner says the same rather than refusing the device twice as not blank.
    state = blank_state(**{d: dict(CLEAN, real=RESOLVED[d]["real"], signatures=[ZFS_SIG]) for d in devices})
    with pytest.raises(PlanError) as err:
        plan_array(req(devices=devices), state, RESOLVED)
    assert str(err.value) == message


def test_distinct_devices_pass_the_request_check():
    check_request(req(), RESOLVED)
