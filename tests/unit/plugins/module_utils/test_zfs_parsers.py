"""zpool/zfs parsers against recorded real output (sources in tests/unit/fixtures/zpool/SOURCES.md).

Files named constructed_* were written by hand in the documented format where no
recording exists; the tests using them say so.
"""

from __future__ import annotations

import pytest
from fixtures import recorded

from ansible_collections.onprem.gpu_server.plugins.module_utils.zfs.parsers import (
    parse_get,
    parse_zfs_version,
    parse_zpool_import,
    parse_zpool_list,
    parse_zpool_status,
)

read = recorded.reader("zpool")


# file, pool, pool state, [(vdev type, number of disks, vdev state)], disk states in order
STATUS_CASES = [
    ("jc_zpool-status-v4_2x-mirror_online.txt", "pool1", "ONLINE",
     [("mirror", 2, "ONLINE"), ("mirror", 2, "ONLINE")], ["ONLINE"] * 4),
    ("zpool-status_mirror_degraded-faulted.txt", "local-zfs", "DEGRADED",
     [("mirror", 2, "DEGRADED")], ["ONLINE", "FAULTED"]),
    ("zpool-status_mirror_online-with-faulted-disk.txt", "tank", "ONLINE",
     [("mirror", 2, "ONLINE")], ["ONLINE", "FAULTED"]),
    ("zpool-status_raidz2-12disk_degraded-faulted.txt", "lwastor04a", "DEGRADED",
     [("raidz2", 12, "DEGRADED")],
     ["ONLINE", "DEGRADED", "FAULTED", "ONLINE", "ONLINE", "DEGRADED", "DEGRADED", "FAULTED", "DEGRADED",
      "ONLINE", "DEGRADED", "DEGRADED"]),
    ("zpool-status-Pp_raidz2_degraded_TRUNCATED.txt", "tank01", "DEGRADED",
     [("raidz2", 7, "DEGRADED")], ["ONLINE"] * 7),
]


@pytest.mark.parametrize(("name", "pool", "state", "vdevs", "disk_states"), STATUS_CASES)
def test_zpool_status_recorded(name, pool, state, vdevs, disk_states):
    pools = parse_zpool_status(read(name))
    assert list(pools) == [pool]
    got = pools[pool]
    assert got["state"] == state
    assert [(v["type"], len(v["disks"]), v["state"]) for v in got["vdevs"]] == vdevs
    assert all(v["role"] == "data" for v in got["vdevs"])
    assert [d["state"] for v in got["vdevs"] for d in v["disks"]] == disk_states


def test_zpool_status_full_paths_kept():
    disks = parse_zpool_status(read("zpool-status-Pp_raidz2_degraded_TRUNCATED.txt"))["tank01"]["vdevs"][0]["disks"]
    assert disks[0]["path"] == "/dev/disk/by-id/wwn-0x50000398b8c8d14b-part1"
    assert all(d["path"].startswith("/dev/disk/by-id/wwn-") and d["path"].endswith("-part1") for d in disks)


def test_zpool_status_status_text_joined():
    got = parse_zpool_status(read("jc_zpool-status-v4_2x-mirror_online.txt"))["pool1"]
    assert got["status"].startswith("Some supported and requested features are not enabled")
    assert "but some features are unavailable." in got["status"]
    assert got["errors"] == "No known data errors"


def test_zpool_status_classes_constructed():
    """Constructed: no recording with special/log/cache/spare sections exists."""
    pools = parse_zpool_status(read("constructed_zpool-status-P_raidz2-special-log-cache-spare_and_stripe.txt"))
    assert sorted(pools) == ["scratch", "tank"]
    tank = [(v["role"], v["type"], v["name"], len(v["disks"])) for v in pools["tank"]["vdevs"]]
    assert tank == [
        ("data", "raidz2", "raidz2-0", 4),
        ("special", "mirror", "mirror-1", 2),
        ("log", "stripe", "/dev/disk/by-id/nvme-LABNVME002-part1", 1),
        ("cache", "stripe", "/dev/disk/by-id/nvme-LABNVME003-part1", 1),
        ("spare", "stripe", "/dev/disk/by-id/wwn-0x5000c50000ab0009-part1", 1),
    ]
    assert [(v["type"], v["disks"][0]["path"]) for v in pools["scratch"]["vdevs"]] == [
        ("stripe", "/dev/disk/by-id/wwn-0x5000c50000ab0005-part1"),
        ("stripe", "/dev/disk/by-id/wwn-0x5000c50000ab0006-part1"),
    ]


def test_zpool_status_replacing_counts_as_disks_of_vdev():
    """Constructed: a disk being replaced inside a mirror."""
    text = ("  pool: t\n state: DEGRADED\nconfig:\n\n\tNAME STATE READ WRITE CKSUM\n\tt DEGRADED 0 0 0\n"
            "\t  mirror-0 DEGRADED 0 0 0\n\t    /dev/sda1 ONLINE 0 0 0\n\t    replacing-1 DEGRADED 0 0 0\n"
            "\t      /dev/sdb1 FAULTED 0 0 0\n\t      /dev/sdc1 ONLINE 0 0 0\n\nerrors: No known data errors\n")
    vdev = parse_zpool_status(text)["t"]["vdevs"][0]
    assert [d["path"] for d in vdev["disks"]] == ["/dev/sda1", "/dev/sdb1", "/dev/sdc1"]


def test_no_pools():
    assert parse_zpool_status("no pools available\n") == {}


def test_zpool_import_listing_constructed():
    """Constructed: `zpool import` with one importable and one unavailable pool."""
    found = parse_zpool_import(read("constructed_zpool-import_listing.txt"))
    assert [(p["name"], p["id"], p["state"]) for p in found] == [
        ("tank", "15378598475931358045", "ONLINE"), ("old", "3141592653589793238", "UNAVAIL")]
    assert [(v["type"], len(v["disks"])) for v in found[0]["vdevs"]] == [("raidz2", 4)]
    assert found[1]["action"] == "The pool cannot be imported. Attach the missing devices and try again."


@pytest.mark.parametrize(("name", "pool", "size", "health"), [
    ("zpool-list-p_mirror_degraded.txt", "store", 9981503995904, "DEGRADED"),
    ("zpool-list-p-v-L_mirror-nvme.txt", "rpool", 3985729650688, "ONLINE"),
    ("constructed_zpool-list-Hp_tank.txt", "tank", 274877906944, "ONLINE"),
])
def test_zpool_list(name, pool, size, health):
    pools = parse_zpool_list(read(name))
    assert list(pools) == [pool]
    assert pools[pool]["size"] == size
    assert pools[pool]["health"] == health


def test_get_constructed():
    """Constructed: `zpool get -H -p -o property,value,source all` and the same for zfs."""
    pool = parse_get(read("constructed_zpool-get-Hp_tank.txt"))
    assert pool["ashift"] == {"value": "12", "source": "local"}
    assert pool["size"]["source"] == "-"
    fs = parse_get(read("constructed_zfs-get-Hp_tank.txt"))
    assert fs["compression"]["value"] == "lz4"
    assert fs["org.example:owner"] == {"value": "datalake", "source": "local"}


def test_zpool_status_skips_indirect_vdev_of_a_removal():
    """Constructed: after `zpool remove` of a top-level vdev, an indirect-N entry may remain."""
    text = ("  pool: t\n state: ONLINE\nconfig:\n\n\tNAME STATE READ WRITE CKSUM\n\tt ONLINE 0 0 0\n"
            "\t  indirect-0 ONLINE 0 0 0\n\t  mirror-1 ONLINE 0 0 0\n\t    /dev/sda1 ONLINE 0 0 0\n"
            "\t    /dev/sdb1 ONLINE 0 0 0\n\nerrors: No known data errors\n")
    assert [v["name"] for v in parse_zpool_status(text)["t"]["vdevs"]] == ["mirror-1"]


@pytest.mark.parametrize(("text", "version"), [
    ("2.3.2-2~bpo12+2\n", (2, 3, 2)),  # /sys/module/zfs/version in the lab VM
    ("zfs-2.3.2-2~bpo12+2\nzfs-kmod-2.3.2-2~bpo12+2\n", (2, 3, 2)),  # 'zfs version' in the lab VM
    ("zfs-2.2.0-1\nzfs-kmod-2.1.5-1ubuntu6\n", (2, 1, 5)),  # userland newer than the module: the module counts
    ("zfs-2.2.0-1\n", None),
    ("", None),
])
def test_zfs_version(text, version):
    assert parse_zfs_version(text) == version
