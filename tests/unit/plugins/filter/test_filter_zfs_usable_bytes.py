"""zfs_usable_bytes: the XC740XD data lake and properties of the accounting."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.onprem.gpu_server.plugins.filter.zfs_usable_bytes import zfs_usable_bytes
from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.zfs import metaslab_shift, raidz_asize

TB, TIB, GIB, MIB = 10**12, 2**40, 2**30, 2**20
DATA_LAKE = [18 * TB] * 8


def test_raidz2_block_allocation_from_first_principles():
    # 128 KiB at ashift 12 = 32 data sectors over 6 data columns -> 6 rows x 2
    # parity = 12 sectors; 44 rounded up to a multiple of 3 = 45 sectors.
    assert raidz_asize(128 * 1024, 8, 2, 12) == 45 * 4096
    # One 4 KiB block costs 1 data + 2 parity sectors: 3x overhead.
    assert raidz_asize(4096, 8, 2, 12) == 3 * 4096


def test_metaslab_size_for_a_144_tb_vdev():
    assert metaslab_shift(144 * TB) == 34  # capped at 16 GiB metaslabs
    assert metaslab_shift(50 * GIB) == 29  # 512 MiB between 8 GB and 100 GB


def test_spec_data_lake_is_not_108_tb():
    space = zfs_usable_bytes(DATA_LAKE, "raidz2", details=True)
    # Raw 144 TB; 6/8 of it would be the spec's 108 TB, but RAIDZ2 pads each
    # 128 KiB block to 45 sectors (deflate ratio 364/512 = 71.1 %, not 75 %).
    assert space["raw_bytes"] == 144 * TB
    assert space["vdevs"][0]["deflate_ratio"] == 364
    assert space["vdevs"][0]["metaslabs"] == 8381
    # Slop is capped at 128 GiB; the embedded ZIL metaslab comes out of it.
    assert space["embedded_log_bytes"] == 16 * GIB * 364 // 512
    assert space["slop_bytes"] == 128 * GIB - space["embedded_log_bytes"]
    assert space["usable_bytes"] == 102_226_529_878_016
    assert 92.9 < space["usable_bytes"] / TIB < 93.0
    assert space["usable_bytes"] < 108 * TB - 5 * TB
    assert zfs_usable_bytes(DATA_LAKE, "raidz2") == space["usable_bytes"]


def test_small_pool_uses_minimum_slop():
    space = zfs_usable_bytes([4 * GIB] * 2, "mirror", details=True)
    assert space["slop_bytes"] == 128 * MIB
    assert space["embedded_log_bytes"] == 0
    assert space["record_efficiency"] == 0.5


def test_two_raidz2_vdevs_and_stripe():
    two = zfs_usable_bytes(DATA_LAKE, "raidz2", vdevs=2)
    one = zfs_usable_bytes(DATA_LAKE, "raidz2")
    assert two < one  # 4 parity disks instead of 2
    assert zfs_usable_bytes([TB, 2 * TB], "stripe") > zfs_usable_bytes([TB, TB], "stripe")


def test_mirror_uses_smallest_disk():
    assert zfs_usable_bytes([TB, 2 * TB], "mirror") == zfs_usable_bytes([TB, TB], "mirror")


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (([18 * TB] * 3, "raidz2"), {}, "disks_bytes: raidz2 needs at least 4 disks per vdev, got 3"),
        (([18 * TB] * 4, "raidz3"), {}, "disks_bytes: raidz3 needs at least 5 disks per vdev, got 4"),
        (([18 * TB], "mirror"), {}, "disks_bytes: a mirror needs at least 2 disks per vdev, got 1"),
        (([18 * TB] * 8, "raid6"), {}, "layout: must be one of"),
        ((DATA_LAKE, "raidz2"), {"vdevs": 3}, "vdevs: 8 disks cannot be split into 3 equal vdevs"),
        ((DATA_LAKE, "raidz2"), {"ashift": 8}, "ashift: must be >= 9"),
        ((DATA_LAKE, "raidz2"), {"ashift": 17}, "ashift: must be between 9 and 16"),
        ((DATA_LAKE, "raidz2"), {"recordsize": 100000}, "recordsize: must be a power of two"),
        (([], "stripe"), {}, "disks_bytes: at least one disk is required"),
        ((["18TB"], "stripe"), {}, "disks_bytes[0]: expected an integer"),
        (([18 * TB, 0], "stripe"), {}, "disks_bytes[1]: must be >= 1"),
        (([32 * MIB] * 2, "mirror"), {}, "disks_bytes: vdev 0: a disk is smaller than the 64 MiB ZFS minimum"),
        ((18 * TB, "stripe"), {}, "disks_bytes: expected a list"),
    ],
)
def test_rejects(args, kwargs, message):
    with pytest.raises(AnsibleFilterError) as err:
        zfs_usable_bytes(*args, **kwargs)
    assert str(err.value).startswith("zfs_usable_bytes: ")
    assert message in str(err.value)


layouts = st.sampled_from([("stripe", 1), ("mirror", 2), ("raidz1", 3), ("raidz2", 4), ("raidz3", 5)])
disk_size = st.integers(min_value=GIB, max_value=30 * TB)


@settings(max_examples=150, deadline=None)
@given(layouts, disk_size, st.integers(min_value=0, max_value=10), st.sampled_from([9, 12, 13]))
def test_usable_is_below_raw_and_grows_with_disks(layout, size, extra, ashift):
    name, minimum = layout
    disks = [size] * (minimum + extra)
    usable = zfs_usable_bytes(disks, name, ashift=ashift)
    assert 0 < usable < sum(disks)
    bigger = zfs_usable_bytes([*disks, size], name, ashift=ashift)
    if name == "mirror":
        assert bigger == usable  # another copy adds safety, not space
    else:
        assert bigger > usable


@settings(max_examples=100, deadline=None)
@given(disk_size, st.integers(min_value=5, max_value=12))
def test_more_parity_never_gives_more_space(size, count):
    disks = [size] * count
    z1, z2, z3 = (zfs_usable_bytes(disks, f"raidz{p}") for p in (1, 2, 3))
    assert z1 > z2 > z3
