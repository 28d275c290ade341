"""zfs_pool module wiring with the system faked: what runs in check mode, in a real run, and on refusal."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_zfs_pool_fakes import install_fake, run_module

from ansible_collections.onprem.gpu_server.plugins.module_utils.blockdev import probe as blockdev_probe
from ansible_collections.onprem.gpu_server.plugins.modules import zfs_pool

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "zpool"
STATUS = (FIX / "constructed_zpool-status-P_raidz2-special-log-cache-spare_and_stripe.txt").read_text()
IMPORT = (FIX / "constructed_zpool-import_listing.txt").read_text()
ZPOOL_GET = (FIX / "constructed_zpool-get-Hp_tank.txt").read_text()
ZFS_GET = (FIX / "constructed_zfs-get-Hp_tank.txt").read_text()
D = [f"/dev/disk/by-id/wwn-0x5000c50000ab000{i}" for i in range(1, 9)]
NV = [f"/dev/disk/by-id/nvme-LABNVME00{i}" for i in range(4)]
GET = ("-H", "-p", "-o", "property,value,source", "all", "tank")
TANK = [{"type": "raidz2", "disks": D[:4]}, {"role": "special", "type": "mirror", "disks": NV[:2]},
        {"role": "log", "disks": [NV[2]]}, {"role": "cache", "disks": [NV[3]]}]
MUTATING = ("create", "add", "set", "import", "destroy")


def mutating(system):
    return [c for c in system.calls
            if c[0] in ("zpool", "zfs") and c[1] in MUTATING and "-n" not in c and c != ["zpool", "import"]]


def new_pool_table(system, created_status=STATUS):
    state = {"created": False}

    def status(_):
        return (0, created_status if state["created"] else "no pools available\n", "")

    def create(_):
        state["created"] = True
        return (0, "", "")

    argv = ("zpool", "create", "-o", "ashift=12", "-O", "compression=lz4", "tank", "raidz2", *D[:4])
    system.table.update({
        ("zpool", "status", "-P"): status,
        ("zpool", "import"): (1, "", "no pools available to import\n"),
        (argv[0], argv[1], "-n", *argv[2:]): (0, "would create 'tank' with the following layout:\n", ""),
        argv: create,
        ("zpool", "get", *GET): (0, ZPOOL_GET, ""),
        ("zfs", "get", *GET): (0, ZFS_GET, ""),
    })
    return list(argv)


ARGS = {"name": "tank", "ashift": 12, "vdevs": [{"type": "raidz2", "disks": D[:4]}],
        "filesystem_properties": {"compression": "lz4"}}


def test_check_mode_validates_with_dry_run_and_changes_nothing(monkeypatch, capsys):
    fake = install_fake(monkeypatch)
    argv = new_pool_table(fake)
    result = run_module(zfs_pool.main, {**ARGS, "_ansible_check_mode": True, "_ansible_diff": True}, capsys)
    assert result["changed"] is True
    assert result["action"] == "create"
    assert result["commands"] == [argv]
    assert mutating(fake) == []
    assert ["zpool", "create", "-n", *argv[2:]] in fake.calls
    assert [c[1] for c in fake.calls if c[0] == "probe"] == D[:4]
    assert result["diff"]["before"] == {"state": "absent"}
    assert result["diff"]["after"]["vdevs"] == [{"role": "data", "type": "raidz2", "disks": D[:4]}]


def test_create_runs_and_returns_topology(monkeypatch, capsys):
    fake = install_fake(monkeypatch)
    argv = new_pool_table(fake)
    result = run_module(zfs_pool.main, ARGS, capsys)
    assert result["changed"] is True
    assert mutating(fake) == [argv]
    assert result["pool"]["health"] == "ONLINE"
    assert result["pool"]["vdevs"][0]["name"] == "raidz2-0"
    assert result["pool"]["filesystem_properties"]["compression"] == "lz4"


def test_refused_disk_fails_before_any_command(monkeypatch, capsys):
    fake = install_fake(monkeypatch)
    new_pool_table(fake)
    fake.probes[D[2]] = {"signatures": [{"on": "/dev/sdc", "type": "ext4", "label": "data", "offset": "0x438",
                                         "uuid": "u"}], "real": "/dev/sdc"}
    result = run_module(zfs_pool.main, ARGS, capsys)
    assert result["failed"] is True
    assert result["msg"] == (f"refusing to create pool 'tank': {D[2]} (/dev/sdc) is not blank: found ext4 signature "
                             "(label 'data') on /dev/sdc (set force: true to overwrite it)")
    assert [c for c in fake.calls if c[0] == "zpool" and c[1] == "create"] == []


def existing_table(system):
    system.table.update({
        ("zpool", "status", "-P"): (0, STATUS, ""),
        ("zpool", "get", *GET): (0, ZPOOL_GET, ""),
        ("zfs", "get", *GET): (0, ZFS_GET, ""),
        ("zfs", "set", "atime=on", "tank"): (0, "", ""),
    })


def test_existing_pool_is_idempotent(monkeypatch, capsys):
    fake = install_fake(monkeypatch)
    existing_table(fake)
    result = run_module(zfs_pool.main, {"name": "tank", "ashift": 12, "vdevs": TANK,
                                        "filesystem_properties": {"compression": "lz4", "atime": False,
                                                                  "xattr": "sa"}}, capsys)
    assert result["changed"] is False
    assert mutating(fake) == []
    assert [c for c in fake.calls if c[0] == "probe"] == []


def test_property_change_check_and_real(monkeypatch, capsys):
    fake = install_fake(monkeypatch)
    existing_table(fake)
    args = {"name": "tank", "vdevs": TANK, "filesystem_properties": {"atime": True}}
    result = run_module(zfs_pool.main, {**args, "_ansible_check_mode": True}, capsys)
    assert result["changed"] is True
    assert result["commands"] == [["zfs", "set", "atime=on", "tank"]]
    assert mutating(fake) == []
    result = run_module(zfs_pool.main, args, capsys)
    assert mutating(fake) == [["zfs", "set", "atime=on", "tank"]]


def test_missing_vdev_fails_without_removing(monkeypatch, capsys):
    fake = install_fake(monkeypatch)
    existing_table(fake)
    result = run_module(zfs_pool.main, {"name": "tank", "vdevs": TANK[:2]}, capsys)
    assert result["failed"] is True
    assert "this module never removes a vdev" in result["msg"]
    assert mutating(fake) == []


def test_exported_pool_is_imported(monkeypatch, capsys):
    fake = install_fake(monkeypatch)
    state = {"imported": False}

    def status(_):
        return (0, STATUS if state["imported"] else "no pools available\n", "")

    def do_import(_):
        state["imported"] = True
        return (0, "", "")

    existing_table(fake)
    fake.table.update({("zpool", "status", "-P"): status, ("zpool", "import"): (0, IMPORT, ""),
                       ("zpool", "import", "15378598475931358045"): do_import})
    result = run_module(zfs_pool.main, {"name": "tank", "vdevs": TANK}, capsys)
    assert result["changed"] is True
    assert result["action"] == "import"
    assert mutating(fake) == [["zpool", "import", "15378598475931358045"]]
    assert [c for c in fake.calls if c[0] == "probe"] == []
    assert result["pool"]["health"] == "ONLINE"


def test_destroy_refused_without_allow_destroy(monkeypatch, capsys):
    fake = install_fake(monkeypatch)
    existing_table(fake)
    result = run_module(zfs_pool.main, {"name": "tank", "state": "absent"}, capsys)
    assert result["failed"] is True
    assert result["msg"] == "refusing to destroy pool 'tank' and all its data: set allow_destroy: true"
    assert mutating(fake) == []


# Bad input: refused with a message naming the option, before any command runs (zpool status included).
SDG = {D[0]: "/dev/sdg", "/dev/sdg": "/dev/sdg", D[1]: "/dev/sdh", D[2]: "/dev/sdi", D[3]: "/dev/sdj"}
BAD_INPUT = [
    ("path in the name", {"name": "../../etc"},
     "name: '../../etc' contains '/'; a pool name may contain only letters, digits and _ - . :"),
    ("disk-like name", {"name": "c0t0d0"},
     "name: 'c0t0d0' is reserved: pool names that begin with 'c' and a digit look like disk names"),
    ("vdev keyword as name", {"name": "spare"}, "name: 'spare' is reserved: zpool reads it as a vdev keyword"),
    ("ashift 17", {"ashift": 17},
     "ashift: 17 is outside 9-16 (sectors of 512 B to 64 KiB; 12 for 4K-sector disks, 0 to let zpool detect it)"),
    ("vdevs a string", {"vdevs": "foo"},
     "vdevs: expected a list of vdevs such as [{type: raidz2, disks: [/dev/disk/by-id/...]}], got the string 'foo'"),
    ("vdevs a list of disks", {"vdevs": [D[0], D[1]]},
     f"vdevs[0]: expected a vdev such as {{type: mirror, disks: [...]}}, got str '{D[0]}'"),
    ("raidz2 of 3", {"vdevs": [{"type": "raidz2", "disks": D[:3]}]}, "vdevs[0]: raidz2 needs at least 4 disks, got 3"),
    ("one disk by two names", {"vdevs": [{"type": "raidz2", "disks": [*D[:4], "/dev/sdg"]}]},
     f"vdevs: {D[0]} and /dev/sdg are the same device (/dev/sdg); list each disk once"),
]


@pytest.mark.parametrize("check_mode", [False, True], ids=["run", "check"])
@pytest.mark.parametrize(("label", "args", "message"), BAD_INPUT, ids=[c[0] for c in BAD_INPUT])
def test_bad_input_is_refused_before_any_command(monkeypatch, capsys, label, args, message, check_mode):
    fake = install_fake(monkeypatch)
    monkeypatch.setattr(blockdev_probe.BlockdevRunner, "resolve",
                        lambda self, path: {"real": SDG.get(path, path), "disk": SDG.get(path, path)})
    result = run_module(zfs_pool.main, {**ARGS, **args, "_ansible_check_mode": check_mode}, capsys)
    assert result["failed"] is True
    assert result["msg"] == message
    assert fake.calls == []


def test_vdevs_strings_ansible_reads_as_dicts_are_still_accepted(monkeypatch, capsys):
    """'key=value' and JSON items are dicts to Ansible; only unreadable strings get the vdevs message."""
    fake = install_fake(monkeypatch)
    argv = new_pool_table(fake)
    vdevs = ['{"type": "raidz2", "disks": ["' + '", "'.join(D[:4]) + '"]}']
    result = run_module(zfs_pool.main, {**ARGS, "vdevs": vdevs, "_ansible_check_mode": True}, capsys)
    assert result["commands"] == [argv]
