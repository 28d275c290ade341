"""The health checks in the container: systemd judges every unit, each schedule runs once with its metrics read
back from the file and from the exporter, and a real fault (a filled filesystem) fails the check, mails the
digest, fires HealthCheckFailed in Prometheus and mails the alert; the repair clears all of it.
"""

from __future__ import annotations

import json
import pathlib
import re
import time

import pytest
import yaml
from mailspool import body, http_get, mails, start_unit, wait_for_mail

REPO = pathlib.Path(__file__).resolve().parents[3]
# The role's default schedules (pools, daily, weekly, monthly), as the scenario applies them.
SCHEDULES = list(
    yaml.safe_load((REPO / "roles/health_checks/defaults/main.yml").read_text())["health_checks_schedules"]
)
UNITS = [f"/etc/systemd/system/onprem-health-check-{s}.{kind}" for s in SCHEDULES for kind in ("service", "timer")]
TEXTFILE = "/var/lib/prometheus/node-exporter/onprem_health_check_{}.prom"


def metric(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in exposition text (labels matched as given, others ignored)."""
    for line in text.splitlines():
        match = re.match(rf"^{name}\{{([^}}]*)\}} (\S+)$", line)
        if match and all(f'{k}="{v}"' in match.group(1) for k, v in labels.items()):
            return float(match.group(2))
    return None


def run_schedule(host, schedule: str) -> tuple[int, str]:
    """Start the schedule's service as its timer would and wait for it (oneshot); rc and the run's journal."""
    return start_unit(host, f"onprem-health-check-{schedule}.service")


def firing(host, alertname: str) -> list[dict]:
    alerts = json.loads(http_get(host, "http://127.0.0.1:9090/api/v1/alerts"))["data"]["alerts"]
    return [a for a in alerts if a["labels"]["alertname"] == alertname and a["state"] == "firing"]


def test_systemd_analyze_verify_accepts_every_unit(host) -> None:
    done = host.run("systemd-analyze verify %s", " ".join(UNITS))
    print(done.stdout, done.stderr)
    assert done.rc == 0
    assert "onprem-health-check" not in done.stdout + done.stderr


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_each_timer_is_armed_and_its_service_runs_once_with_metrics_read_back(host, schedule: str) -> None:
    assert host.check_output(f"systemctl is-active onprem-health-check-{schedule}.timer") == "active"
    assert host.check_output(f"systemctl show -P NextElapseUSecRealtime onprem-health-check-{schedule}.timer")
    before = time.time()
    rc, journal = run_schedule(host, schedule)
    print(journal)
    assert rc == 0, journal
    text = host.check_output(f"cat {TEXTFILE.format(schedule)}")
    checks = json.loads(host.check_output("cat /etc/onprem/health-check.json"))["schedules"][schedule]["checks"]
    for check in checks:
        assert metric(text, "onprem_health_check_ok", schedule=schedule, check=check) == 1, (check, text)
        assert (
            metric(text, "onprem_health_check_last_run_timestamp_seconds", schedule=schedule, check=check) >= before - 5
        )
    digest = json.loads(host.check_output("cat /etc/onprem/health-check.json"))["schedules"][schedule].get("digest")
    assert metric(text, "onprem_health_check_digest_sent", schedule=schedule) == (None if digest == "never" else 1)
    # The exporter serves what the program wrote.
    exported = http_get(host, "http://127.0.0.1:9100/metrics")
    assert metric(exported, "onprem_health_check_ok", schedule=schedule, check=checks[0]) == 1
    assert "node_textfile_scrape_error 0" in exported


def test_a_filled_filesystem_fails_the_check_mails_the_digest_and_fires_the_alert(host) -> None:
    """The fault is real: the 8 MiB tmpfs filled with fallocate, as df reports it."""
    host.run("rm -f /srv/fill/health-blob")
    seen = len(mails(host))
    host.run_expect([0], "fallocate -l 7900k /srv/fill/health-blob")
    try:
        rc, journal = run_schedule(host, "daily")
        print(journal)
        finished = time.monotonic()
        assert rc != 0, "the service must fail when a check fails"
        assert host.check_output("systemctl is-failed onprem-health-check-daily.service") == "failed"
        text = host.check_output(f"cat {TEXTFILE.format('daily')}")
        assert metric(text, "onprem_health_check_ok", schedule="daily", check="disk_space") == 0
        assert metric(text, "onprem_health_check_ok", schedule="daily", check="md_arrays") == 1
        digest, _ = wait_for_mail(host, seen, "[health daily]", timeout=30)
        print(f"digest: {digest['Subject']}")
        assert "1 FAILED" in digest["Subject"]
        assert re.search(r"\[FAILED \] disk_space: .*/srv/fill \(tmpfs\) 9\d% used", body(digest))
        alert, _ = wait_for_mail(host, seen, "HealthCheckFailed", timeout=90)
        print(f"check finished to HealthCheckFailed mail: {time.monotonic() - finished:.1f} s; {alert['Subject']}")
        assert "[FIRING" in alert["Subject"]
        assert "disk_space" in body(alert)
    finally:
        host.run("rm -f /srv/fill/health-blob")
    seen = len(mails(host))
    rc, journal = run_schedule(host, "daily")
    assert rc == 0, journal
    assert (
        metric(
            host.check_output(f"cat {TEXTFILE.format('daily')}"),
            "onprem_health_check_ok",
            schedule="daily",
            check="disk_space",
        )
        == 1
    )
    resolved, _ = wait_for_mail(host, seen, "[RESOLVED", timeout=90)
    assert "HealthCheckFailed" in resolved["Subject"] or "FilesystemAlmostFull" in resolved["Subject"]
    # Both alerts the fill raised are resolved before the next test fills the same filesystem.
    deadline = time.monotonic() + 60
    while (firing(host, "HealthCheckFailed") or firing(host, "FilesystemAlmostFull")) and time.monotonic() < deadline:
        time.sleep(1)
    assert not firing(host, "HealthCheckFailed")
    assert not firing(host, "FilesystemAlmostFull")
