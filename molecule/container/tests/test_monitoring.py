"""Monitoring in the container: promtool and amtool judge the files the roles wrote, a real fault ends in a real
e-mail, and bad input changes nothing that runs.

The SMTP server is aiosmtpd on loopback with AUTH required (molecule/container/files/smtp_sink.py): a mail in its
spool also proves Alertmanager logged in with the password the role wrote to its file.
"""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import json
import os
import pathlib
import subprocess
import time

import pytest

REPO = pathlib.Path(__file__).resolve().parents[3]
SCENARIO = REPO / "molecule" / "container"
PROMETHEUS_CONFIG = "/etc/prometheus/prometheus.yml"
RULES = "/etc/prometheus/rules/onprem-alerts.rules.yml"
ALERTMANAGER_CONFIG = "/etc/prometheus/alertmanager.yml"
SPOOL = "/var/lib/smtp-sink"
CANARY = "smtp-canary-7d41e9"
LIVE_FILES = [PROMETHEUS_CONFIG, RULES, "/etc/prometheus/rules/site.rules.yml", ALERTMANAGER_CONFIG]


def run_monitoring_play(*args: str) -> subprocess.CompletedProcess[str]:
    """ansible-playbook of the scenario's monitoring play against the Molecule instance."""
    cmd = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], str(SCENARIO / "monitoring.yml"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False, cwd=REPO)


def http_get(host, url: str) -> str:
    """A GET on the host itself (the image has no curl)."""
    program = "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())"
    return host.check_output("python3 -c %s %s", program, url)


def live_state(host) -> dict[str, str]:
    """sha256 of the files the services read, and of the configuration each service has loaded."""
    state = {path: host.check_output("sha256sum %s", path).split()[0] for path in LIVE_FILES}
    state["prometheus loaded"] = hashlib.sha256(http_get(host, "http://127.0.0.1:9090/api/v1/status/config").encode()).hexdigest()
    state["alertmanager loaded"] = hashlib.sha256(
        json.loads(http_get(host, "http://127.0.0.1:9093/api/v2/status"))["config"]["original"].encode()
    ).hexdigest()
    return state


def mails(host) -> list[email.message.EmailMessage]:
    names = host.check_output(f"ls {SPOOL}").split()
    out = []
    for name in sorted(n for n in names if n.endswith(".eml")):
        raw = base64.b64decode(host.check_output(f"base64 -w0 {SPOOL}/{name}"))
        out.append(email.message_from_bytes(raw, policy=email.policy.default))
    return out


def wait_for_mail(host, seen: int, subject: str, timeout: float) -> tuple[email.message.EmailMessage, float]:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        for message in mails(host)[seen:]:
            if subject in message["Subject"]:
                return message, time.monotonic() - start
        time.sleep(0.5)
    got = [m["Subject"] for m in mails(host)[seen:]]
    raise AssertionError(f"no mail with {subject!r} within {timeout} s; new mails: {got}")


def body(message: email.message.EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    assert part is not None
    return part.get_content()


def test_promtool_accepts_the_configuration_and_the_rules(host) -> None:
    done = host.run(f"promtool check config {PROMETHEUS_CONFIG}")
    print(done.stdout, done.stderr)
    assert done.rc == 0
    assert "SUCCESS" in done.stdout + done.stderr


def test_amtool_accepts_the_configuration(host) -> None:
    done = host.run(f"amtool check-config {ALERTMANAGER_CONFIG}")
    print(done.stdout, done.stderr)
    assert done.rc == 0
    assert "SUCCESS" in done.stdout + done.stderr


def test_prometheus_scrapes_the_exporter_and_itself(host) -> None:
    active = json.loads(http_get(host, "http://127.0.0.1:9090/api/v1/targets"))["data"]["activeTargets"]
    health = {t["labels"]["job"]: t["health"] for t in active}
    assert health == {"node": "up", "prometheus": "up", "alertmanager": "up"}
    assert {t["labels"]["instance"] for t in active} == {host.backend.host}


def test_a_filled_filesystem_mails_an_alert_and_its_repair_mails_the_resolution(host) -> None:
    """The fault is real: a tmpfs filled with fallocate, which the node exporter reports as it is."""
    host.run("rm -f /srv/fill/blob")
    seen = len(mails(host))
    host.run_expect([0], "fallocate -l 7900k /srv/fill/blob")
    firing, fire_s = wait_for_mail(host, seen, "[FIRING", timeout=90)
    text = body(firing)
    print(f"fault to FIRING mail: {fire_s:.1f} s; subject: {firing['Subject']}")
    assert "FilesystemAlmostFull" in firing["Subject"]
    assert "/srv/fill" in text
    assert host.backend.host in text
    assert "runbook" in text.lower()
    seen = len(mails(host))
    host.run_expect([0], "rm -f /srv/fill/blob")
    resolved, resolve_s = wait_for_mail(host, seen, "[RESOLVED", timeout=90)
    print(f"repair to RESOLVED mail: {resolve_s:.1f} s; subject: {resolved['Subject']}")
    assert "FilesystemAlmostFull" in resolved["Subject"]


def test_the_relay_password_never_reaches_the_output(host) -> None:
    done = run_monitoring_play("-vvv")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "changed=0" in done.stdout
    assert CANARY not in done.stdout + done.stderr
    # It is in the file Alertmanager reads, and only there.
    assert host.check_output("cat /etc/prometheus/alertmanager-smtp-password") == CANARY
    assert CANARY not in host.check_output(f"cat {ALERTMANAGER_CONFIG}")


@pytest.mark.parametrize(
    ("role", "extra_vars", "message"),
    [
        # promtool rejects a rule: the files are put back before any reload.
        ("prometheus", '{"prometheus_rules_extra": [{"alert": "Broken", "expr": "up =="}]}', "promtool"),
        # amtool rejects the configuration (a label name Alertmanager cannot group by).
        ("alertmanager", '{"alertmanager_group_by": ["alertname", "bad-label"]}', "amtool"),
        # A threshold of the wrong type stops in the preflight, before any file is written.
        ("prometheus", '{"prometheus_alert_fs_for": "soon"}', "prometheus_alert_fs_for (soon) must be a duration"),
        # Recipients without a relay.
        ("alertmanager", '{"alertmanager_smtp_smarthost": ""}', "alertmanager_smtp_smarthost"),
    ],
    ids=["rule-promtool-rejects", "config-amtool-rejects", "threshold-not-a-number", "mail-without-relay"],
)
def test_bad_input_fails_with_a_clear_error_and_changes_nothing_that_runs(
    host, role: str, extra_vars: str, message: str
) -> None:
    before = live_state(host)
    done = run_monitoring_play("--tags", role, "-e", extra_vars)
    output = done.stdout + done.stderr
    print(output[-2500:])
    assert done.returncode != 0
    assert message in output
    assert live_state(host) == before
