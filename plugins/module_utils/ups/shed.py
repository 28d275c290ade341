#!/bin/sh
# Copyright: onprem.gpu_server maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# onprem-ups-shed: ordered load shedding and host shutdown on UPS power, and the UPS's metrics.
#
#     onprem-ups-shed [--config FILE] onbatt     on battery: recorded (the shedding follows the grace time)
#     onprem-ups-shed [--config FILE] shed       the grace ran out: the shed steps in order, once per outage
#     onprem-ups-shed [--config FILE] shutdown   upsmon's SHUTDOWNCMD: the steps if they have not run, then
#                                                the power-off
#     onprem-ups-shed [--config FILE] online     power is back: the next outage sheds again (what was shed
#                                                stays stopped)
#     onprem-ups-shed [--config FILE] metrics    the UPS's state from upsc as node_exporter textfile metrics
#
# NUT's upssched runs it as its CMDSCRIPT, as NUT's user: onbatt, shed and online then run themselves again
# through `sudo -n` (the ups role's sudo rule allows exactly those three). Every action is a line on stdout (the
# journal) and in <state_dir>/events.log, epoch seconds first, so the order can be read back. A failing or
# overrunning step is recorded and the next one runs: on battery, stopping is what matters. That a shedding ran is
# kept under /run, so a host that powered off sheds again in the first outage after its boot.
#
# The ups role copies this file, unchanged, to /usr/local/sbin/onprem-ups-shed: the host has neither the
# collection nor any package beyond python3. The shell reads only the next line and hands the file to
# /usr/bin/python3; to Python that line is a string expression and does nothing.
"exec" "/usr/bin/python3" "-I" "$0" "$@"  # fmt: skip

from __future__ import annotations

import argparse
import fcntl
import json
import os
import subprocess
import sys
import time
from typing import Any

CONFIG = "/etc/onprem/ups-shed.json"
# What upssched (NUT's user) may ask for; the sudo rule allows these and nothing else.
AS_ROOT = ("onbatt", "shed", "online")
# ups.status flags an operator alerts on (NUT's names) and the metric's flag label.
STATUS_FLAGS = {
    "OL": "online",
    "OB": "on_battery",
    "LB": "low_battery",
    "RB": "replace_battery",
    "OVER": "overload",
    "FSD": "forced_shutdown",
    "CAL": "calibrating",
    "BYPASS": "bypass",
}
NUMBERS = {
    "battery.charge": ("battery_charge_percent", "The battery's charge (percent)."),
    "battery.runtime": ("battery_runtime_seconds", "The UPS's runtime estimate at the present load."),
    "battery.runtime.low": ("battery_runtime_low_seconds", "The runtime below which the UPS counts as low battery."),
    "ups.load": ("load_percent", "The load as a share of the UPS's rating (percent)."),
    "input.voltage": ("input_voltage_volts", "The input (mains) voltage."),
    "battery.voltage": ("battery_voltage_volts", "The battery's voltage."),
}


def write_textfile(directory: str | None, name: str, lines: list[str]) -> None:
    """Replace a textfile collector file atomically; nothing when the directory does not exist."""
    if not directory or not os.path.isdir(directory):
        return
    path = os.path.join(directory, name)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


class Shed:
    """The shed steps and the power-off, serialised by a lock (a low battery can arrive during a shedding)."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.state_dir = config["state_dir"]
        os.makedirs(self.state_dir, mode=0o755, exist_ok=True)
        os.makedirs(config["run_dir"], mode=0o755, exist_ok=True)
        self.done_file = os.path.join(config["run_dir"], "shed-done")

    def log(self, message: str) -> None:
        sys.stdout.write(message + "\n")
        sys.stdout.flush()
        with open(os.path.join(self.state_dir, "events.log"), "a", encoding="utf-8") as handle:
            handle.write(f"{time.time():.3f} {message}\n")

    def locked(self) -> Any:
        # Held until the caller's with block ends.
        handle = open(os.path.join(self.state_dir, "lock"), "w", encoding="utf-8")  # noqa: SIM115  # pylint: disable=consider-using-with
        fcntl.flock(handle, fcntl.LOCK_EX)
        return handle

    def run_step(self, step: dict[str, Any]) -> tuple[bool, float]:
        start = time.monotonic()
        self.log(f"step {step['name']}: start {' '.join(step['argv'])}")
        try:
            proc = subprocess.run(
                step["argv"], capture_output=True, text=True, timeout=float(step["timeout_seconds"]), check=False
            )
            rc: int | None = proc.returncode
            detail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] if proc.returncode else []
        except subprocess.TimeoutExpired:
            rc, detail = None, [f"still running after {step['timeout_seconds']} s"]
        except OSError as err:
            rc, detail = 127, [str(err)]
        seconds = time.monotonic() - start
        self.log(
            f"step {step['name']}: {'ok' if rc == 0 else 'FAILED'} after {seconds:.1f} s"
            + (f" (rc={rc}: {detail[0]})" if detail else "")
        )
        return rc == 0, seconds

    def shed(self, reason: str) -> int:
        """The steps in order unless they ran in this outage; the number that failed."""
        if os.path.exists(self.done_file):
            self.log(f"shed: already done in this outage ({reason})")
            return 0
        steps = self.config.get("steps", [])
        self.log(f"shed: start ({reason}, {len(steps)} steps)")
        results = [(step["name"], *self.run_step(step)) for step in steps]
        with open(self.done_file, "w", encoding="utf-8") as handle:
            handle.write(f"{time.time():.0f}\n")
        failed = sum(1 for result in results if not result[1])
        self.log(f"shed: done, {failed} of {len(steps)} steps failed")
        lines = [
            "# HELP onprem_ups_shed_last_timestamp_seconds When the UPS load shedding last ran.",
            "# TYPE onprem_ups_shed_last_timestamp_seconds gauge",
            f"onprem_ups_shed_last_timestamp_seconds {time.time():.0f}",
            "# HELP onprem_ups_shed_step_ok Whether a shed step succeeded in its last run (1) or not (0).",
            "# TYPE onprem_ups_shed_step_ok gauge",
        ]
        lines += [f'onprem_ups_shed_step_ok{{step="{r[0]}"}} {int(r[1])}' for r in results]
        lines += [
            "# HELP onprem_ups_shed_step_seconds How long a shed step took in its last run.",
            "# TYPE onprem_ups_shed_step_seconds gauge",
        ]
        lines += [f'onprem_ups_shed_step_seconds{{step="{r[0]}"}} {r[2]:.1f}' for r in results]
        write_textfile(self.config.get("textfile_dir"), "onprem_ups_shed.prom", lines)
        return failed

    def shutdown(self) -> int:
        self.shed("host shutdown")
        argv = self.config["poweroff"]
        self.log(f"poweroff: {' '.join(argv)}")
        return subprocess.run(argv, check=False).returncode

    def online(self) -> int:
        was_shed = os.path.exists(self.done_file)
        if was_shed:
            os.unlink(self.done_file)
        self.log("online: power back" + ("; what was shed stays stopped until started again" if was_shed else ""))
        return 0


def metrics(config: dict[str, Any]) -> int:
    """upsc's view of the UPS as textfile metrics; 1 when upsd gives no status."""
    ups = config["ups"]
    proc = subprocess.run(["upsc", ups], capture_output=True, text=True, timeout=10, check=False)
    values = {}
    for line in proc.stdout.splitlines():
        key, sep, value = line.partition(": ")
        if sep:
            values[key.strip()] = value.strip()
    up = int(proc.returncode == 0 and "ups.status" in values)
    lines = [
        "# HELP onprem_ups_up Whether upsd answered for the UPS with a status (1) or not (0).",
        "# TYPE onprem_ups_up gauge",
        f'onprem_ups_up{{ups="{ups}"}} {up}',
    ]
    if up:
        flags = set(values["ups.status"].split())
        lines += ["# HELP onprem_ups_status A flag of ups.status (1 set, 0 not).", "# TYPE onprem_ups_status gauge"]
        lines += [
            f'onprem_ups_status{{ups="{ups}",flag="{name}"}} {int(flag in flags)}'
            for flag, name in STATUS_FLAGS.items()
        ]
        for key, (name, text) in NUMBERS.items():
            try:
                number = float(values[key])
            except (KeyError, ValueError):
                continue
            lines += [
                f"# HELP onprem_ups_{name} {text}",
                f"# TYPE onprem_ups_{name} gauge",
                f'onprem_ups_{name}{{ups="{ups}"}} {number:g}',
            ]
    write_textfile(config.get("textfile_dir"), "onprem_ups.prom", lines)
    return 0 if up else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="onprem-ups-shed", description="UPS load shedding and shutdown")
    parser.add_argument("--config", default=CONFIG)
    parser.add_argument("action", choices=["onbatt", "shed", "shutdown", "online", "metrics"])
    args = parser.parse_args(argv)
    if args.action in AS_ROOT and os.geteuid() != 0 and args.config == CONFIG:
        # upssched runs as NUT's user; the sudo rule allows these actions with the default configuration only.
        os.execv("/usr/bin/sudo", ["sudo", "-n", os.path.abspath(sys.argv[0]), args.action])
    with open(args.config, encoding="utf-8") as handle:
        config = json.load(handle)
    if args.action == "metrics":
        return metrics(config)
    shed = Shed(config)
    with shed.locked():
        if args.action == "onbatt":
            shed.log(f"on battery: shedding in {config['grace_seconds']} s unless power comes back")
            return 0
        if args.action == "shed":
            return 1 if shed.shed("on battery longer than the grace time") else 0
        if args.action == "shutdown":
            return shed.shutdown()
        return shed.online()


if __name__ == "__main__":
    raise SystemExit(main())
