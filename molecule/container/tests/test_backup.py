"""The configuration backup in the container, against Debian's restic: systemd judges the units, the first backup
ran during converge, restic check is clean, a modified and a deleted file come back byte-identical, the drill passes,
then fails on a corrupted repository (exit status, metric, a BackupDrillFailed mail through Prometheus and
Alertmanager) and passes again once it is repaired; bad input is refused with a clear error before anything changes,
and the password never reaches the output.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import time

import pytest
from mailspool import http_get, mails, start_unit

REPO = pathlib.Path(__file__).resolve().parents[3]
SCENARIO = REPO / "molecule" / "container"
ACTIONS = ["backup", "check", "drill"]
UNITS = [f"/etc/systemd/system/onprem-config-backup-{a}.{kind}" for a in ACTIONS for kind in ("service", "timer")]
REPOSITORY = "/srv/backup/restic-config"
PASSWORD_FILE = "/etc/onprem/backup/restic-password"
CANARY = "restic-canary-5e02c8"
RESTIC = f"RESTIC_REPOSITORY={REPOSITORY} RESTIC_PASSWORD_FILE={PASSWORD_FILE} restic --no-cache"
TEXTFILE = "/var/lib/prometheus/node-exporter/onprem_backup_restic_config_{}.prom"
DRILL_TEXTFILE = "/var/lib/prometheus/node-exporter/onprem_backup_drill_restic_config.prom"


def run_backup_play(*args: str) -> subprocess.CompletedProcess[str]:
    """ansible-playbook of the scenario's backup.yml against the Molecule instance."""
    cmd = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], str(SCENARIO / "backup.yml"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False, cwd=REPO)


def value(host, path: str, name: str) -> float:
    for line in host.check_output(f"cat {path}").splitlines():
        if line.startswith(name + "{"):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in {path}")


def start(host, action: str) -> tuple[int, str]:
    """The action's service started as its timer would, waited for (oneshot); rc and the run's journal."""
    return start_unit(host, f"onprem-config-backup-{action}.service")


def snapshots(host) -> list[dict]:
    return json.loads(host.check_output(f"{RESTIC} snapshots --json --tag onprem-config"))


def sha256(host, path: str) -> str:
    return host.check_output("sha256sum %s", path).split()[0]


def test_systemd_analyze_verify_accepts_every_unit(host) -> None:
    done = host.run("systemd-analyze verify %s", " ".join(UNITS))
    print(done.stdout, done.stderr)
    assert done.rc == 0
    assert "onprem-config-backup" not in done.stdout + done.stderr
    for action in ACTIONS:
        assert host.check_output(f"systemctl is-active onprem-config-backup-{action}.timer") == "active"


def test_the_first_backup_ran_during_converge(host) -> None:
    assert value(host, TEXTFILE.format("backup"), "onprem_backup_backup_ok") == 1
    snaps = snapshots(host)
    assert len(snaps) >= 1
    assert {"/etc", "/var/lib/onprem", "/var/lib/onprem-backup/config.SHA256SUMS"} <= set(snaps[-1]["paths"])
    password = host.file(PASSWORD_FILE)
    assert (password.user, password.mode) == ("root", 0o600)


def test_a_modified_and_a_deleted_file_come_back_byte_identical(host) -> None:
    host.run_expect([0], "mkdir -p /etc/onprem-drill && head -c 65536 /dev/urandom > /etc/onprem-drill/a.bin")
    host.run_expect([0], "printf 'keep me\\n' > /etc/onprem-drill/b.conf")
    before = {name: sha256(host, f"/etc/onprem-drill/{name}") for name in ("a.bin", "b.conf")}
    rc, journal = start(host, "backup")
    assert rc == 0, journal
    host.run_expect([0], "printf 'overwritten\\n' > /etc/onprem-drill/a.bin && rm /etc/onprem-drill/b.conf")
    host.run_expect([0], "rm -rf /var/tmp/restore-test")
    restore = "restore latest --tag onprem-config --target /var/tmp/restore-test --include /etc/onprem-drill"
    host.run_expect([0], f"{RESTIC} {restore}")
    for name, digest in before.items():
        assert sha256(host, f"/var/tmp/restore-test/etc/onprem-drill/{name}") == digest
    # Only what was asked for came back.
    assert host.check_output("ls /var/tmp/restore-test/etc") == "onprem-drill"
    host.run_expect([0], "rm -rf /var/tmp/restore-test /etc/onprem-drill")


def test_restic_check_is_clean(host) -> None:
    rc, journal = start(host, "check")
    print(journal[-1500:])
    assert rc == 0
    assert "no errors were found" in journal
    assert value(host, TEXTFILE.format("check"), "onprem_backup_check_ok") == 1


def firing_mail(host, seen: int, kind: str, timeout: float) -> float:
    """Seconds until a [FIRING or [RESOLVED mail of BackupDrillFailed arrives."""
    start_at = time.monotonic()
    while time.monotonic() - start_at < timeout:
        for message in mails(host)[seen:]:
            if message["Subject"].startswith(kind) and "BackupDrillFailed" in message["Subject"]:
                return time.monotonic() - start_at
        time.sleep(0.5)
    raise AssertionError(f"no {kind} BackupDrillFailed mail: {[m['Subject'] for m in mails(host)[seen:]]}")


def prometheus_value(host, query: str) -> list[str]:
    answer = json.loads(http_get(host, f"http://127.0.0.1:9090/api/v1/query?query={query}"))["data"]["result"]
    return [sample["value"][1] for sample in answer]


def test_the_drill_fails_on_a_corrupted_repository_and_passes_once_repaired(host) -> None:
    rc, journal = start(host, "drill")
    assert rc == 0, journal
    assert "identical" in journal
    assert value(host, DRILL_TEXTFILE, "onprem_backup_drill_ok") == 1
    assert value(host, DRILL_TEXTFILE, "onprem_backup_drill_files") > 100
    # The damage: bytes flipped in the middle of the largest pack (the drill reads the repository, not a cache).
    pack = host.check_output(f"find {REPOSITORY}/data -type f -printf '%s %p\\n' | sort -n | tail -1").split()[1]
    host.run_expect([0], f"cp -p {pack} /root/pack.good && chmod u+w {pack}")
    flip = (
        "import sys; p = sys.argv[1]; d = bytearray(open(p, 'rb').read()); m = len(d) // 2; "
        "d[m:m + 16] = bytes(b ^ 0xFF for b in d[m:m + 16]); open(p, 'wb').write(d)"
    )
    host.run_expect([0], "python3 -c %s %s", flip, pack)
    seen = len(mails(host))
    try:
        rc, journal = start(host, "drill")
        print(journal[-2000:])
        assert rc != 0
        assert "the restore reported an error" in journal
        assert value(host, DRILL_TEXTFILE, "onprem_backup_drill_ok") == 0
        print(f"drill failure to FIRING mail: {firing_mail(host, seen, '[FIRING', 90):.1f} s")
    finally:
        host.run_expect([0], f"cp -p /root/pack.good {pack} && rm /root/pack.good")
    seen = len(mails(host))
    rc, journal = start(host, "drill")
    assert rc == 0, journal
    assert value(host, DRILL_TEXTFILE, "onprem_backup_drill_ok") == 1
    print(f"repair to RESOLVED mail: {firing_mail(host, seen, '[RESOLVED', 90):.1f} s")
    assert prometheus_value(host, "onprem_backup_drill_ok") == ["1"]


# Each bad input, given as extra vars, and a part of the message its failure must carry.
BAD_INPUT = {
    "password-missing": ({"config_backup_password": ""}, "config_backup_password must be set (it is empty"),
    "repository-relative": ({"config_backup_repository": "backups/restic"}, "must be an absolute path or sftp:"),
    "disk-not-mounted": (
        {"config_backup_repository": "/srv/no-such-disk/restic"},
        "/srv/no-such-disk does not exist on",
    ),
    "wrong-password": ({"config_backup_password": "not-the-password"}, "wrong password or no key found"),
    "keep-nothing": ({"config_backup_keep": {"daily": 0}}, "at least one above 0"),
}


def state(host) -> dict[str, str]:
    """What the backup runs from: its files and the repository's snapshots."""
    out = {path: sha256(host, path) for path in [PASSWORD_FILE, "/etc/onprem/backup/config.json", *UNITS]}
    out["snapshots"] = " ".join(sorted(snap["id"] for snap in snapshots(host)))
    out["repository keys"] = host.check_output(f"ls {REPOSITORY}/keys")
    return out


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_is_refused_before_anything_changes(host, case: str) -> None:
    extra, message = BAD_INPUT[case]
    before = state(host)
    done = run_backup_play("-e", json.dumps(extra))
    output = done.stdout + done.stderr
    print(output[-1500:])
    assert done.returncode != 0
    assert message in output
    assert "changed=0" in output
    assert state(host) == before
    assert host.run("test -e /srv/no-such-disk").rc != 0


def test_the_password_never_reaches_the_output(host) -> None:
    done = run_backup_play("-vvv")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "changed=0" in done.stdout
    assert CANARY not in done.stdout + done.stderr
    assert host.check_output(f"cat {PASSWORD_FILE}") == CANARY
    assert CANARY not in host.check_output("cat /etc/onprem/backup/config.json")
