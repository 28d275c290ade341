"""The UPS shedding program: steps in order, a failing or overrunning step does not stop the next, one shedding
per outage (kept under the run directory), the power-off after the steps, metrics promtool accepts, and the
UPS's state from upsc output (a stand-in upsc printing NUT's format, the values of a recorded Smart-UPS 3000)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from fixtures import tools

from ansible_collections.onprem.gpu_server.plugins.module_utils.ups import shed


def make_config(tmp_path: Path, steps: list[dict], poweroff: list[str] | None = None) -> dict:
    (tmp_path / "textfile").mkdir(exist_ok=True)
    return {
        "ups": "ups@localhost",
        "grace_seconds": 8,
        "steps": steps,
        "poweroff": poweroff or ["sh", "-c", f"echo off >> {tmp_path}/poweroff"],
        "state_dir": str(tmp_path / "state"),
        "run_dir": str(tmp_path / "run"),
        "textfile_dir": str(tmp_path / "textfile"),
    }


def events(tmp_path: Path) -> list[str]:
    return [line.split(" ", 1)[1] for line in (tmp_path / "state/events.log").read_text().splitlines()]


def test_steps_run_in_order_and_a_failure_or_timeout_does_not_stop_the_next(tmp_path: Path) -> None:
    order = tmp_path / "order"
    steps = [
        {"name": "llm", "argv": ["sh", "-c", f"echo llm >> {order}"], "timeout_seconds": 5},
        {"name": "broken", "argv": ["sh", "-c", "echo cannot >&2; exit 3"], "timeout_seconds": 5},
        {"name": "slow", "argv": ["sleep", "5"], "timeout_seconds": 0.3},
        {"name": "missing", "argv": [str(tmp_path / "no-such-program")], "timeout_seconds": 5},
        {"name": "guests", "argv": ["sh", "-c", f"echo guests >> {order}"], "timeout_seconds": 5},
    ]
    runner = shed.Shed(make_config(tmp_path, steps))
    assert runner.shed("test") == 3
    assert order.read_text() == "llm\nguests\n"
    log = events(tmp_path)
    assert log[0] == "shed: start (test, 5 steps)"
    # Each step: its start, then its result, in the configured order.
    assert [line.split(":")[0] for line in log[1:-1]] == [f"step {s['name']}" for s in steps for _ in (1, 2)]
    results = log[2:-1:2]
    assert results[0].startswith("step llm: ok after ")
    assert results[1].startswith("step broken: FAILED after ") and results[1].endswith("(rc=3: cannot)")
    assert results[2].endswith("(rc=None: still running after 0.3 s)")
    assert "FAILED" in results[3] and "(rc=127: " in results[3]
    assert results[4].startswith("step guests: ok after ")
    assert log[-1] == "shed: done, 3 of 5 steps failed"
    metrics = (tmp_path / "textfile/onprem_ups_shed.prom").read_text()
    assert 'onprem_ups_shed_step_ok{step="llm"} 1' in metrics
    assert 'onprem_ups_shed_step_ok{step="slow"} 0' in metrics
    done = subprocess.run(
        [tools.require("promtool"), "check", "metrics"], input=metrics, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_one_shedding_per_outage_then_the_poweroff_and_power_back_rearms(tmp_path: Path) -> None:
    count = tmp_path / "count"
    steps = [{"name": "guests", "argv": ["sh", "-c", f"echo x >> {count}"], "timeout_seconds": 5}]
    config = make_config(tmp_path, steps)
    runner = shed.Shed(config)
    assert runner.shed("on battery") == 0
    assert runner.shutdown() == 0
    assert count.read_text() == "x\n"
    assert (tmp_path / "poweroff").read_text() == "off\n"
    assert events(tmp_path)[-2:] == [
        "shed: already done in this outage (host shutdown)",
        "poweroff: " + " ".join(config["poweroff"]),
    ]
    # Power back: the next outage sheds again; so does a boot (the mark lives in the run directory).
    runner.online()
    assert events(tmp_path)[-1] == "online: power back; what was shed stays stopped until started again"
    assert shed.Shed(config).shutdown() == 0
    assert count.read_text() == "x\nx\n"
    (tmp_path / "run/shed-done").unlink()
    assert shed.Shed(config).shed("after a boot") == 0
    assert count.read_text() == "x\nx\nx\n"


def test_a_shutdown_without_an_earlier_shedding_runs_the_steps_first(tmp_path: Path) -> None:
    order = tmp_path / "order"
    steps = [{"name": "guests", "argv": ["sh", "-c", f"echo guests >> {order}"], "timeout_seconds": 5}]
    config = make_config(tmp_path, steps, ["sh", "-c", f"echo poweroff >> {order}"])
    assert shed.Shed(config).shutdown() == 0
    assert order.read_text() == "guests\npoweroff\n"
    assert events(tmp_path)[0] == "shed: start (host shutdown, 1 steps)"


# NUT's upsc output format, with values a real Smart-UPS 3000 reported (molecule/container/files/nut/README.md).
UPSC = """battery.charge: 100
battery.runtime: 16200
battery.runtime.low: 210
battery.voltage: 54.5
device.model: Smart-UPS 3000
ups.status: OB LB
"""


@pytest.fixture()
def upsc_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "upsc").write_text(f"#!/bin/sh\ncat {tmp_path}/upsc.out\nexit $(cat {tmp_path}/upsc.rc)\n")
    (bin_dir / "upsc").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    return tmp_path


def test_metrics_from_upsc(upsc_on_path: Path) -> None:
    tmp_path = upsc_on_path
    (tmp_path / "upsc.out").write_text(UPSC)
    (tmp_path / "upsc.rc").write_text("0")
    config = make_config(tmp_path, [])
    assert shed.metrics(config) == 0
    text = (tmp_path / "textfile/onprem_ups.prom").read_text()
    assert 'onprem_ups_up{ups="ups@localhost"} 1' in text
    assert 'onprem_ups_status{ups="ups@localhost",flag="on_battery"} 1' in text
    assert 'onprem_ups_status{ups="ups@localhost",flag="low_battery"} 1' in text
    assert 'onprem_ups_status{ups="ups@localhost",flag="online"} 0' in text
    assert 'onprem_ups_battery_runtime_seconds{ups="ups@localhost"} 16200' in text
    assert "load_percent" not in text  # not reported: no sample rather than a made-up one
    done = subprocess.run(
        [tools.require("promtool"), "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # upsd not answering: up 0 and nothing else.
    (tmp_path / "upsc.out").write_text("")
    (tmp_path / "upsc.rc").write_text("1")
    assert shed.metrics(config) == 1
    assert "onprem_ups_status" not in (tmp_path / "textfile/onprem_ups.prom").read_text()


def test_the_program_refuses_an_unknown_action_and_reads_its_configuration(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as refused:
        shed.main(["reboot"])
    assert refused.value.code == 2
    path = tmp_path / "ups-shed.json"
    path.write_text(json.dumps(make_config(tmp_path, [])))
    assert shed.main(["--config", str(path), "online"]) == 0
    assert "online: power back" in capsys.readouterr().out
