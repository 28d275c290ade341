"""onprem-data-lifecycle commands on real temporary trees: move, purge, conflicts, dry runs, metrics, locking."""

from __future__ import annotations

import fcntl
import json
import os
import re
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dlc_helpers import TOOL, all_files, load_tool, make_file, parse_prom, sha256, write_config

dlc = load_tool()
NOW = time.time()


def run(config: Path, *args: str, capsys) -> tuple[int, list[str]]:
    """Run the tool in-process; return its exit status and output lines (stdout then stderr)."""
    rc = dlc.main(["--config", str(config), "--now", str(NOW), *args])
    out = capsys.readouterr()
    return rc, (out.out + out.err).splitlines()


def paths_in(lines: list[str], verb: str, key: str = "path") -> list[str]:
    """The quoted ``key=`` paths of every log line starting with ``<n>verb ``."""
    found = []
    for line in lines:
        if re.match(rf"^<\d>{verb} ", line):
            found.append(json.loads(re.search(rf'{key}=("(?:[^"\\]|\\.)*")', line).group(1)))
    return found


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return tmp_path


def test_move_places_files_by_age_and_preserves_path_mode_mtime(tree: Path, capsys) -> None:
    config = write_config(tree)
    landing, warm, cold = tree / "landing", tree / "warm", tree / "cold"
    fresh = make_file(landing / "tick/2026/11/25/a.bin", 1000, 0.5, NOW)
    warmish = make_file(landing / "tick/2026/11/22/b.bin", 200_000, 3, NOW, mode=0o600)
    old = make_file(landing / "tick/2026/11/01/c.bin", 70_000, 20, NOW, mode=0o444)
    in_warm_old = make_file(warm / "tick/2026/10/01/d.bin", 5, 40, NOW)
    model = make_file(landing / "models/checkpoints/run1/e.pt", 9, 3, NOW)  # hot window 2 days for models
    empty = make_file(landing / "tick/2026/11/20/empty.bin", 0, 5, NOW)
    src_mtime = os.stat(landing / "tick/2026/11/22/b.bin").st_mtime_ns

    rc, lines = run(config, "move", capsys=capsys)

    assert rc == 0, lines
    assert sha256(landing / "tick/2026/11/25/a.bin") == fresh
    assert sha256(warm / "tick/2026/11/22/b.bin") == warmish
    assert sha256(cold / "tick/2026/11/01/c.bin") == old  # straight to cold: older than the warm window
    assert sha256(cold / "tick/2026/10/01/d.bin") == in_warm_old
    assert sha256(warm / "models/checkpoints/run1/e.pt") == model
    assert sha256(warm / "tick/2026/11/20/empty.bin") == empty
    assert os.stat(warm / "tick/2026/11/22/b.bin").st_mtime_ns == src_mtime
    assert stat.S_IMODE(os.stat(warm / "tick/2026/11/22/b.bin").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(cold / "tick/2026/11/01/c.bin").st_mode) == 0o444
    assert [p.relative_to(tree).as_posix() for p in all_files(landing)] == ["landing/tick/2026/11/25/a.bin"]
    assert len(paths_in(lines, "move", "src")) == 5
    # A second run finds nothing to do.
    rc, lines = run(config, "move", capsys=capsys)
    assert rc == 0 and not paths_in(lines, "move", "src"), lines


def test_link_within_filesystem_moves_without_copying(tree: Path, capsys) -> None:
    config = write_config(tree, link_within_filesystem=True)
    digest = make_file(tree / "landing/tick/x.bin", 100_000, 3, NOW)
    inode = os.stat(tree / "landing/tick/x.bin").st_ino
    rc, lines = run(config, "move", capsys=capsys)
    assert rc == 0
    moved = tree / "warm/tick/x.bin"
    assert sha256(moved) == digest
    assert os.stat(moved).st_ino == inode and os.stat(moved).st_nlink == 1
    assert any("method=link" in line for line in lines)


def test_conflict_keeps_both_counts_and_fails(tree: Path, capsys) -> None:
    config = write_config(tree)
    src_digest = make_file(tree / "landing/tick/x.bin", 5000, 3, NOW, seed=1)
    dst_digest = make_file(tree / "warm/tick/x.bin", 5000, 3, NOW, seed=2)
    make_file(tree / "landing/tick/y.bin", 10, 3, NOW)
    rc, lines = run(config, "move", capsys=capsys)
    assert rc == dlc.EXIT_FAILED
    assert sha256(tree / "landing/tick/x.bin") == src_digest
    assert sha256(tree / "warm/tick/x.bin") == dst_digest
    assert (tree / "warm/tick/y.bin").exists(), "a conflict must not stop the other moves"
    assert [line for line in lines if line.startswith("<3>conflict")], lines
    metrics = parse_prom((tree / "metrics/dlc-move.prom").read_text())
    assert metrics["onprem_data_lifecycle_conflicts"][(("command", "move"),)] == 1
    assert metrics["onprem_data_lifecycle_last_run_success"][(("command", "move"),)] == 0
    assert "onprem_data_lifecycle_last_success_timestamp_seconds" not in metrics


def test_identical_destination_completes_an_interrupted_move(tree: Path, capsys) -> None:
    config = write_config(tree)
    digest = make_file(tree / "landing/tick/x.bin", 300_000, 3, NOW)
    (tree / "warm/tick").mkdir(parents=True)
    (tree / "warm/tick/x.bin").write_bytes((tree / "landing/tick/x.bin").read_bytes())
    rc, lines = run(config, "move", capsys=capsys)
    assert rc == 0, lines
    assert not (tree / "landing/tick/x.bin").exists()
    assert sha256(tree / "warm/tick/x.bin") == digest
    assert paths_in(lines, "complete", "src") == [str(tree / "landing/tick/x.bin")]


def test_stale_temporaries_are_removed_on_start(tree: Path, capsys) -> None:
    config = write_config(tree)
    stale = tree / "cold/tick/2026" / dlc.temporary_name("x.bin")
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"partial")
    ordinary = tree / "cold/tick/2026/.keep"
    ordinary.write_bytes(b"")
    rc, lines = run(config, "move", capsys=capsys)
    assert rc == 0
    assert not stale.exists() and ordinary.exists()
    assert any(line.startswith("<5>removed stale temporary") for line in lines), lines
    metrics = parse_prom((tree / "metrics/dlc-move.prom").read_text())
    assert metrics["onprem_data_lifecycle_stale_temporaries_removed"][(("command", "move"),)] == 1


def test_move_dry_run_lists_exactly_what_move_does_and_changes_nothing(tree: Path, capsys) -> None:
    config = write_config(tree)
    for index in range(12):
        make_file(tree / f"landing/tick/d{index % 3}/f{index}.bin", index * 1000, index * 1.3, NOW)
    before = {p: sha256(p) for p in all_files(tree / "landing")}
    rc, lines = run(config, "move", "--dry-run", capsys=capsys)
    assert rc == 0
    assert {p: sha256(p) for p in all_files(tree / "landing")} == before
    assert not (tree / "metrics/dlc-move.prom").exists(), "a dry run writes no metrics"
    predicted = paths_in(lines, "would-move", "src")
    rc, lines = run(config, "move", capsys=capsys)
    assert rc == 0
    assert predicted == paths_in(lines, "move", "src")
    assert set(predicted) == {str(p) for p in before} - {str(p) for p in all_files(tree / "landing")}


def test_purge_dry_run_equals_purge(tree: Path, capsys) -> None:
    config = write_config(tree)
    expired, kept = set(), set()
    for index in range(20):
        age = 10 + index * 2.7  # 10 .. 61 days; tick retention is 30
        path = tree / f"cold/tick/m{index % 4}/f{index}.csv"
        make_file(path, index * 10, age, NOW)
        (expired if age > 30 else kept).add(str(path))
    make_file(tree / "cold/models/checkpoints/old.pt", 10, 5000, NOW)  # null retention: kept forever
    make_file(tree / "warm/tick/stuck.csv", 10, 400, NOW)  # purge acts on the last tier only
    rc, lines = run(config, "purge", "--dry-run", capsys=capsys)
    assert rc == 0
    listed = paths_in(lines, "would-delete")
    assert all(Path(p).exists() for p in listed)
    before = {str(p) for p in all_files(tree)}
    rc, lines = run(config, "purge", capsys=capsys)
    assert rc == 0
    deleted = before - {str(p) for p in all_files(tree)}
    deleted.discard(str(tree / "metrics/dlc-purge.prom"))
    assert sorted(listed) == sorted(paths_in(lines, "delete")) == sorted(deleted) == sorted(expired)
    assert not (tree / "cold/tick/m0").exists() or any((tree / "cold/tick/m0").iterdir())
    metrics = parse_prom((tree / "metrics/dlc-purge.prom").read_text())
    key = (("class", "tick"), ("command", "purge"), ("tier", "cold"))
    assert metrics["onprem_data_lifecycle_purged_files"][key] == len(expired)


def test_metrics_file_parses_and_carries_the_figures(tree: Path, capsys) -> None:
    config = write_config(tree)
    make_file(tree / "landing/tick/a.bin", 1234, 3, NOW)
    make_file(tree / "landing/tick/b.bin", 766, 3, NOW)
    make_file(tree / "landing/tick/c.bin", 10, 9, NOW)
    before = time.time()
    rc, _ = run(config, "move", capsys=capsys)
    assert rc == 0
    text = (tree / "metrics/dlc-move.prom").read_text()
    assert not [p for p in (tree / "metrics").iterdir() if p.name != "dlc-move.prom"], "no temporary left"
    metrics = parse_prom(text)
    moved = metrics["onprem_data_lifecycle_moved_files"]
    moved_bytes = metrics["onprem_data_lifecycle_moved_bytes"]
    tick_warm = (("class", "tick"), ("command", "move"), ("from", "landing"), ("to", "warm"))
    tick_cold = (("class", "tick"), ("command", "move"), ("from", "landing"), ("to", "cold"))
    assert moved[tick_warm] == 2 and moved_bytes[tick_warm] == 2000
    assert moved[tick_cold] == 1 and moved_bytes[tick_cold] == 10
    assert len(moved) == 6, "a series for every class and transition, zeros included"
    one = (("command", "move"),)
    assert metrics["onprem_data_lifecycle_errors"][one] == 0
    assert metrics["onprem_data_lifecycle_last_run_success"][one] == 1
    assert before - 1 <= metrics["onprem_data_lifecycle_last_success_timestamp_seconds"][one] <= time.time() + 1
    assert metrics["onprem_data_lifecycle_last_run_duration_seconds"][one] >= 0
    success = metrics["onprem_data_lifecycle_last_success_timestamp_seconds"][one]
    # A failed run keeps the earlier success time.
    make_file(tree / "landing/tick/z.bin", 5, 3, NOW, seed=1)
    make_file(tree / "warm/tick/z.bin", 5, 3, NOW, seed=2)
    rc, _ = run(config, "move", capsys=capsys)
    assert rc == dlc.EXIT_FAILED
    metrics = parse_prom((tree / "metrics/dlc-move.prom").read_text())
    assert metrics["onprem_data_lifecycle_last_success_timestamp_seconds"][one] == pytest.approx(success, abs=0.001)
    assert metrics["onprem_data_lifecycle_last_run_success"][one] == 0


def test_second_instance_is_refused_while_the_lock_is_held(tree: Path, capsys) -> None:
    config = write_config(tree)
    make_file(tree / "landing/tick/a.bin", 10, 3, NOW)
    (tree / "run").mkdir()
    with open(tree / "run/lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        rc, lines = run(config, "move", capsys=capsys)
    assert rc == dlc.EXIT_LOCKED
    assert (tree / "landing/tick/a.bin").exists()
    assert lines and lines[0].startswith("<4>")


def test_lock_wait_runs_once_the_holder_is_gone(tree: Path) -> None:
    config = write_config(tree)
    make_file(tree / "landing/tick/a.bin", 10, 3, NOW)
    (tree / "run").mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl,sys,time; f=open(sys.argv[1],'w'); fcntl.flock(f, 2); "
            "print('held', flush=True); time.sleep(0.6)",
            str(tree / "run/lock"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(TOOL), "--config", str(config), "--lock-wait", "10", "move"],
        capture_output=True,
        text=True,
        check=False,
    )
    holder.wait()
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - start >= 0.3, "it must have waited for the holder"
    assert (tree / "warm/tick/a.bin").exists()


def test_required_mountpoint_missing_does_nothing_and_fails(tree: Path, capsys) -> None:
    config = write_config(tree, required_mountpoints=[str(tree / "cold")])
    make_file(tree / "landing/tick/a.bin", 10, 30, NOW)
    rc, lines = run(config, "move", capsys=capsys)
    assert rc == dlc.EXIT_FAILED
    assert (tree / "landing/tick/a.bin").exists() and not all_files(tree / "cold")
    assert any(line.startswith("<3>error required mountpoints") for line in lines)


def test_status_reports_pending_work(tree: Path, capsys) -> None:
    config = write_config(tree)
    make_file(tree / "landing/tick/a.bin", 10, 3, NOW)
    make_file(tree / "landing/tick/b.bin", 20, 0.1, NOW)
    make_file(tree / "cold/tick/c.bin", 30, 100, NOW)
    rc = dlc.main(["--config", str(config), "--now", str(NOW), "status"])
    report = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert report["classes"]["tick"]["landing"] == {"files": 2, "bytes": 30, "oldest_days": 3.0, "due": 1}
    assert report["classes"]["tick"]["cold"]["due"] == 1


def test_bad_config_exits_2(tree: Path, capsys) -> None:
    path = tree / "bad.json"
    path.write_text('{"tiers": {}}')
    rc, lines = run(path, "move", capsys=capsys)
    assert rc == dlc.EXIT_CONFIG and lines[0].startswith("<3>error configuration")


# The process kills itself with SIGKILL at a named step; the next run must repair everything.
@pytest.mark.parametrize(
    ("failpoint", "link"),
    [
        ("tmp-created", False),
        ("partial-write", False),
        ("tmp-synced", False),
        ("renamed", False),
        ("dir-synced", False),
        ("source-removed", False),
        ("linked", True),
    ],
)
def test_kill_at_each_step_then_rerun_repairs(tree: Path, failpoint: str, link: bool) -> None:
    config = write_config(tree, link_within_filesystem=link)
    digests = {
        "tick/big.bin": make_file(tree / "landing/tick/big.bin", 300_000, 3, NOW),
        "tick/small.bin": make_file(tree / "landing/tick/small.bin", 100, 3, NOW),
    }
    argv = [sys.executable, str(TOOL), "--config", str(config), "--now", str(NOW), "move"]
    killed = subprocess.run(argv, env=os.environ | {dlc.FAILPOINT_ENV: failpoint}, capture_output=True, check=False)
    assert killed.returncode == -9, killed
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    files = {p.relative_to(tree).as_posix(): sha256(p) for p in all_files(tree / "landing") + all_files(tree / "warm")}
    assert files == {f"warm/{rel}": digest for rel, digest in digests.items()}
    assert all(os.stat(tree / "warm" / rel).st_nlink == 1 for rel in digests)
