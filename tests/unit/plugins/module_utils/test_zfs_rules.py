"""What a zfs_pool request may say, whatever the system holds: pool names, ashift, vdevs shape, minimum disks."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan._common import PlanInputError
from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.zfs import PARITY, zfs_space
from ansible_collections.onprem.gpu_server.plugins.module_utils.zfs.planner import TYPES, PlanError, normalize_vdevs
from ansible_collections.onprem.gpu_server.plugins.module_utils.zfs.rules import (
    MIN_DISKS,
    ashift_problem,
    pool_name_problem,
    vdevs_shape_problem,
)

REPO = Path(__file__).resolve().parents[4]
LETTERS = "letters, digits and _ - . :"

# ---------------------------------------------------------------- pool names (pool_namecheck, zpool_name_valid)
GOOD_NAMES = ["tank", "lake", "Tank2", "data_lake", "a.b-c:d", "z" * 239, "cache0", "logs", "dedupe", "cx", "c", "d0"]
BAD_NAMES = [
    ("", "name: a pool name cannot be empty, got ''"),
    (None, "name: a pool name cannot be empty, got None"),
    ("z" * 240, f"name: '{'z' * 240}' is 240 characters long; a pool name has at most 239"),
    ("tank/data", f"name: 'tank/data' contains '/'; a pool name may contain only {LETTERS}"),
    ("../../etc", f"name: '../../etc' contains '/'; a pool name may contain only {LETTERS}"),
    ("my pool", f"name: 'my pool' contains ' '; a pool name may contain only {LETTERS}"),
    ("50%", f"name: '50%' contains '%'; a pool name may contain only {LETTERS}"),
    ("tank@snap", f"name: 'tank@snap' contains '@'; a pool name may contain only {LETTERS}"),
    ("tänk", f"name: 'tänk' contains 'ä'; a pool name may contain only {LETTERS}"),
    ("1tank", "name: '1tank' does not begin with a letter, as a pool name must"),
    ("_tank", "name: '_tank' does not begin with a letter, as a pool name must"),
    ("-tank", "name: '-tank' does not begin with a letter, as a pool name must"),
    ("mirror", "name: 'mirror' is reserved: zpool reads it as a vdev keyword"),
    ("raidz", "name: 'raidz' is reserved: zpool reads it as a vdev keyword"),
    ("draid", "name: 'draid' is reserved: zpool reads it as a vdev keyword"),
    ("spare", "name: 'spare' is reserved: zpool reads it as a vdev keyword"),
    ("log", "name: 'log' is reserved: zpool reads it as a vdev keyword"),
    ("cache", "name: 'cache' is reserved: zpool reads it as a vdev keyword"),
    ("special", "name: 'special' is reserved: zpool reads it as a vdev keyword"),
    ("dedup", "name: 'dedup' is reserved: zpool reads it as a vdev keyword"),
    ("raidz1", "name: 'raidz1' is reserved: zpool refuses pool names that begin with 'raidz'"),
    ("raidz2", "name: 'raidz2' is reserved: zpool refuses pool names that begin with 'raidz'"),
    ("raidz3", "name: 'raidz3' is reserved: zpool refuses pool names that begin with 'raidz'"),
    ("mirror2", "name: 'mirror2' is reserved: zpool refuses pool names that begin with 'mirror'"),
    ("draid2:4d", "name: 'draid2:4d' is reserved: zpool refuses pool names that begin with 'draid'"),
    ("spares", "name: 'spares' is reserved: zpool refuses pool names that begin with 'spare'"),
    ("c0", "name: 'c0' is reserved: pool names that begin with 'c' and a digit look like disk names"),
    ("c0t0d0", "name: 'c0t0d0' is reserved: pool names that begin with 'c' and a digit look like disk names"),
    ("c9pool", "name: 'c9pool' is reserved: pool names that begin with 'c' and a digit look like disk names"),
]


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_pool_name_accepted(name):
    assert pool_name_problem(name) is None


@pytest.mark.parametrize(("name", "message"), BAD_NAMES, ids=[repr(c[0])[:20] for c in BAD_NAMES])
def test_pool_name_refused(name, message):
    assert pool_name_problem(name) == message


# ---------------------------------------------------------------- ashift
@pytest.mark.parametrize("ashift", [None, 0, 9, 12, 13, 16])
def test_ashift_accepted(ashift):
    assert ashift_problem(ashift) is None


@pytest.mark.parametrize("ashift", [-1, 1, 8, 17, 64, True, "12"])
def test_ashift_refused(ashift):
    assert ashift_problem(ashift) == (f"ashift: {ashift!r} is outside 9-16 (sectors of 512 B to 64 KiB; 12 for "
                                      "4K-sector disks, 0 to let zpool detect it)")


# ---------------------------------------------------------------- vdevs shape
VDEVS_SHAPES = [
    ("foo", "vdevs: expected a list of vdevs such as [{type: raidz2, disks: [/dev/disk/by-id/...]}], got the "
            "string 'foo'"),
    ({"disks": ["/dev/sda"]}, "vdevs: expected a list of vdevs such as [{type: raidz2, disks: "
                              "[/dev/disk/by-id/...]}], got dict {'disks': ['/dev/sda']}"),
    ([{"disks": ["/dev/sda"]}, "/dev/sdb"],
     "vdevs[1]: expected a vdev such as {type: mirror, disks: [...]}, got str '/dev/sdb'"),
]


@pytest.mark.parametrize(("vdevs", "message"), VDEVS_SHAPES, ids=["string", "dict", "string item"])
def test_vdevs_shape_refused(vdevs, message):
    assert vdevs_shape_problem(vdevs) == message
    with pytest.raises(PlanError) as err:
        normalize_vdevs(vdevs)
    assert str(err.value) == message


def test_vdevs_shape_accepted():
    assert vdevs_shape_problem(None) is None
    assert vdevs_shape_problem([]) is None
    assert vdevs_shape_problem([{"disks": ["/dev/sda"]}]) is None


# ---------------------------------------------------------------- one minimum-disk table
def test_minimum_is_parity_plus_two_for_raidz():
    """The policy: every raidz vdev keeps at least two data disks (DESIGN.md: a RAIDZ2 with 3 disks is bad input)."""
    assert MIN_DISKS["stripe"] == 1
    assert MIN_DISKS["mirror"] == 2
    for kind in ("raidz", "raidz1", "raidz2", "raidz3"):
        assert MIN_DISKS[kind] == PARITY[kind] + 2


@pytest.mark.parametrize("kind", TYPES)
def test_module_planner_and_plan_check_agree(kind):
    """The zfs_pool planner and the host-plan check refuse one disk below the table and accept the table's count."""
    enough = [f"/dev/disk/by-id/wwn-0x500{i}" for i in range(MIN_DISKS[kind])]
    assert normalize_vdevs([{"type": kind, "disks": enough}])
    zfs_space([4 * 10**12] * len(enough), kind)
    if MIN_DISKS[kind] == 1:
        return
    with pytest.raises(PlanError, match=rf"^vdevs\[0\]: {kind} needs at least {MIN_DISKS[kind]} disks, got"):
        normalize_vdevs([{"type": kind, "disks": enough[:-1]}])
    with pytest.raises(PlanInputError, match=rf"needs at least {MIN_DISKS[kind]} disks per vdev"):
        zfs_space([4 * 10**12] * (len(enough) - 1), kind)


def test_zfs_lake_role_uses_the_same_numbers():
    """The role's preflight cannot import Python; its copy of the table must not drift from it."""
    role_vars = yaml.safe_load((REPO / "roles" / "zfs_lake" / "vars" / "main.yml").read_text(encoding="utf-8"))
    role_min = role_vars["__zfs_lake_layout_min"]
    assert role_min == {kind: MIN_DISKS[kind] for kind in role_min}
    assert set(role_min) == set(TYPES)
