"""zfs_pool planner: request + parsed state -> commands / refusal (tables)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_collections.onprem.gpu_server.plugins.module_utils.zfs.parsers import (
    parse_get,
    parse_zpool_import,
    parse_zpool_status,
)
from ansible_collections.onprem.gpu_server.plugins.module_utils.zfs.planner import (
    PlanError,
    disks_to_probe,
    normalize_vdevs,
    plan_pool,
    same_value,
    value_aliases,
)

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "zpool"
ID = "/dev/disk/by-id/wwn-0x5000c50000ab000"
D = [f"{ID}{i}" for i in range(1, 10)]
NV = [f"/dev/disk/by-id/nvme-LABNVME00{i}" for i in range(4)]
CLEAN = {"real": None, "signatures": [], "mounts": {}, "holders": {}, "md_arrays": []}


def read(name: str) -> str:
    return (FIX / name).read_text(encoding="utf-8")


def existing_state() -> dict:
    """tank from the constructed status (raidz2 x4 + special mirror + log + cache + spare) and its properties."""
    pools = parse_zpool_status(read("constructed_zpool-status-P_raidz2-special-log-cache-spare_and_stripe.txt"))
    return {"pool": pools["tank"], "other_pools": {"scratch": pools["scratch"]},
            "properties": parse_get(read("constructed_zpool-get-Hp_tank.txt")),
            "filesystem_properties": parse_get(read("constructed_zfs-get-Hp_tank.txt"))}


def tank_vdevs(**extra) -> list:
    return [{"type": "raidz2", "disks": D[:4]},
            {"role": "special", "type": "mirror", "disks": NV[:2]},
            {"role": "log", "disks": [NV[2]]},
            {"role": "cache", "disks": [NV[3]]},
            *extra.get("more", [])]


def req(**kw) -> dict:
    base = {"name": "tank", "state": "present", "vdevs": tank_vdevs(), "ashift": 12, "properties": {},
            "filesystem_properties": {}, "force": False, "allow_expand": False, "allow_destroy": False}
    base.update(kw)
    return base


def clean(disks):
    return {d: dict(CLEAN, real=d) for d in disks}


# ---------------------------------------------------------------- create
CREATE_CASES = [
    ("raidz2 of 8 with lz4",
     {"vdevs": [{"type": "raidz2", "disks": D[:8]}], "filesystem_properties": {"compression": "lz4", "atime": False},
      "properties": {"autotrim": True}},
     ["zpool", "create", "-o", "ashift=12", "-o", "autotrim=on", "-O", "atime=off", "-O", "compression=lz4",
      "tank", "raidz2", *D[:8]]),
    ("stripe of two + special mirror + log + cache",
     {"vdevs": [{"role": "cache", "disks": [NV[3]]}, {"disks": D[:2]},
                {"role": "special", "type": "mirror", "disks": NV[:2]}, {"role": "log", "disks": [NV[2]]}]},
     ["zpool", "create", "-o", "ashift=12", "tank", D[0], D[1], "special", "mirror", NV[0], NV[1],
      "log", NV[2], "cache", NV[3]]),
    ("two mirrors, force",
     {"vdevs": [{"type": "mirror", "disks": D[:2]}, {"type": "mirror", "disks": D[2:4]}], "force": True},
     ["zpool", "create", "-f", "-o", "ashift=12", "tank", "mirror", D[0], D[1], "mirror", D[2], D[3]]),
]


@pytest.mark.parametrize(("label", "kw", "argv"), CREATE_CASES, ids=[c[0] for c in CREATE_CASES])
def test_create(label, kw, argv):
    request = req(**kw)
    disks = disks_to_probe(request, {"pool": None}, {})
    plan = plan_pool(request, {"pool": None, "importable": []}, {}, clean(disks))
    assert plan.action == "create"
    assert plan.commands == [argv]
    assert plan.validate == [[argv[0], argv[1], "-n", *argv[2:]]]
    assert plan.before == {"state": "absent"}
    assert plan.after["state"] == "present"


GPT = {"on": "/dev/sdb", "type": "gpt", "offset": "0x200", "label": None, "uuid": "x"}
REFUSE_CASES = [
    ("ashift missing", {"ashift": None}, {}, "ashift is required to create pool 'tank' (12 for 4K-sector disks)"),
    ("raidz2 with 3 disks", {"vdevs": [{"type": "raidz2", "disks": D[:3]}]}, {},
     "vdevs[0]: raidz2 needs at least 4 disks, got 3"),
    ("raidz1 with 2 disks", {"vdevs": [{"type": "raidz1", "disks": D[:2]}]}, {},
     "vdevs[0]: raidz1 needs at least 3 disks, got 2"),
    ("reserved name", {"name": "raidz2"}, {},
     "name: 'raidz2' is reserved: zpool refuses pool names that begin with 'raidz'"),
    ("ashift out of range", {"ashift": 17}, {},
     "ashift: 17 is outside 9-16 (sectors of 512 B to 64 KiB; 12 for 4K-sector disks, 0 to let zpool detect it)"),
    ("cache mirror", {"vdevs": [{"disks": D[:1]}, {"role": "cache", "type": "mirror", "disks": NV[:2]}]}, {},
     "vdevs[1]: a cache vdev cannot be mirror (allowed: stripe)"),
    ("disk twice", {"vdevs": [{"disks": D[:1]}, {"role": "log", "disks": D[:1]}]}, {},
     f"vdevs[1]: disk {D[0]} is already listed in vdevs[0]"),
    ("gpt on a disk", {"vdevs": [{"type": "mirror", "disks": D[:2]}]},
     {D[1]: dict(CLEAN, real="/dev/sdb", signatures=[GPT])},
     f"refusing to create pool 'tank': {D[1]} (/dev/sdb) is not blank: found gpt partition table on /dev/sdb "
     "(set force: true to overwrite it)"),
    ("mounted, even with force", {"vdevs": [{"disks": D[:1]}], "force": True},
     {D[0]: dict(CLEAN, real="/dev/sda", mounts={"/dev/sda1": ["/boot"]})},
     f"refusing to create pool 'tank': {D[0]} (/dev/sda) is in use: mounted at /boot (/dev/sda1) "
     "(force does not override a device in use)"),
    ("swap partition, even with force", {"vdevs": [{"disks": D[:1]}], "force": True},
     {D[0]: dict(CLEAN, real="/dev/sdg", swaps=["/dev/sdg2"])},
     f"refusing to create pool 'tank': {D[0]} (/dev/sdg) is in use: active swap (/dev/sdg2) "
     "(force does not override a device in use)"),
]


@pytest.mark.parametrize(("label", "kw", "probes", "message"), REFUSE_CASES, ids=[c[0] for c in REFUSE_CASES])
def test_create_refused(label, kw, probes, message):
    request = req(**kw)
    all_probes = clean(d for v in request["vdevs"] for d in v["disks"])
    all_probes.update(probes)
    with pytest.raises(PlanError) as err:
        plan_pool(request, {"pool": None, "importable": []}, {}, all_probes)
    assert str(err.value) == message


def test_ashift_zero_is_passed_on_for_zpool_to_detect():
    request = req(ashift=0, vdevs=[{"type": "mirror", "disks": D[:2]}])
    plan = plan_pool(request, {"pool": None, "importable": []}, {}, clean(D[:2]))
    assert plan.commands == [["zpool", "create", "-o", "ashift=0", "tank", "mirror", *D[:2]]]


# One disk under two names: realpath of the by-id link is the node the other name gives.
SDG = {D[0]: {"real": "/dev/sdg", "disk": "/dev/sdg"}, "/dev/sdg": {"real": "/dev/sdg", "disk": "/dev/sdg"},
       "/dev/sdg1": {"real": "/dev/sdg1", "disk": "/dev/sdg"},
       D[1]: {"real": "/dev/sdh", "disk": "/dev/sdh"}, D[2]: {"real": "/dev/sdi", "disk": "/dev/sdi"}}
SAME_DISK_CASES = [
    ("by-id and sdX in one vdev", [{"type": "mirror", "disks": [D[0], "/dev/sdg"]}],
     f"vdevs: {D[0]} and /dev/sdg are the same device (/dev/sdg); list each disk once"),
    ("by-id in data, sdX as log", [{"type": "mirror", "disks": [D[0], D[1]]}, {"role": "log", "disks": ["/dev/sdg"]}],
     f"vdevs: {D[0]} and /dev/sdg are the same device (/dev/sdg); list each disk once"),
    ("a disk and its partition", [{"type": "mirror", "disks": ["/dev/sdg1", D[1]]}, {"role": "cache", "disks": [D[0]]}],
     f"vdevs: /dev/sdg1 is a partition of {D[0]} (/dev/sdg); list each disk once"),
]


@pytest.mark.parametrize(("label", "vdevs", "message"), SAME_DISK_CASES, ids=[c[0] for c in SAME_DISK_CASES])
def test_one_disk_under_two_names_is_refused_before_probing(label, vdevs, message):
    request = req(vdevs=vdevs)
    with pytest.raises(PlanError) as err:
        disks_to_probe(request, {"pool": None}, SDG)
    assert str(err.value) == message
    with pytest.raises(PlanError) as err:
        plan_pool(request, {"pool": None, "importable": []}, SDG, clean(d for v in vdevs for d in v["disks"]))
    assert str(err.value) == message


def test_distinct_disks_under_mixed_names_are_fine():
    request = req(vdevs=[{"type": "raidz1", "disks": [D[0], D[1], D[2]]}])
    assert disks_to_probe(request, {"pool": None}, SDG) == D[:3]


def test_create_refuses_member_of_other_imported_pool():
    pools = parse_zpool_status(read("constructed_zpool-status-P_raidz2-special-log-cache-spare_and_stripe.txt"))
    request = req(name="new", vdevs=[{"disks": [D[5]]}])  # wwn-...0006 is in pool scratch (as -part1)
    with pytest.raises(PlanError, match=r"is a member of imported pool 'scratch'"):
        plan_pool(request, {"pool": None, "other_pools": pools}, {}, clean([D[5]]))


def test_create_without_probe_is_refused():
    with pytest.raises(PlanError, match="was not probed"):
        plan_pool(req(vdevs=[{"disks": D[:1]}]), {"pool": None}, {}, {})


# ---------------------------------------------------------------- existing pool
def test_existing_pool_matches_whole_disks_to_part1_and_is_idempotent():
    state = existing_state()
    assert disks_to_probe(req(), state, {}) == []
    plan = plan_pool(req(filesystem_properties={"compression": "lz4", "atime": "off", "recordsize": "128K"},
                         properties={"autotrim": "off"}), state)
    assert plan.commands == []
    assert plan.action == "none"
    assert plan.warnings == []


def test_existing_pool_resolved_paths():
    """A request by /dev/sdX matches a pool reported by by-id once both resolve to the same node."""
    state = existing_state()
    devices = {f"{D[i]}-part1": {"real": f"/dev/sd{'abcd'[i]}1", "disk": f"/dev/sd{'abcd'[i]}"} for i in range(4)}
    devices.update({f"/dev/sd{c}": {"real": f"/dev/sd{c}", "disk": f"/dev/sd{c}"} for c in "abcd"})
    request = req(vdevs=[{"type": "raidz2", "disks": ["/dev/sda", "/dev/sdb", "/dev/sdc", "/dev/sdd"]},
                         *tank_vdevs()[1:]])
    assert plan_pool(request, state, devices).commands == []


def test_property_changes():
    plan = plan_pool(req(properties={"autotrim": "on"},
                         filesystem_properties={"compression": "zstd", "recordsize": "1M", "org.example:tier": "cold"}),
                     existing_state())
    assert plan.commands == [["zpool", "set", "autotrim=on", "tank"],
                             ["zfs", "set", "compression=zstd", "tank"],
                             ["zfs", "set", "org.example:tier=cold", "tank"],
                             ["zfs", "set", "recordsize=1M", "tank"]]
    assert plan.before["filesystem_properties"]["compression"] == "lz4"
    assert plan.after["filesystem_properties"]["compression"] == "zstd"
    assert plan.after["properties"]["autotrim"] == "on"


PROP_REFUSALS = [
    ({"filesystem_properties": {"casesensitivity": "insensitive"}},
     "filesystem property 'casesensitivity' of pool 'tank' can only be set at creation: it is 'sensitive', the "
     "request says 'insensitive' (recreate the pool to change it, or drop it from the request)"),
    ({"filesystem_properties": {"encryption": "on"}}, "filesystem property 'encryption' of pool 'tank' can only be"),
    ({"properties": {"size": "1"}}, "pool property 'size' of pool 'tank' is read-only: it is '274877906944'"),
    ({"properties": {"nosuch": "1"}}, "pool property 'nosuch' is not reported for pool 'tank' (unknown property?)"),
]


@pytest.mark.parametrize(("kw", "message"), PROP_REFUSALS)
def test_property_refusals(kw, message):
    with pytest.raises(PlanError) as err:
        plan_pool(req(**kw), existing_state())
    assert str(err.value).startswith(message)


def test_ashift_difference_is_a_warning_not_a_change():
    plan = plan_pool(req(ashift=13), existing_state())
    assert plan.commands == []
    assert plan.warnings == ["pool 'tank' has ashift 12, the request says 13: ashift of existing vdevs cannot "
                             "change (it is fixed when a vdev is created); leaving it"]


def test_missing_vdev_in_request_is_an_error_never_a_removal():
    request = req(vdevs=tank_vdevs()[:3])  # the cache device is not listed
    with pytest.raises(PlanError) as err:
        plan_pool(request, existing_state())
    assert str(err.value) == (
        "pool 'tank' has cache vdev /dev/disk/by-id/nvme-LABNVME003-part1 (stripe: "
        "/dev/disk/by-id/nvme-LABNVME003-part1) that vdevs does not list; this module never removes a vdev: "
        "add it to vdevs, or remove it yourself with 'zpool remove'")


def test_changed_redundancy_is_an_error():
    request = req(vdevs=[{"type": "raidz1", "disks": D[:4]}, *tank_vdevs()[1:]])
    with pytest.raises(PlanError, match=r"requested data raidz1 vdev .* its disks are in existing vdev raidz2-0"):
        plan_pool(request, existing_state())


def test_new_vdev_needs_allow_expand():
    request = req(vdevs=tank_vdevs(more=[{"type": "raidz2", "disks": D[4:8]}]))
    with pytest.raises(PlanError) as err:
        plan_pool(request, existing_state(), {}, clean(D[4:8]))
    assert str(err.value) == (f"pool 'tank' lacks requested vdev(s) data raidz2 ({', '.join(D[4:8])}): "
                              "set allow_expand: true to add them with 'zpool add'")


def test_expand_adds_after_dry_run():
    request = req(vdevs=tank_vdevs(more=[{"type": "mirror", "disks": D[6:8]}]), allow_expand=True)
    wanted = disks_to_probe(request, existing_state(), {})
    assert wanted == D[6:8]
    plan = plan_pool(request, existing_state(), {}, clean(wanted))
    argv = ["zpool", "add", "-o", "ashift=12", "tank", "mirror", *D[6:8]]
    assert plan.validate == [["zpool", "add", "-n", "-o", "ashift=12", "tank", "mirror", *D[6:8]]]
    assert plan.commands == [argv]
    assert plan.after["vdevs"][-1] == {"role": "data", "type": "mirror", "disks": D[6:8]}


def test_spare_of_the_pool_is_not_reused_in_a_new_vdev():
    request = req(vdevs=tank_vdevs(more=[{"type": "mirror", "disks": D[7:9]}]), allow_expand=True)
    with pytest.raises(PlanError, match=r"its disks are in existing vdev /dev/disk/by-id/wwn-0x5000c50000ab0009-part1"):
        plan_pool(request, existing_state(), {}, clean(D[7:9]))


def test_expand_refuses_dirty_disk():
    request = req(vdevs=tank_vdevs(more=[{"type": "mirror", "disks": D[6:8]}]), allow_expand=True)
    probes = clean(D[6:8])
    probes[D[7]] = dict(CLEAN, real="/dev/sdh", signatures=[
        {"on": "/dev/sdh", "type": "linux_raid_member", "label": "lab:os", "offset": "0x1000", "uuid": "u"}])
    with pytest.raises(PlanError) as err:
        plan_pool(request, existing_state(), {}, probes)
    assert str(err.value) == (f"refusing to add to pool 'tank': {D[7]} (/dev/sdh) is not blank: found md "
                              "superblock (array 'lab:os') on /dev/sdh (set force: true to overwrite it)")


# ---------------------------------------------------------------- import / destroy
def test_exported_pool_is_imported_not_created():
    importable = parse_zpool_import(read("constructed_zpool-import_listing.txt"))
    plan = plan_pool(req(vdevs=[{"type": "raidz2", "disks": D[:4]}]), {"pool": None, "importable": importable})
    assert plan.action == "import"
    assert plan.commands == [["zpool", "import", "15378598475931358045"]]
    assert plan.before["state"] == "exported"


def test_unavailable_exported_pool_is_not_created_over():
    importable = parse_zpool_import(read("constructed_zpool-import_listing.txt"))
    with pytest.raises(PlanError, match=r"exported pool 'old' cannot be imported \(state UNAVAIL"):
        plan_pool(req(name="old", vdevs=[{"type": "mirror", "disks": D[6:8]}]),
                  {"pool": None, "importable": importable})


def test_destroy_needs_allow_destroy():
    with pytest.raises(PlanError, match="refusing to destroy pool 'tank' and all its data: set allow_destroy: true"):
        plan_pool(req(state="absent"), existing_state())
    plan = plan_pool(req(state="absent", allow_destroy=True), existing_state())
    assert plan.commands == [["zpool", "destroy", "tank"]]
    assert plan_pool(req(state="absent", allow_destroy=True), {"pool": None}).commands == []


@pytest.mark.parametrize(("wanted", "current", "same"), [
    ("lz4", "lz4", True), (False, "off", True), (True, "on", True), ("1M", "1048576", True),
    ("128K", "131072", True), ("128K", "1048576", False), ("LZ4", "lz4", True), ("zstd", "lz4", False),
    (12, "12", True),
])
def test_same_value(wanted, current, same):
    assert same_value(wanted, current) is same


def test_stripe_expands_to_single_disk_vdevs():
    assert normalize_vdevs([{"disks": D[:2]}]) == [{"role": "data", "type": "stripe", "disks": [D[0]]},
                                                  {"role": "data", "type": "stripe", "disks": [D[1]]}]


@pytest.mark.parametrize(("version", "current", "changes"), [
    # OpenZFS 2.3 in the lab VM: after 'zfs set xattr=sa', 'zfs get -p xattr' prints 'on'
    ((2, 3, 2), "on", []),
    # before 2.2, 'on' meant directory xattrs and sa was reported as 'sa'
    ((2, 1, 5), "on", [["zfs", "set", "xattr=sa", "tank"]]),
    ((2, 1, 5), "sa", []),
    (None, "on", [["zfs", "set", "xattr=sa", "tank"]]),
    ((2, 3, 2), "dir", [["zfs", "set", "xattr=sa", "tank"]]),
])
def test_xattr_sa_is_reported_as_on_from_2_2(version, current, changes):
    state = existing_state()
    state["filesystem_properties"] = {**state["filesystem_properties"], "xattr": {"value": current, "source": "local"}}
    state["zfs_version"] = version
    assert plan_pool(req(filesystem_properties={"xattr": "sa"}), state).commands == changes


def test_value_aliases_by_version():
    assert value_aliases((2, 2, 0)) == {"xattr": {"sa": "on"}}
    assert value_aliases((2, 1, 99)) == {}
    assert value_aliases(None) == {}
