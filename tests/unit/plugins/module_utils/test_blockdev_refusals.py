"""Shared refusal rules of zfs_pool and md_array: active swap is a use, one device under two names is refused."""

from __future__ import annotations

from typing import Any

import pytest
from fixtures.recorded import reader

from ansible_collections.onprem.gpu_server.plugins.module_utils.blockdev.probe import BlockdevRunner, parse_swaps
from ansible_collections.onprem.gpu_server.plugins.module_utils.blockdev.refusals import (
    describe_findings,
    refusal,
    same_devices,
)

read = reader("mdadm")
SWAPS = read("constructed_proc-swaps_partition-file-zram-dm.txt")


def test_parse_swaps_lists_block_devices_only():
    # The swap file is left out: it lives on a mounted filesystem, which the mounts report.
    assert parse_swaps(SWAPS) == ["/dev/sdg2", "/dev/zram0", "/dev/dm-1"]


def test_parse_swaps_without_swap_is_empty():
    assert parse_swaps("Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n") == []
    assert parse_swaps("") == []


def test_parse_swaps_decodes_escapes():
    text = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/dev/disk/by-label/my\\040swap  partition\t1\t\t0\t\t-2\n"
    assert parse_swaps(text) == ["/dev/disk/by-label/my swap"]


def test_swap_is_a_use_that_force_does_not_override():
    findings = {"real": "/dev/sdg", "signatures": [{"on": "/dev/sdg2", "type": "swap", "label": None,
                                                   "offset": "0xff6", "uuid": "u"}], "swaps": ["/dev/sdg2"]}
    assert describe_findings(findings)["in_use"] == ["active swap (/dev/sdg2)"]
    for force in (False, True):
        assert refusal("/dev/disk/by-id/wwn-0x5000c500a1b2c3d4", findings, force) == (
            "/dev/disk/by-id/wwn-0x5000c500a1b2c3d4 (/dev/sdg) is in use: active swap (/dev/sdg2); swap signature "
            "on /dev/sdg2 (force does not override a device in use)")


@pytest.fixture
def host(tmp_path, monkeypatch) -> dict[str, Any]:
    """A disk with two partitions as plain files (realpath and existence are real), /proc and sysfs faked."""
    disk, part1, part2 = tmp_path / "labswapdisk", tmp_path / "labswapdisk1", tmp_path / "labswapdisk2"
    for node in (disk, part1, part2):
        node.write_text("")
    byid = tmp_path / "wwn-0x5000c500a1b2c3d4"
    byid.symlink_to(disk)
    files = {"/proc/swaps": SWAPS.replace("/dev/sdg2", str(part2)), "/proc/self/mounts": "", "/proc/mdstat": ""}

    class Module:
        def get_bin_path(self, name, required=False, opt_dirs=None):
            return f"/usr/sbin/{name}"

    monkeypatch.setattr(BlockdevRunner, "_read", staticmethod(lambda path: files.get(path, "")))
    monkeypatch.setattr(BlockdevRunner, "signatures", lambda self, dev: [])
    monkeypatch.setattr(BlockdevRunner, "partitions",
                        lambda self, real: [str(part1), str(part2)] if real == str(disk) else [])
    return {"runner": BlockdevRunner(Module()), "disk": str(disk), "part1": str(part1), "part2": str(part2),
            "byid": str(byid), "files": files}


def test_probe_reports_a_swap_partition_of_the_disk(host):
    findings = host["runner"].probe(host["byid"])
    assert findings["swaps"] == [host["part2"]]
    assert refusal(host["byid"], findings, True) == (
        f"{host['byid']} ({host['disk']}) is in use: active swap ({host['part2']}) "
        "(force does not override a device in use)")


def test_probe_of_the_swap_partition_itself(host):
    assert host["runner"].probe(host["part2"])["swaps"] == [host["part2"]]
    assert host["runner"].probe(host["part1"])["swaps"] == []


def test_probe_without_active_swap(host):
    host["files"]["/proc/swaps"] = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
    findings = host["runner"].probe(host["byid"])
    assert findings["swaps"] == []
    assert refusal(host["byid"], findings, False) is None


def test_swap_listed_by_a_link_resolves_to_its_node(host, tmp_path):
    link = tmp_path / "swap-by-uuid"
    link.symlink_to(host["part2"])
    host["files"]["/proc/swaps"] = SWAPS.replace("/dev/sdg2", str(link))
    assert host["runner"].probe(host["disk"])["swaps"] == [host["part2"]]


# ---------------------------------------------------------------- one device under two names
DEVICES = {
    "/dev/disk/by-id/wwn-0x5000c500a1b2c3d4": {"real": "/dev/sdg", "disk": "/dev/sdg"},
    "/dev/sdg": {"real": "/dev/sdg", "disk": "/dev/sdg"},
    "/dev/disk/by-id/wwn-0x5000c500a1b2c3d4-part1": {"real": "/dev/sdg1", "disk": "/dev/sdg"},
    "/dev/sdg1": {"real": "/dev/sdg1", "disk": "/dev/sdg"},
    "/dev/sdh": {"real": "/dev/sdh", "disk": "/dev/sdh"},
    "/dev/sdg2": {"real": "/dev/sdg2", "disk": "/dev/sdg"},
}
WWN = "/dev/disk/by-id/wwn-0x5000c500a1b2c3d4"
SAME = [
    ([WWN, "/dev/sdg"], [f"{WWN} and /dev/sdg are the same device (/dev/sdg)"]),
    (["/dev/sdg", WWN], [f"/dev/sdg and {WWN} are the same device (/dev/sdg)"]),
    ([f"{WWN}-part1", "/dev/sdh", "/dev/sdg1"], [f"{WWN}-part1 and /dev/sdg1 are the same device (/dev/sdg1)"]),
    ([WWN, "/dev/sdg1"], [f"/dev/sdg1 is a partition of {WWN} (/dev/sdg)"]),
    (["/dev/sdg1", WWN], [f"/dev/sdg1 is a partition of {WWN} (/dev/sdg)"]),
    ([WWN, "/dev/sdg", "/dev/sdg1"], [f"{WWN} and /dev/sdg are the same device (/dev/sdg)",
                                      f"/dev/sdg1 is a partition of {WWN} (/dev/sdg)"]),
    (["/dev/sdg1", "/dev/sdg2", "/dev/sdh"], []),  # two partitions of one disk are two devices
    (["/dev/sdg", "/dev/sdg"], []),  # identical strings: each caller reports them in its own words
    (["sdb", "/dev/sdh"], []),  # not resolved: stands for itself
]


@pytest.mark.parametrize(("paths", "phrases"), SAME)
def test_same_devices(paths, phrases):
    assert same_devices(paths, DEVICES) == phrases
