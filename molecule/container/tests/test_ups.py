"""The UPS role with NUT's dummy-ups driver walking power cuts: upsd, upsmon and upssched are NUT's own
(Debian 2.8.0), the sequences start from a recorded APC Smart-UPS 3000 (files/nut/README.md says what is
recorded and what is written for the test). A blip shorter than the grace stops nothing; a real cut sheds the
services in order after the grace, then low battery (the runtime estimate below the time the shutdown needs)
makes upsmon run the host's shutdown, whose power-off is captured, not executed.
"""

from __future__ import annotations

import pathlib
import re
import time

import pytest
import yaml
from mailspool import http_get

REPO = pathlib.Path(__file__).resolve().parents[3]
VARS = yaml.safe_load((REPO / "molecule/container/vars/ups.yml").read_text())
GRACE = VARS["ups_on_battery_grace_seconds"]
# The time the whole shutdown needs: NUT's low-battery threshold on the runtime estimate.
NEEDED = sum(step["timeout_seconds"] for step in VARS["ups_shed_steps"]) + VARS["ups_host_shutdown_seconds"]
RECORDED = (REPO / "molecule/container/files/nut/smart-ups-3000.online.seq").read_text()
EVENTS = "/var/lib/onprem/ups/events.log"
POWEROFF = "/var/lib/onprem-test-poweroff.log"
SERVICES = ["onprem-test-llm.service", "onprem-test-guest.service"]


def state(seconds: int, charge: int, runtime: int, status: str) -> str:
    """One state of a sequence: the battery figures first, as a driver publishes them, then the status."""
    return f"battery.charge: {charge}\nbattery.runtime: {runtime}\nups.status: {status}\nTIMER {seconds}\n"


def walk(host, *states: str) -> float:
    """Start dummy-ups on the recorded line-power state followed by the given ones; the time it started."""
    online = RECORDED.rsplit("TIMER", 1)[0] + "TIMER 2\n"
    sequence = online + "".join(states) + "TIMER 86400\n"
    host.run("rm -f %s %s /run/onprem-ups/shed-done", EVENTS, POWEROFF)
    write = host.run(
        "printf %%s %s > /etc/nut/ups.seq.new && chgrp nut /etc/nut/ups.seq.new && "
        "mv /etc/nut/ups.seq.new /etc/nut/ups.seq",
        sequence,
    )
    assert write.rc == 0, write.stderr
    started = time.time()
    # upsd forgets a forced shutdown (FSD) only when it restarts; upsmon exits after running the shutdown.
    assert host.run("systemctl restart nut-driver@ups.service nut-server.service nut-monitor.service").rc == 0
    return started


def events(host) -> list[tuple[float, str]]:
    found = host.run("cat %s", EVENTS)
    return [(float(line.split(" ", 1)[0]), line.split(" ", 1)[1]) for line in found.stdout.splitlines() if line]


def wait_for(host, pattern: str, timeout: float) -> list[tuple[float, str]]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        seen = events(host)
        if any(re.search(pattern, text) for _, text in seen):
            return seen
        time.sleep(0.5)
    journal = host.run("journalctl -u nut-monitor -u nut-driver@ups --since -2min -o cat --no-pager").stdout
    pytest.fail(f"no event matching {pattern!r} within {timeout} s: {events(host)}\n{journal}")


@pytest.fixture()
def running_services(host):
    assert host.run("systemctl start " + " ".join(SERVICES)).rc == 0
    yield
    walk(host)
    host.run("systemctl start " + " ".join(SERVICES))


def test_upsd_serves_the_recorded_ups_with_the_low_battery_threshold_of_the_shutdown(host) -> None:
    values = dict(line.split(": ", 1) for line in host.check_output("upsc ups@localhost 2>/dev/null").splitlines())
    assert values["device.model"] == "Smart-UPS 3000"
    assert values["ups.status"] == "OL"
    assert values["driver.flag.ignorelb"] == "enabled"
    # NUT's override: low battery once the runtime estimate falls below the time the whole shutdown needs.
    assert int(values["battery.runtime.low"]) == NEEDED
    # The monitor's password reaches NUT's files only, readable by root and NUT's group.
    for name in ("upsd.users", "upsmon.conf"):
        conf = host.file(f"/etc/nut/{name}")
        assert (conf.user, conf.group, conf.mode) == ("root", "nut", 0o640)
        assert VARS["ups_monitor_password"] in conf.content_string
    assert host.run("sudo -u nut sudo -n -l /usr/local/sbin/onprem-ups-shed shed").rc == 0
    assert host.run("sudo -u nut sudo -n -l /usr/local/sbin/onprem-ups-shed shutdown").rc != 0


def test_ups_metrics_reach_the_exporter(host) -> None:
    host.run("systemctl start onprem-ups-metrics.service")
    text = http_get(host, "http://127.0.0.1:9100/metrics")
    assert 'onprem_ups_up{ups="ups@localhost"} 1' in text
    assert 'onprem_ups_status{flag="online",ups="ups@localhost"} 1' in text
    assert 'onprem_ups_battery_runtime_seconds{ups="ups@localhost"} 16200' in text
    assert f'onprem_ups_battery_runtime_low_seconds{{ups="ups@localhost"}} {NEEDED}' in text


def test_a_blip_shorter_than_the_grace_stops_nothing(host, running_services) -> None:
    walk(host, state(3, 97, 900, "OB"), state(5, 97, 900, "OL"))
    seen = wait_for(host, r"^online: power back", timeout=30)
    went = next(t for t, text in seen if text.startswith("on battery"))
    back = next(t for t, text in seen if text.startswith("online"))
    print(f"blip: on battery for {back - went:.1f} s as upsmon saw it, grace {GRACE} s")
    assert back - went < GRACE
    # The grace would have run out by now had the timer not been cancelled.
    time.sleep(max(0.0, went + GRACE + 3 - time.time()))
    assert not [text for _, text in events(host) if text.startswith(("shed", "step", "poweroff"))]
    for service in SERVICES:
        assert host.service(service).is_running
    assert not host.file(POWEROFF).exists


def test_a_power_cut_sheds_in_order_after_the_grace_then_low_battery_shuts_the_host_down(
    host, running_services
) -> None:
    # On battery with a long runtime left, then (after the grace) the runtime estimate drops below NEEDED.
    started = walk(host, state(GRACE + 6, 90, 800, "OB"), state(60, 20, NEEDED - 30, "OB"))
    seen = wait_for(host, r"^poweroff: ", timeout=GRACE + 45)
    for _, text in seen:
        print(f"  {text}")
    order = [
        r"^on battery",
        r"^shed: start",
        r"^step llm-services: ok",
        r"^step guests: ok",
        r"^shed: done, 0 of 2 steps failed",
        r"^shed: already done in this outage \(host shutdown\)",
        r"^poweroff: /usr/local/sbin/onprem-test-poweroff",
    ]
    at = [next(t for t, text in seen if re.search(pattern, text)) for pattern in order]
    assert at == sorted(at), f"out of order: {list(zip(order, at, strict=True))}"
    went = at[0]
    print(
        f"shed {at[1] - went:.1f} s after going on battery (grace {GRACE} s), "
        f"power-off {at[-1] - went:.1f} s after; {at[0] - started:.1f} s from the sequence's start"
    )
    assert GRACE - 1 <= at[1] - went <= GRACE + 3
    for service in SERVICES:
        assert not host.service(service).is_running
    # upsmon ran the host's shutdown as root, and the power-off it would have done was captured.
    deadline = time.time() + 10
    while not host.file(POWEROFF).exists and time.time() < deadline:
        time.sleep(0.5)
    assert "poweroff captured: -h now" in host.file(POWEROFF).content_string
    journal = host.check_output(f"journalctl -u nut-monitor --since @{int(started)} -o cat --no-pager")
    assert "battery is low" in journal
    assert "Executing automatic power-fail shutdown" in journal
