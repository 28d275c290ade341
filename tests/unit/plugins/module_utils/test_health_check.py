"""The health-check program's checks against recorded real output (tests/unit/fixtures/*/SOURCES.md), its
configuration refusals, its metrics (parsed back as Prometheus reads them) and its exit status."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest
from fixtures import recorded, tools

from ansible_collections.onprem.gpu_server.plugins.module_utils.health import check

MDADM = recorded.reader("mdadm")
ZPOOL = recorded.reader("zpool")
NVSMI = recorded.reader("nvidia-smi")


def config(tmp_path: Path, **overrides) -> dict:
    base = {
        "textfile_dir": str(tmp_path),
        "schedules": {"daily": {"interval_seconds": 86400, "checks": ["disk_space", "md_arrays"]}},
        "disk_space": {"warning_percent": 80, "failed_percent": 90, "fstypes_excluded": ["proc", "sysfs"]},
        "gpu_errors": {"temperature_warning_celsius": 75},
        "log_scan": {"errors_warning": 100},
        "mail": {"to": [], "digest": "always"},
    }
    base.update(overrides)
    return base


def proc_with(tmp_path: Path, mdstat: str | None) -> str:
    proc = tmp_path / "proc"
    proc.mkdir()
    if mdstat is not None:
        (proc / "mdstat").write_text(mdstat)
    return str(proc)


def fake(outputs: dict[str, tuple[int, str]]):
    """A runner answering by the command's first two words; a command it does not know fails the test."""

    def run(argv: list[str]) -> tuple[int, str]:
        return outputs[" ".join(argv[:2])]

    return run


@pytest.mark.parametrize(
    ("fixture", "state"),
    [
        ("mdstat_4x-raid1_degraded_failed-member.txt", check.FAILED),
        ("mdstat_raid10-22disk_degraded.txt", check.FAILED),
        ("mdstat_raid0-over-two-raid1_clean.txt", check.OK),
        ("mdstat_raid1-raid0-raid1_v0.90_clean.txt", check.OK),
    ],
)
def test_md_arrays_from_recorded_mdstat(tmp_path: Path, fixture: str, state: str) -> None:
    ctx = check.Context(config(tmp_path), proc=proc_with(tmp_path, MDADM(fixture)))
    result = check.check_md_arrays(ctx)
    assert result.state == state, result
    if state == check.FAILED:
        assert "degraded" in result.summary


def test_md_arrays_resync_warns_and_a_check_does_not(tmp_path: Path) -> None:
    # The recorded clean raid1 with the recovery line the kernel prints during a rebuild, then during checkarray.
    text = MDADM("mdstat_raid0-over-two-raid1_clean.txt")
    rebuilding = text.replace(
        "\n\n", "\n      [==>..................]  recovery = 12.6% (1/8) finish=1.0min speed=1K/sec\n\n", 1
    )
    ctx = check.Context(config(tmp_path), proc=proc_with(tmp_path, rebuilding))
    assert check.check_md_arrays(ctx).state == check.WARNING
    checking = rebuilding.replace("recovery =", "check =")
    (Path(ctx.proc) / "mdstat").write_text(checking)
    assert check.check_md_arrays(ctx).state == check.OK


def test_md_arrays_without_the_driver_is_skipped(tmp_path: Path) -> None:
    ctx = check.Context(config(tmp_path), proc=proc_with(tmp_path, None))
    assert check.check_md_arrays(ctx).state == check.SKIPPED


@pytest.mark.parametrize(
    ("fixture", "state"),
    [
        ("zpool-status_mirror_degraded-faulted.txt", check.FAILED),
        ("zpool-status_raidz2-12disk_degraded-faulted.txt", check.FAILED),
        ("jc_zpool-status-v4_2x-mirror_online.txt", check.OK),
    ],
)
def test_zfs_pools_from_recorded_status(tmp_path: Path, fixture: str, state: str) -> None:
    ctx = check.Context(config(tmp_path), run=fake({"zpool status": (0, ZPOOL(fixture))}), which=lambda _: "/sbin/x")
    result = check.check_zfs_pools(ctx)
    assert result.state == state, result


def test_zfs_without_pools_or_tool(tmp_path: Path) -> None:
    ctx = check.Context(config(tmp_path), run=fake({"zpool status": (0, "no pools available\n")}), which=lambda _: "/x")
    assert check.check_zfs_pools(ctx).state == check.OK
    assert check.check_zfs_pools(check.Context(config(tmp_path), which=lambda _: None)).state == check.SKIPPED


def test_gpu_errors_from_the_recorded_all_fields_query(tmp_path: Path) -> None:
    # The recorded H100 query has every field the check asks for, with its header (the parser maps by name).
    text = NVSMI("h100-sxm5-80gb_query-gpu-all-fields_idle.csv.txt")
    ctx = check.Context(
        config(tmp_path),
        run=fake({f"nvidia-smi --query-gpu={','.join(check.GPU_FIELDS)}": (0, text)}),
        which=lambda _: "/usr/bin/nvidia-smi",
    )
    result = check.check_gpu_errors(ctx)
    assert result.state == check.OK, result
    assert result.summary == "1 GPUs without errors"
    header, row = text.splitlines()[:2]
    names = [n.strip().split(" [")[0] for n in header.split(",")]
    cells = row.split(", ")
    cells[names.index("ecc.errors.uncorrected.volatile.total")] = "2"
    broken = header + "\n" + ", ".join(cells) + "\n"
    ctx.run = fake({f"nvidia-smi --query-gpu={','.join(check.GPU_FIELDS)}": (0, broken)})
    result = check.check_gpu_errors(ctx)
    assert result.state == check.FAILED
    assert "2 uncorrectable ECC errors" in result.summary


def test_gpu_errors_skipped_without_nvidia_smi(tmp_path: Path) -> None:
    assert check.check_gpu_errors(check.Context(config(tmp_path), which=lambda _: None)).state == check.SKIPPED


def test_log_scan_fails_on_hardware_messages_and_warns_on_many_errors(tmp_path: Path) -> None:
    kernel = "NVRM: Xid (PCI:0000:3b:00): 79, pid=0, GPU has fallen off the bus.\nusb 1-1: new device\n"
    ctx = check.Context(config(tmp_path), run=fake({"journalctl -k": (0, kernel), "journalctl -p": (0, "x\n")}))
    result = check.check_log_scan(ctx)
    assert result.state == check.FAILED
    assert "NVIDIA Xid: 1" in result.summary
    ctx.run = fake({"journalctl -k": (0, ""), "journalctl -p": (0, "e\n" * 101)})
    assert check.check_log_scan(ctx).state == check.WARNING
    ctx.run = fake({"journalctl -k": (0, ""), "journalctl -p": (0, "e\n" * 3)})
    assert check.check_log_scan(ctx).state == check.OK


def test_smart_health_reads_the_json_of_each_device(tmp_path: Path) -> None:
    scan = json.dumps({"devices": [{"name": "/dev/sda", "type": "sat"}]})
    failing = json.dumps({"smart_status": {"passed": False}})
    ctx = check.Context(
        config(tmp_path),
        run=fake({"smartctl --scan-open": (0, scan), "smartctl --json": (8, failing)}),
        which=lambda _: "/usr/sbin/smartctl",
    )
    assert check.check_smart_health(ctx).state == check.FAILED
    ctx.run = fake({"smartctl --scan-open": (0, json.dumps({"devices": []}))})
    assert check.check_smart_health(ctx).summary == "no SMART devices"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schedules": {"daily": {"interval_seconds": 86400, "checks": ["disk_space", "fan_speed"]}}}, "fan_speed"),
        ({"schedules": {"Daily": {"interval_seconds": 86400, "checks": ["disk_space"]}}}, "'Daily'"),
        ({"schedules": {"daily": {"interval_seconds": "1d", "checks": ["disk_space"]}}}, "interval_seconds"),
        ({"disk_space": {"warning_percent": 95, "failed_percent": 90, "fstypes_excluded": []}}, "above"),
        ({"disk_space": {"warning_percent": "80", "failed_percent": 90, "fstypes_excluded": []}}, "warning_percent"),
        ({"mail": {"to": ["ops@example.org"], "digest": "always", "smarthost": ""}}, "mail.smarthost"),
        ({"textfile_dir": "relative"}, "textfile_dir"),
        ({"schedules": {"daily": {"interval_seconds": 60, "checks": ["disk_space"], "digest": "hourly"}}}, "digest"),
    ],
)
def test_configuration_refusals(tmp_path: Path, change: dict, message: str) -> None:
    with pytest.raises(check.ConfigError, match=message):
        check.validate_config(config(tmp_path, **change))


def samples(text: str) -> dict[tuple[str, str | None], float]:
    """(metric name, check label) -> value, from the exposition lines."""
    found = {}
    for line in text.splitlines():
        match = re.match(r"^(\w+)\{([^}]*)\} (\S+)$", line)
        if match:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2)))
            found[(match.group(1), labels.get("check"))] = float(match.group(3))
    return found


def test_a_run_writes_metrics_promtool_accepts_and_exits_1_on_a_failure(tmp_path: Path, capsys) -> None:
    # Every real filesystem fails above 0.001 % used: this machine's own mounts make the failure real.
    cfg = config(tmp_path, disk_space={"warning_percent": 0.0005, "failed_percent": 0.001, "fstypes_excluded": []})
    path = tmp_path / "health-check.json"
    path.write_text(json.dumps(cfg))
    assert check.main(["--config", str(path), "check-config"]) == 0
    assert check.main(["--config", str(path), "run", "daily"]) == 1
    assert "[FAILED ] disk_space" in capsys.readouterr().out
    text = (tmp_path / "onprem_health_check_daily.prom").read_text()
    linted = subprocess.run(
        [tools.require("promtool"), "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert linted.returncode == 0, linted.stdout + linted.stderr
    values = samples(text)
    assert values[("onprem_health_check_ok", "disk_space")] == 0
    assert values[("onprem_health_check_ok", "md_arrays")] == 1
    assert values[("onprem_health_check_interval_seconds", "disk_space")] == 86400
    assert ("onprem_health_check_digest_sent", None) not in values
    assert list(tmp_path.glob(".health-check.*")) == []


def test_a_bad_configuration_exits_2_and_names_the_problem(tmp_path: Path, capsys) -> None:
    path = tmp_path / "health-check.json"
    path.write_text(json.dumps(config(tmp_path, textfile_dir="var/lib")))
    assert check.main(["--config", str(path), "run", "daily"]) == 2
    assert "textfile_dir: expected an absolute path" in capsys.readouterr().err
    path.write_text(json.dumps(config(tmp_path)))
    assert check.main(["--config", str(path), "run", "hourly"]) == 2


def test_zfs_metrics_from_recorded_status(tmp_path: Path) -> None:
    # The FAULTED disk of the recorded mirror counts READ 1, WRITE 29, CKSUM 4; the last scan was a resilver.
    ctx = check.Context(
        config(tmp_path),
        run=fake({"zpool status": (0, ZPOOL("zpool-status_mirror_degraded-faulted.txt"))}),
        which=lambda _: "/sbin/zpool",
    )
    text = check.check_zfs_pools(ctx).files[check.ZFS_METRICS_FILE]
    assert 'onprem_zfs_pool_errors{pool="local-zfs",type="read"} 1\n' in text
    assert 'onprem_zfs_pool_errors{pool="local-zfs",type="write"} 29\n' in text
    assert 'onprem_zfs_pool_errors{pool="local-zfs",type="cksum"} 4\n' in text
    assert 'onprem_zfs_pool_errors{pool="local-zfs",type="data"} 0\n' in text
    assert "last_scrub" not in text
    # A finished scrub: its time, as zpool printed it (local time).
    ctx.run = fake({"zpool status": (0, ZPOOL("jc_zpool-status-v4_2x-mirror_online.txt"))})
    text = check.check_zfs_pools(ctx).files[check.ZFS_METRICS_FILE]
    when = time.mktime(time.strptime("Sun Feb 12 11:40:04 2023", "%a %b %d %H:%M:%S %Y"))
    assert samples(text)[("onprem_zfs_pool_last_scrub_timestamp_seconds", None)] == when
    linted = subprocess.run(
        [tools.require("promtool"), "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_data_errors_are_counted(tmp_path: Path) -> None:
    status = ZPOOL("jc_zpool-status-v4_2x-mirror_online.txt").replace(
        "errors: No known data errors", "errors: 3 data errors, use '-v' for a list"
    )
    ctx = check.Context(config(tmp_path), run=fake({"zpool status": (0, status)}), which=lambda _: "/sbin/zpool")
    result = check.check_zfs_pools(ctx)
    assert result.state == check.FAILED
    assert 'type="data"} 3\n' in result.files[check.ZFS_METRICS_FILE]
