#!/bin/sh
# Copyright: onprem.gpu_server maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# onprem-health-check: the maintenance schedule's checks, run by systemd timers.
#
#     onprem-health-check [--config FILE] run SCHEDULE   the checks of one schedule (daily, weekly, ...)
#     onprem-health-check [--config FILE] check-config   validate the configuration, run nothing
#
# Each run writes its verdicts as node_exporter textfile metrics (so a failed check alerts through Prometheus),
# prints a report, mails it as a digest when a relay is configured, and exits 1 when a check failed (0 otherwise,
# 2 on a configuration error).
#
# The health_checks role copies this file and the collection's parsers it imports (md, ZFS, nvidia-smi), unchanged
# and in their package layout, under /usr/local/lib/onprem-health-check, and links /usr/local/sbin/onprem-health-check
# to this file: the host has neither the collection nor any package beyond python3, and the parsers are the ones
# the modules and their tests use. Run as a program, it puts that package root on sys.path before the parsers are
# imported (inside the checks that need them).
#
# The shell reads only the next line and hands the file to /usr/bin/python3 (ansible-test admits /bin/sh as the
# interpreter line of a file outside plugins/modules); to Python that line is a string expression.
"exec" "/usr/bin/python3" "-I" "$0" "$@"  # fmt: skip

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

DEFAULT_CONFIG = "/etc/onprem/health-check.json"
METRIC_PREFIX = "onprem_health_check"
OK, WARNING, FAILED, SKIPPED = "ok", "warning", "failed", "skipped"
# When a schedule mails its report: after every run, after a warning or failure, or not at all.
DIGESTS = ("always", "problems", "never")
# Kernel messages that mean hardware trouble, whatever their count.
KERNEL_PATTERNS = {
    "I/O error": re.compile(r"I/O error|critical medium error|Buffer I/O error", re.IGNORECASE),
    "NVIDIA Xid": re.compile(r"NVRM: Xid"),
    "machine check": re.compile(r"Machine check|mce: \[Hardware Error\]|Hardware Error", re.IGNORECASE),
    "EDAC": re.compile(r"EDAC .*(CE|UE|error)", re.IGNORECASE),
    "NVMe timeout/reset": re.compile(r"nvme\d+.*(timeout|reset)", re.IGNORECASE),
    "ATA failed command": re.compile(r"ata\d+(\.\d+)?: (failed command|exception)", re.IGNORECASE),
}
GPU_FIELDS = (
    "index",
    "uuid",
    "temperature.gpu",
    "ecc.errors.uncorrected.volatile.total",
    "retired_pages.pending",
    "remapped_rows.pending",
    "remapped_rows.failure",
)


class ConfigError(Exception):
    """The configuration cannot be used."""


@dataclass
class Result:
    check: str
    state: str
    summary: str
    details: list[str] = field(default_factory=list)
    # Further textfiles a check writes (name -> exposition text), e.g. the pools' error counts and scrub times.
    files: dict[str, str] = field(default_factory=dict)


Runner = Callable[[list[str]], "tuple[int, str]"]


def run_command(argv: list[str]) -> tuple[int, str]:
    """rc and stdout of a command (stderr folded in when stdout is empty); 127 when it is not installed."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    except FileNotFoundError:
        return 127, f"{argv[0]}: not installed"
    except subprocess.TimeoutExpired:
        return 124, f"{' '.join(argv)}: timed out after 600 s"
    return done.returncode, done.stdout if done.stdout.strip() else done.stderr


@dataclass
class Context:
    config: dict[str, Any]
    # How far back a run looks (log_scan): the interval of the schedule being run.
    since_seconds: int = 86400
    run: Runner = run_command
    proc: str = "/proc"
    which: Callable[[str], str | None] = shutil.which


# ----------------------------------------------------------------------------- checks


def check_disk_space(ctx: Context) -> Result:
    """Every mounted filesystem of a real type below the warning/failure percentages (df's Use%)."""
    cfg = ctx.config["disk_space"]
    excluded = set(cfg["fstypes_excluded"])
    seen: set[str] = set()
    verdicts: list[tuple[str, str | None]] = []
    with open(os.path.join(ctx.proc, "self/mountinfo"), encoding="utf-8") as handle:
        for line in handle:
            left, right = line.split(" - ", 1)
            mountpoint = left.split()[4].replace("\\040", " ")
            fstype = right.split()[0]
            if fstype in excluded or mountpoint in seen:
                continue
            seen.add(mountpoint)
            try:
                st = os.statvfs(mountpoint)
            except OSError:
                continue
            used = st.f_blocks - st.f_bfree
            total = used + st.f_bavail
            if st.f_blocks == 0 or total == 0:
                continue
            percent = 100.0 * used / total
            state = FAILED if percent >= cfg["failed_percent"] else WARNING if percent >= cfg["warning_percent"] else OK
            verdicts.append((state, None if state == OK else f"{mountpoint} ({fstype}) {percent:.0f}% used"))
    return _verdict("disk_space", verdicts, f"{len(verdicts)} filesystems below {cfg['warning_percent']}%")


def check_md_arrays(ctx: Context) -> Result:
    """md arrays not degraded; a resync or recovery in progress is a warning."""
    from ansible_collections.onprem.gpu_server.plugins.module_utils.mdadm.parsers import parse_mdstat

    try:
        with open(os.path.join(ctx.proc, "mdstat"), encoding="utf-8") as handle:
            arrays = parse_mdstat(handle.read())["arrays"]
    except FileNotFoundError:
        return Result("md_arrays", SKIPPED, "no md driver loaded")
    if not arrays:
        return Result("md_arrays", OK, "no md arrays")
    verdicts: list[tuple[str, str | None]] = []
    for name, info in sorted(arrays.items()):
        faulty = [m["name"] for m in info.get("members", []) if m.get("faulty")]
        if info.get("degraded") or faulty or info.get("state") != "active":
            state = f"{info.get('level')} {info.get('state')}: degraded, map {info.get('map')}, faulty {faulty}"
            verdicts.append((FAILED, f"{name} {state}"))
        elif info.get("sync") and info["sync"]["action"] != "check":
            # A rebuild or resync runs without redundancy to spare; a scheduled check (checkarray) does not.
            verdicts.append((WARNING, f"{name}: {info['sync']['action']} at {info['sync']['progress']}"))
        else:
            verdicts.append((OK, None))
    return _verdict("md_arrays", verdicts, f"{len(arrays)} arrays clean")


def check_zfs_pools(ctx: Context) -> Result:
    """Every pool ONLINE with no known data errors; writes onprem_zfs.prom (errors by kind, last scrub)."""
    from ansible_collections.onprem.gpu_server.plugins.module_utils.zfs.parsers import parse_zpool_status

    if ctx.which("zpool") is None:
        return Result("zfs_pools", SKIPPED, "zpool not installed")
    rc, out = ctx.run(["zpool", "status", "-P", "-p"])
    if "no pools available" in out:
        return Result("zfs_pools", OK, "no pools", files={ZFS_METRICS_FILE: zfs_metrics({})})
    if rc != 0:
        return Result("zfs_pools", FAILED, f"zpool status failed (rc {rc})", out.splitlines()[-5:])
    pools = parse_zpool_status(out)
    verdicts: list[tuple[str, str | None]] = []
    for name, pool in sorted(pools.items()):
        errors = (pool.get("errors") or "").strip()
        bad = pool.get("state") != "ONLINE" or (errors and errors != "No known data errors")
        detail = f"{name} {pool.get('state')}: {pool.get('status') or ''} errors: {errors}".strip()
        verdicts.append((FAILED, detail) if bad else (OK, None))
    return _verdict("zfs_pools", verdicts, f"{len(pools)} pools online", files={ZFS_METRICS_FILE: zfs_metrics(pools)})


ZFS_METRICS_FILE = "onprem_zfs.prom"
_SCRUB_DONE = re.compile(r"^scrub repaired .* on (?P<when>\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})$")
_DATA_ERRORS = re.compile(r"^(?P<count>\d+) data errors")


def last_scrub(scan: str | None) -> float | None:
    """When the last scrub finished (zpool prints local time), from the scan line; None for none or running."""
    match = _SCRUB_DONE.match((scan or "").strip())
    return time.mktime(time.strptime(" ".join(match.group("when").split()), "%a %b %d %H:%M:%S %Y")) if match else None


def zfs_metrics(pools: dict[str, Any]) -> str:
    """onprem_zfs_pool_errors{pool,type} (the disks' READ/WRITE/CKSUM summed, and data errors) and
    onprem_zfs_pool_last_scrub_timestamp_seconds{pool} (pools with a finished scrub)."""
    lines = [
        "# HELP onprem_zfs_pool_errors Errors zpool status counts since the last zpool clear, by kind.",
        "# TYPE onprem_zfs_pool_errors gauge",
    ]
    scrubs = []
    for name, pool in sorted(pools.items()):
        disks = [d for vdev in pool["vdevs"] for d in vdev["disks"]]
        for kind in ("read", "write", "cksum"):
            total = sum((d.get("errors") or {}).get(kind) or 0 for d in disks)
            lines.append(f'onprem_zfs_pool_errors{{pool="{name}",type="{kind}"}} {total}')
        data = _DATA_ERRORS.match((pool.get("errors") or "").strip())
        lines.append(f'onprem_zfs_pool_errors{{pool="{name}",type="data"}} {int(data.group("count")) if data else 0}')
        when = last_scrub(pool.get("scan"))
        if when is not None:
            scrubs.append(f'onprem_zfs_pool_last_scrub_timestamp_seconds{{pool="{name}"}} {when:.0f}')
    if scrubs:
        lines += [
            "# HELP onprem_zfs_pool_last_scrub_timestamp_seconds When the pool's last scrub finished (Unix time).",
            "# TYPE onprem_zfs_pool_last_scrub_timestamp_seconds gauge",
            *scrubs,
        ]
    return "\n".join(lines) + "\n"


def _smart_devices(ctx: Context) -> list[dict[str, str]] | Result:
    if ctx.which("smartctl") is None:
        return Result("smart", SKIPPED, "smartctl not installed")
    rc, out = ctx.run(["smartctl", "--scan-open", "--json"])
    try:
        return [{"name": d["name"], "type": d.get("type", "auto")} for d in json.loads(out).get("devices", [])]
    except (ValueError, KeyError, TypeError):
        return Result("smart", FAILED, f"smartctl --scan-open gave no JSON (rc {rc})", out.splitlines()[-3:])


def check_smart_health(ctx: Context) -> Result:
    """SMART overall health and the last self-test of every device smartctl finds."""
    devices = _smart_devices(ctx)
    if isinstance(devices, Result):
        return Result("smart_health", devices.state, devices.summary, devices.details)
    if not devices:
        return Result("smart_health", OK, "no SMART devices")
    verdicts: list[tuple[str, str | None]] = []
    for dev in devices:
        out = ctx.run(["smartctl", "--json", "-H", "-l", "selftest", "-d", dev["type"], dev["name"]])[1]
        try:
            data = json.loads(out)
        except ValueError:
            verdicts.append((WARNING, f"{dev['name']}: no JSON from smartctl"))
            continue
        passed = data.get("smart_status", {}).get("passed")
        last = (data.get("ata_smart_self_test_log", {}).get("standard", {}).get("table") or [{}])[0]
        last_nvme = (data.get("nvme_self_test_log", {}).get("table") or [{}])[0]
        test_passed = (last.get("status") or {}).get(
            "passed", (last_nvme.get("self_test_result") or {}).get("value", 0) == 0
        )
        health = (
            f"SMART health {'PASSED' if passed else 'FAILED'}, last self-test {'passed' if test_passed else 'failed'}"
        )
        if passed is False or test_passed is False:
            verdicts.append((FAILED, f"{dev['name']}: {health}"))
        else:
            verdicts.append((OK, None) if passed else (WARNING, f"{dev['name']}: no SMART health status"))
    return _verdict("smart_health", verdicts, f"{len(devices)} devices healthy")


def _check_smart_selftest(ctx: Context, kind: str) -> Result:
    name = f"smart_selftest_{kind}"
    devices = _smart_devices(ctx)
    if isinstance(devices, Result):
        return Result(name, devices.state, devices.summary, devices.details)
    if not devices:
        return Result(name, OK, "no SMART devices")
    verdicts: list[tuple[str, str | None]] = []
    for dev in devices:
        rc, out = ctx.run(["smartctl", "-t", kind, "-d", dev["type"], dev["name"]])
        # Bit 2 of smartctl's status: a command the device refused (a test already running, no self-test support).
        refused = rc & 0x06 and (out.strip().splitlines() or ["no answer"])[-1]
        verdicts.append((WARNING, f"{dev['name']}: refused: {refused}") if refused else (OK, None))
    return _verdict(name, verdicts, f"{kind} self-test started on {len(devices)} devices (results in smart_health)")


def check_smart_selftest_short(ctx: Context) -> Result:
    """Start a short SMART self-test on every device (its result is read by smart_health)."""
    return _check_smart_selftest(ctx, "short")


def check_smart_selftest_long(ctx: Context) -> Result:
    """Start an extended SMART self-test on every device (its result is read by smart_health)."""
    return _check_smart_selftest(ctx, "long")


def check_gpu_errors(ctx: Context) -> Result:
    """Uncorrectable ECC errors, pages/rows waiting for retirement or remapping, temperature, per GPU."""
    from ansible_collections.onprem.gpu_server.plugins.module_utils.gpu.nvsmi import integer, parse_query_gpu

    if ctx.which("nvidia-smi") is None:
        return Result("gpu_errors", SKIPPED, "nvidia-smi not installed")
    rc, out = ctx.run(["nvidia-smi", f"--query-gpu={','.join(GPU_FIELDS)}", "--format=csv,nounits"])
    if rc != 0:
        return Result("gpu_errors", FAILED, f"nvidia-smi failed (rc {rc})", out.splitlines()[-3:])
    rows = parse_query_gpu(out)
    verdicts: list[tuple[str, str | None]] = []
    for row in rows:
        gpu = f"GPU {row.get('index')} {row.get('uuid')}"
        uncorrected = integer(row.get("ecc.errors.uncorrected.volatile.total")) or 0
        pending = [
            f
            for f in ("retired_pages.pending", "remapped_rows.pending", "remapped_rows.failure")
            if (row.get(f) or "").lower() == "yes"
        ]
        temperature = integer(row.get("temperature.gpu"))
        if uncorrected or pending:
            verdicts.append(
                (FAILED, f"{gpu}: {uncorrected} uncorrectable ECC errors since boot; pending: {pending or 'none'}")
            )
        elif temperature is not None and temperature >= ctx.config["gpu_errors"]["temperature_warning_celsius"]:
            verdicts.append((WARNING, f"{gpu}: {temperature} °C"))
        else:
            verdicts.append((OK, None))
    return _verdict("gpu_errors", verdicts, f"{len(rows)} GPUs without errors")


def check_log_scan(ctx: Context) -> Result:
    """Kernel messages of hardware trouble (failure) and the count of error-level journal entries (warning)."""
    since = f"-{ctx.since_seconds}s"
    kernel = ctx.run(["journalctl", "-k", "-p", "warning", "--since", since, "-o", "cat", "-q", "--no-pager"])[1]
    hits = {
        name: [line for line in kernel.splitlines() if pattern.search(line)]
        for name, pattern in KERNEL_PATTERNS.items()
    }
    details = [f"{name}: {len(lines)}, e.g. {lines[-1][:160]}" for name, lines in hits.items() if lines]
    rc, errors = ctx.run(["journalctl", "-p", "err", "--since", since, "-o", "cat", "-q", "--no-pager"])
    count = len(errors.splitlines()) if rc == 0 else 0
    limit = ctx.config["log_scan"]["errors_warning"]
    if details:
        state = FAILED
    elif count > limit:
        state = WARNING
        details.append(f"{count} error-level journal entries (more than {limit})")
    else:
        state = OK
    hours = ctx.since_seconds / 3600
    return Result(
        "log_scan", state, "; ".join(details) or f"{count} error-level journal entries in {hours:g} h", details
    )


CHECKS: dict[str, Callable[[Context], Result]] = {
    "disk_space": check_disk_space,
    "md_arrays": check_md_arrays,
    "zfs_pools": check_zfs_pools,
    "smart_health": check_smart_health,
    "smart_selftest_short": check_smart_selftest_short,
    "smart_selftest_long": check_smart_selftest_long,
    "gpu_errors": check_gpu_errors,
    "log_scan": check_log_scan,
}


def _verdict(check: str, verdicts: list[tuple[str, str | None]], all_ok: str, **extra: Any) -> Result:
    """One Result from per-item (state, detail) pairs: the worst state; the details, or all_ok when none."""
    details = [detail for _state, detail in verdicts if detail]
    return Result(check, _worst([state for state, _detail in verdicts]), "; ".join(details) or all_ok, details, **extra)


def _worst(states: list[str]) -> str:
    for state in (FAILED, WARNING, OK):
        if state in states:
            return state
    return OK


# ----------------------------------------------------------------------------- configuration


def validate_config(config: Any) -> dict[str, Any]:
    """The configuration, or ConfigError with what is wrong."""
    if not isinstance(config, dict):
        raise ConfigError("expected a JSON object")
    for key in ("textfile_dir", "schedules", "disk_space", "gpu_errors", "log_scan", "mail"):
        if key not in config:
            raise ConfigError(f"missing key {key!r}")
    if not isinstance(config["textfile_dir"], str) or not config["textfile_dir"].startswith("/"):
        raise ConfigError("textfile_dir: expected an absolute path")
    schedules = config["schedules"]
    if not isinstance(schedules, dict) or not schedules:
        raise ConfigError("schedules: expected a mapping of schedule names")
    for name, schedule in schedules.items():
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            raise ConfigError(f"schedules: {name!r} is not a name of lower-case letters, digits and _")
        if (
            not isinstance(schedule, dict)
            or not isinstance(schedule.get("interval_seconds"), int)
            or schedule["interval_seconds"] <= 0
        ):
            raise ConfigError(f"schedules.{name}.interval_seconds: expected a positive integer")
        if schedule.get("digest", "always") not in DIGESTS:
            raise ConfigError(f"schedules.{name}.digest: expected one of {', '.join(DIGESTS)}")
        unknown = [c for c in schedule.get("checks", []) if c not in CHECKS]
        if unknown or not schedule.get("checks"):
            raise ConfigError(f"schedules.{name}.checks: {unknown or 'empty'}; known checks: {', '.join(CHECKS)}")
    disk = config["disk_space"]
    for key in ("warning_percent", "failed_percent"):
        if not isinstance(disk.get(key), (int, float)) or isinstance(disk.get(key), bool) or not 0 < disk[key] <= 100:
            raise ConfigError(f"disk_space.{key}: expected a number in (0, 100]")
    if disk["warning_percent"] > disk["failed_percent"]:
        raise ConfigError("disk_space: warning_percent is above failed_percent")
    if not isinstance(disk.get("fstypes_excluded"), list):
        raise ConfigError("disk_space.fstypes_excluded: expected a list")
    if not isinstance(config["gpu_errors"].get("temperature_warning_celsius"), int):
        raise ConfigError("gpu_errors.temperature_warning_celsius: expected an integer")
    if not isinstance(config["log_scan"].get("errors_warning"), int):
        raise ConfigError("log_scan.errors_warning: expected an integer")
    mail = config["mail"]
    if mail.get("to"):
        if not mail.get("smarthost") or not re.fullmatch(r"\S+:\d+", mail["smarthost"]):
            raise ConfigError("mail.smarthost: expected host:port when mail.to is set")
        if mail.get("digest") not in DIGESTS:
            raise ConfigError(f"mail.digest: expected one of {', '.join(DIGESTS)}")
    return config


def load_config(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            return validate_config(json.load(handle))
    except (OSError, ValueError) as err:
        raise ConfigError(f"{path}: {err}") from err


# ----------------------------------------------------------------------------- one run


def run_schedule(ctx: Context, schedule: str) -> list[Result]:
    """The schedule's checks, each isolated: a check that raises is a failed check, the others still run."""
    results = []
    for name in ctx.config["schedules"][schedule]["checks"]:
        try:
            result = CHECKS[name](ctx)
        except Exception as err:
            result = Result(name, FAILED, f"the check itself failed: {type(err).__name__}: {err}")
        results.append(result)
    return results


def render_metrics(
    schedule: str, results: list[Result], started: float, duration: float, interval: int, digest_sent: bool | None
) -> str:
    """Text exposition for node_exporter's textfile collector."""
    lines: list[str] = []

    def family(name: str, help_text: str, samples: list[tuple[dict[str, str], float]]) -> None:
        lines.append(f"# HELP {METRIC_PREFIX}_{name} {help_text}")
        lines.append(f"# TYPE {METRIC_PREFIX}_{name} gauge")
        for labels, value in samples:
            inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
            text = str(value) if isinstance(value, int) else f"{value:.3f}"
            lines.append(f"{METRIC_PREFIX}_{name}{{{inner}}} {text}")

    per_check = [({"schedule": schedule, "check": r.check}, r) for r in results]
    family(
        "ok",
        "1 when the check passed (or does not apply here), 0 when it failed.",
        [(labels, int(r.state != FAILED)) for labels, r in per_check],
    )
    family(
        "warning",
        "1 when the check passed with a warning.",
        [(labels, int(r.state == WARNING)) for labels, r in per_check],
    )
    family(
        "skipped",
        "1 when the check does not apply to this host (its tool is not installed).",
        [(labels, int(r.state == SKIPPED)) for labels, r in per_check],
    )
    family(
        "last_run_timestamp_seconds",
        "When the check last ran (Unix time).",
        [(labels, started) for labels, _result in per_check],
    )
    family(
        "interval_seconds",
        "How often the check's schedule runs.",
        [(labels, interval) for labels, _result in per_check],
    )
    family("duration_seconds", "How long the schedule's run took.", [({"schedule": schedule}, duration)])
    if digest_sent is not None:
        family(
            "digest_sent",
            "1 when the schedule's digest mail reached the relay.",
            [({"schedule": schedule}, int(digest_sent))],
        )
    return "\n".join(lines) + "\n"


def write_atomically(path: str, text: str) -> None:
    """Write beside the target, then rename: the textfile collector never reads a partial file."""
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".health-check.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def report(host: str, schedule: str, results: list[Result]) -> str:
    failed = [r for r in results if r.state == FAILED]
    warned = [r for r in results if r.state == WARNING]
    head = f"{host}: {schedule} health checks: {len(failed)} failed, {len(warned)} warnings, {len(results)} checks"
    lines = [head, ""]
    for r in results:
        lines.append(f"[{r.state.upper():7}] {r.check}: {r.summary}")
        lines.extend(f"          {d}" for d in r.details if d not in r.summary)
    return "\n".join(lines) + "\n"


def send_digest(mail: dict[str, Any], host: str, schedule: str, results: list[Result], text: str) -> None:
    failed = sum(r.state == FAILED for r in results)
    warned = sum(r.state == WARNING for r in results)
    verdict = f"{failed} FAILED" if failed else f"{warned} warnings" if warned else "all OK"
    message = EmailMessage()
    message["Subject"] = f"[health {schedule}] {host}: {verdict}"
    message["From"] = mail.get("from") or f"health-check@{host}"
    message["To"] = ", ".join(mail["to"])
    message.set_content(text)
    relay, port = mail["smarthost"].rsplit(":", 1)
    with smtplib.SMTP(relay, int(port), timeout=30) as smtp:
        smtp.ehlo()
        if mail.get("require_tls", True):
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if mail.get("username"):
            with open(mail["password_file"], encoding="utf-8") as handle:
                smtp.login(mail["username"], handle.read().strip())
        smtp.send_message(message)


def _say(text: str, error: bool = False) -> None:
    (sys.stderr if error else sys.stdout).write(text if text.endswith("\n") else text + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="onprem-health-check", description="The maintenance schedule's checks.")
    parser.add_argument("--config", default=DEFAULT_CONFIG)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check-config")
    run_parser = sub.add_parser("run")
    run_parser.add_argument("schedule")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as err:
        _say(f"onprem-health-check: configuration: {err}", error=True)
        return 2
    if args.command == "check-config":
        _say(f"{args.config}: {len(config['schedules'])} schedules, valid")
        return 0
    if args.schedule not in config["schedules"]:
        _say(f"onprem-health-check: no schedule {args.schedule!r} (configured: {', '.join(config['schedules'])})", True)
        return 2
    host = socket.getfqdn()
    started = time.time()
    interval = config["schedules"][args.schedule]["interval_seconds"]
    results = run_schedule(Context(config, since_seconds=interval), args.schedule)
    text = report(host, args.schedule, results)
    _say(text)
    mail = config["mail"]
    digest_sent = None
    problems = any(r.state in (FAILED, WARNING) for r in results)
    digest = config["schedules"][args.schedule].get("digest", mail.get("digest"))
    if mail.get("to") and (digest == "always" or (digest == "problems" and problems)):
        try:
            send_digest(mail, host, args.schedule, results, text)
            digest_sent = True
        except (OSError, smtplib.SMTPException) as err:
            _say(f"onprem-health-check: the digest did not reach {mail['smarthost']}: {err}", error=True)
            digest_sent = False
    metrics = render_metrics(args.schedule, results, started, time.time() - started, interval, digest_sent)
    write_atomically(os.path.join(config["textfile_dir"], f"{METRIC_PREFIX}_{args.schedule}.prom"), metrics)
    for result in results:
        for name, text in result.files.items():
            write_atomically(os.path.join(config["textfile_dir"], name), text)
    return 1 if any(r.state == FAILED for r in results) else 0


if __name__ == "__main__":
    # Installed: .../onprem-health-check/ansible_collections/onprem/gpu_server/plugins/module_utils/health/check.py
    sys.path.insert(0, os.path.realpath(__file__).rsplit(os.sep, 7)[0])
    # SystemExit rather than sys.exit: ansible-test's pylint bans sys.exit calls below plugins/module_utils.
    raise SystemExit(main())
