"""Monitoring in the container: promtool and amtool judge the files the roles wrote, a real fault ends in a real
e-mail, and bad input changes nothing that runs.

The SMTP server is aiosmtpd on loopback with AUTH required (molecule/container/files/smtp_sink.py): a mail in its
spool also proves Alertmanager logged in with the password the role wrote to its file.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import subprocess
import time

import pytest
from mailspool import body, http_get, mails, wait_for_mail

REPO = pathlib.Path(__file__).resolve().parents[3]
SCENARIO = REPO / "molecule" / "container"
PROMETHEUS_CONFIG = "/etc/prometheus/prometheus.yml"
RULES = "/etc/prometheus/rules/onprem-alerts.rules.yml"
ALERTMANAGER_CONFIG = "/etc/prometheus/alertmanager.yml"
CANARY = "smtp-canary-7d41e9"
LIVE_FILES = [
    PROMETHEUS_CONFIG,
    RULES,
    "/etc/prometheus/rules/site.rules.yml",
    ALERTMANAGER_CONFIG,
    "/etc/onprem/health-check.json",
    "/etc/systemd/system/onprem-health-check-daily.timer",
    "/etc/nut/ups.conf",
    "/etc/nut/upssched.conf",
    "/etc/onprem/ups-shed.json",
    "/etc/haproxy/haproxy.cfg",
    "/etc/systemd/system/onprem-llm-tiny-0.service",
    "/etc/systemd/system/onprem-llm-tiny-1.service",
    "/srv/models/tiny/.onprem-staged.json",
]


def run_monitoring_play(playbook: str, *args: str) -> subprocess.CompletedProcess[str]:
    """ansible-playbook of one of the scenario's monitoring playbooks against the Molecule instance."""
    cmd = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], str(SCENARIO / playbook), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False, cwd=REPO)


def live_state(host) -> dict[str, str]:
    """sha256 of the files the services read, and of the configuration each service has loaded."""
    state = {path: host.check_output("sha256sum %s", path).split()[0] for path in LIVE_FILES}
    state["prometheus loaded"] = hashlib.sha256(
        http_get(host, "http://127.0.0.1:9090/api/v1/status/config").encode()
    ).hexdigest()
    state["alertmanager loaded"] = hashlib.sha256(
        json.loads(http_get(host, "http://127.0.0.1:9093/api/v2/status"))["config"]["original"].encode()
    ).hexdigest()
    return state


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
    assert health == {"node": "up", "prometheus": "up", "alertmanager": "up", "haproxy": "up"}
    assert {t["labels"]["instance"] for t in active} == {host.backend.host}


def test_prometheus_reads_the_llm_replicas_from_haproxy(host) -> None:
    """The host serves the tiny deployment (converge's LLM play): its two replicas as HAProxy reports them, and
    the rules that watch them loaded and quiet. The LLM tests before this one kill and restart replicas: a replica
    back is up after HAProxy's two good checks, Prometheus reads it at its next scrape, and LLMReplicaDown, pending
    while it was down, goes back to inactive at the next evaluation."""
    query = "http://127.0.0.1:9090/api/v1/query?query=haproxy_backend_active_servers%7Bproxy%3D%22llm_tiny%22%7D"
    want_rules = {"LLMReplicaDown": ("ok", "inactive"), "LLMDeploymentDown": ("ok", "inactive")}
    deadline = time.monotonic() + 30
    while True:
        result = json.loads(http_get(host, query))["data"]["result"]
        seen = [(r["metric"]["instance"], r["metric"]["job"], r["value"][1]) for r in result]
        groups = json.loads(http_get(host, "http://127.0.0.1:9090/api/v1/rules"))["data"]["groups"]
        rules = {r["name"]: (r["health"], r["state"]) for g in groups if g["name"] == "onprem-llm" for r in g["rules"]}
        print(f"active servers {seen}, rules {rules}")
        if (seen == [(host.backend.host, "haproxy", "2")] and rules == want_rules) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert seen == [(host.backend.host, "haproxy", "2")]
    assert rules == want_rules


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
    # The roles that take the password, at -vvv (module arguments, results and diffs all printed).
    done = run_monitoring_play("secrets.yml", "-vvv")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "changed=0" in done.stdout
    assert CANARY not in done.stdout + done.stderr
    # It is in the file Alertmanager reads, and only there.
    assert host.check_output("cat /etc/prometheus/alertmanager-smtp-password") == CANARY
    assert CANARY not in host.check_output(f"cat {ALERTMANAGER_CONFIG}")
    # The health checks' copy: root only, and not in the program's configuration.
    password_file = host.file("/etc/onprem/health-check-smtp-password")
    assert (password_file.user, password_file.mode) == ("root", 0o600)
    assert host.check_output(f"cat {password_file.path}") == CANARY
    assert CANARY not in host.check_output("cat /etc/onprem/health-check.json")


# Each case of bad_input.yml and a part of the message its failure must carry.
BAD_INPUT = {
    "rule-promtool-rejects": "promtool",
    "config-amtool-rejects": "amtool",
    "threshold-not-a-number": "prometheus_alert_fs_for (soon) must be a duration",
    "mail-without-relay": "alertmanager_smtp_smarthost",
    "schedule-systemd-rejects": "Failed to parse calendar specification 'every morning'",
    "check-unknown": "fan_speed",
    "ups-runtime-too-short": "The UPS runs this host for about 120 s at the planned load",
    "ups-step-without-argv": "an argv list (no shell)",
    "llm-gpu-twice": "big: gpu1 already serves deployment tiny-gpu",
    "llm-exceeds-vram": "big: not served: a replica does not fit its GPUs",
    "llm-port-owned": "tiny: its frontend would listen on 9090, which is Prometheus's port",
    "llm-port-held": "2525 (onprem-llm-tiny-1) is held by python3",
}


@pytest.fixture(scope="module")
def bad_input(host, tmp_path_factory) -> dict:
    """One run of bad_input.yml (every case), with the live state before and after it."""
    out = tmp_path_factory.mktemp("bad-input") / "failures.json"
    before = live_state(host)
    cmd = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], str(SCENARIO / "bad_input.yml")]
    done = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        cwd=REPO,
        env={**os.environ, "BAD_INPUT_OUT": str(out)},
    )
    print(done.stdout[-4000:], done.stderr[-2000:])
    assert done.returncode == 0, "the rescues record failures; the play itself must finish"
    return {"failures": json.loads(out.read_text()), "before": before, "after": live_state(host)}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_fails_with_a_clear_error(bad_input: dict, case: str) -> None:
    failures = bad_input["failures"]
    assert case in failures, f"the role accepted the bad input of {case}"
    print(f"{case}: {failures[case][:400]}")
    assert BAD_INPUT[case] in failures[case]


def test_bad_input_changes_nothing_that_runs(bad_input: dict) -> None:
    assert bad_input["after"] == bad_input["before"]
