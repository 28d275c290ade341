"""The configuration backup (plugins/module_utils/backup/restic_job.py) against Debian's restic on a local
repository: backup, restores that are byte-identical, `restic check`, and a drill that finds a corrupted pack."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from fixtures import tools

from ansible_collections.onprem.gpu_server.plugins.module_utils.backup import restic_job

REPO_ROOT = Path(__file__).resolve().parents[5]
DRILL = REPO_ROOT / "plugins" / "module_utils" / "backup" / "drill.py"


@pytest.fixture(name="job")
def fixture_job(tmp_path: Path) -> dict:
    """A host's configuration below tmp_path, a repository initialised with a password file, the job's config."""
    restic = tools.require("restic")
    etc = tmp_path / "host" / "etc"
    (etc / "pve" / "qemu-server").mkdir(parents=True)
    (etc / "hosts").write_text("127.0.0.1 localhost\n10.20.0.5 trading\n")
    (etc / "pve" / "qemu-server" / "100.conf").write_text("cores: 8\nmemory: 65536\nhostpci0: 0000:3b:00.0\n")
    (etc / "chrony.conf").write_bytes(os.urandom(4096))
    os.symlink("hosts", etc / "hosts.link")
    # pmxcfs's generated status files, which change under a backup: excluded from it and from its manifest.
    (etc / "pve" / ".members").write_text('{"nodename": "xc740xd", "version": 3}\n')
    state = tmp_path / "host" / "var" / "lib" / "onprem"
    state.mkdir(parents=True)
    (state / "plan.json").write_text('{"profile": "trading_server"}\n')
    password = tmp_path / "password"
    password.write_text("correct horse battery staple\n")
    password.chmod(0o600)
    drill = tmp_path / "onprem-backup-drill"
    shutil.copy(DRILL, drill)
    drill.chmod(0o755)
    textfiles = tmp_path / "textfiles"
    textfiles.mkdir()
    config = {
        "name": "config",
        "restic": restic,
        "repository": str(tmp_path / "repo"),
        "password_file": str(password),
        "cache_dir": str(tmp_path / "cache"),
        "paths": [str(etc), str(state), str(tmp_path / "host" / "etc-not-here")],
        "exclude": [f"{etc}/pve/.*"],
        "keep": {"daily": 7, "weekly": 4, "monthly": 6},
        "tag": "onprem-config",
        "manifest": str(tmp_path / "host" / "var" / "lib" / "onprem-backup" / "config.SHA256SUMS"),
        "scratch_dir": str(tmp_path / "scratch"),
        "drill": str(drill),
        "textfile_dir": str(textfiles),
    }
    (tmp_path / "job.json").write_text(json.dumps(config))
    subprocess.run([restic, "init"], env=restic_job.restic_env(config), check=True, stdout=subprocess.DEVNULL)
    return {"config": config, "path": str(tmp_path / "job.json"), "etc": etc, "tmp": tmp_path}


def run(job: dict, action: str) -> int:
    return restic_job.main(["--config", job["path"], action])


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def metric(job: dict, name: str) -> float:
    """A sample's value from the job's textfiles."""
    for prom in (job["tmp"] / "textfiles").glob("*.prom"):
        for line in prom.read_text().splitlines():
            if line.startswith(name + "{"):
                return float(line.split()[-1])
    raise AssertionError(f"{name} not written: {os.listdir(job['tmp'] / 'textfiles')}")


def restore(job: dict, target: Path, *include: str) -> None:
    """restic restore of the newest snapshot, as an operator restores after a loss."""
    config = job["config"]
    args = [config["restic"], "restore", "latest", "--target", str(target)]
    args += [arg for path in include for arg in ("--include", path)]
    subprocess.run(args, env=restic_job.restic_env(config), check=True, stdout=subprocess.DEVNULL)


def test_a_modified_and_a_deleted_file_come_back_byte_identical(job: dict) -> None:
    etc: Path = job["etc"]
    before = {name: sha256(etc / name) for name in ("hosts", "chrony.conf", "pve/qemu-server/100.conf")}
    assert run(job, "backup") == 0
    assert metric(job, "onprem_backup_backup_ok") == 1
    # The loss: one file edited by mistake, one deleted.
    (etc / "hosts").write_text("garbage\n")
    (etc / "pve" / "qemu-server" / "100.conf").unlink()
    target = job["tmp"] / "restore"
    restore(job, target, str(etc / "hosts"), str(etc / "pve"))
    restored = target / str(etc).lstrip("/")
    assert sha256(restored / "hosts") == before["hosts"]
    assert sha256(restored / "pve" / "qemu-server" / "100.conf") == before["pve/qemu-server/100.conf"]
    # Only what was asked for came back.
    assert not (restored / "chrony.conf").exists()


def test_check_is_clean_and_the_drill_restores_what_was_backed_up(job: dict) -> None:
    assert run(job, "backup") == 0
    assert run(job, "check") == 0
    assert metric(job, "onprem_backup_check_ok") == 1
    assert run(job, "drill") == 0
    assert metric(job, "onprem_backup_drill_ok") == 1
    # /etc's three files and one link, the plan; the manifest itself and pmxcfs's .members are not counted.
    assert metric(job, "onprem_backup_drill_files") == 5
    assert 0 <= metric(job, "onprem_backup_age_seconds") < 300
    # The scratch directory is cleaned up.
    assert os.listdir(job["config"]["scratch_dir"]) == []


def test_a_corrupted_pack_fails_check_and_drill_with_a_metric(job: dict) -> None:
    assert run(job, "backup") == 0
    packs = sorted(
        (p for p in (Path(job["config"]["repository"]) / "data").rglob("*") if p.is_file()),
        key=lambda p: p.stat().st_size,
    )
    # The largest pack holds the file data (chrony.conf's random bytes); flip bytes in its middle.
    pack = packs[-1]
    pack.chmod(stat.S_IRUSR | stat.S_IWUSR)
    data = bytearray(pack.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 16] = bytes(b ^ 0xFF for b in data[middle : middle + 16])
    pack.write_bytes(bytes(data))
    assert run(job, "drill") == 1
    assert metric(job, "onprem_backup_drill_ok") == 0
    config = dict(job["config"], check_read_data_subset="100%")
    Path(job["path"]).write_text(json.dumps(config))
    assert run(job, "check") == 1
    assert metric(job, "onprem_backup_check_ok") == 0


def test_a_drill_with_nothing_to_restore_fails(job: dict) -> None:
    assert run(job, "drill") == 1
    assert metric(job, "onprem_backup_drill_ok") == 0


def test_a_failed_backup_keeps_the_last_success_time(job: dict) -> None:
    assert run(job, "backup") == 0
    first = metric(job, "onprem_backup_backup_last_success_timestamp_seconds")
    config = dict(job["config"], password_file=str(job["tmp"] / "wrong"))
    (job["tmp"] / "wrong").write_text("not the password\n")
    Path(job["path"]).write_text(json.dumps(config))
    assert run(job, "backup") == 1
    assert metric(job, "onprem_backup_backup_ok") == 0
    assert metric(job, "onprem_backup_backup_last_success_timestamp_seconds") == first


def test_restic_snapshot_times_are_read_with_their_offset() -> None:
    now = 1796640000.0
    assert restic_job.snapshot_age("2026-12-07T00:00:00.123456789Z", now) == now - 1796601600
    assert restic_job.snapshot_age("2026-12-07T01:00:00+01:00", now) == now - 1796601600
    with pytest.raises(ValueError):
        restic_job.snapshot_age("yesterday", now)
