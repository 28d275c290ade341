"""Crash safety of onprem-data-lifecycle move: SIGKILL at random instants loses nothing.

Each round builds a tree of files of varied sizes (several larger than the copy
buffer) and ages, then starts the tool as a subprocess and kills it with SIGKILL
after a seeded random delay, again and again. After every kill each original
file must still exist, complete, in at least one tier; after a final complete
run each must exist exactly once, in the tier its age selects, with its original
sha256 and mtime, and no temporary may remain.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dlc_helpers import TOOL, all_files, load_tool, make_file, sha256, write_config

dlc = load_tool()
TIERS = ("landing", "warm", "cold")
KILLS_WANTED = 52
WALL_BUDGET_S = 25.0
BUFFER = 65536
CLASSES = {"tick": (1.0, 7.0), "models/checkpoints": (2.0, 10.0)}


def build_tree(root: Path, rng: random.Random, now: float) -> dict[str, tuple[str, str, int]]:
    """Create the files; return {relative path below the tier: (expected tier, sha256, mtime_ns)}."""
    expected: dict[str, tuple[str, str, int]] = {}
    for index in range(60):
        directory = rng.choice(list(CLASSES))
        hot, warm = CLASSES[directory]
        size = rng.choice([0, rng.randint(1, 4000), rng.randint(4096, BUFFER), rng.randint(BUFFER + 1, 5 * BUFFER)])
        age = rng.choice([hot / 3, (hot + warm) / 2, warm * 3])
        start_tier = "warm" if age > hot and rng.random() < 0.3 else "landing"
        rel = f"{directory}/d{index % 5}/f{index:03d}.bin"
        digest = make_file(root / start_tier / rel, size, age, now, seed=rng.randint(0, 1 << 30))
        data_class = dlc.DataClass("c", directory, hot, warm, None)
        mtime_ns = os.stat(root / start_tier / rel).st_mtime_ns
        expected[rel] = (dlc.target_tier(dlc.age_days(mtime_ns / 1e9, now), data_class), digest, mtime_ns)
    return expected


def copies(root: Path, rel: str) -> list[str]:
    """Tiers holding a complete regular file at ``rel``, with its digest."""
    return [tier for tier in TIERS if (root / tier / rel).is_file()]


def assert_nothing_lost(root: Path, expected: dict[str, tuple[str, str, int]]) -> None:
    for rel, (_tier, digest, _mtime) in expected.items():
        held = [tier for tier in copies(root, rel) if sha256(root / tier / rel) == digest]
        assert held, f"{rel}: no complete copy in any tier"


def assert_final_state(root: Path, expected: dict[str, tuple[str, str, int]]) -> None:
    found = {}
    for tier in TIERS:
        for path in all_files(root / tier):
            assert not dlc.is_temporary(path.name), f"temporary left behind: {path}"
            rel = path.relative_to(root / tier).as_posix()
            assert rel not in found, f"{rel} is in two tiers: {found[rel]} and {tier}"
            found[rel] = tier
    assert sorted(found) == sorted(expected), "files appeared or vanished"
    for rel, (tier, digest, mtime_ns) in expected.items():
        assert found[rel] == tier, f"{rel}: in {found[rel]}, expected {tier}"
        path = root / tier / rel
        assert sha256(path) == digest, f"{rel}: content changed"
        assert os.stat(path).st_mtime_ns == mtime_ns, f"{rel}: mtime not preserved"
        assert os.stat(path).st_nlink == 1, f"{rel}: still linked twice"


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs directory where there is one: a SIGKILL waits for a running fsync, and a busy shared
    disk would make each kill take seconds. Process death does not depend on fsync for what it keeps."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        path = Path(tempfile.mkdtemp(prefix="dlc-crash-", dir=shm))
        yield path
        shutil.rmtree(path, ignore_errors=True)
    else:
        yield tmp_path


def test_sigkill_at_random_instants_loses_nothing(scratch: Path) -> None:
    rng = random.Random(20261125)
    now = time.time()
    kills = rounds = left_temporary = 0
    started = time.monotonic()
    while kills < KILLS_WANTED and time.monotonic() - started < WALL_BUDGET_S:
        root = scratch / f"round{rounds}"
        root.mkdir()
        classes = [
            {"name": name.split("/")[0], "directory": name, "hot_days": hot, "warm_days": warm, "retention_days": None}
            for name, (hot, warm) in CLASSES.items()
        ]
        # Every fourth round moves within the filesystem by hard link; the others copy.
        config = write_config(root, classes=classes, link_within_filesystem=rounds % 4 == 3, buffer_bytes=BUFFER)
        expected = build_tree(root, rng, now)
        argv = [sys.executable, str(TOOL), "--config", str(config), "--now", str(now), "move"]
        while True:
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            assert proc.stdout is not None
            if rng.random() < 0.3:
                # Anywhere from the start: the stale-temporary sweep and the first file.
                time.sleep(rng.uniform(0.0, 0.15))
            else:
                # Process start-up time varies with load: count finished files instead of seconds.
                for _ in range(rng.randint(1, 4)):
                    if not proc.stdout.readline():
                        break
                time.sleep(rng.uniform(0.0, 0.004))
            if proc.poll() is None and time.monotonic() - started < WALL_BUDGET_S:
                proc.send_signal(signal.SIGKILL)
            _, err = proc.communicate()
            if proc.returncode == 0:
                break
            assert proc.returncode == -signal.SIGKILL, err
            kills += 1
            left_temporary += any(dlc.is_temporary(p.name) for p in all_files(root))
            assert_nothing_lost(root, expected)
        final = subprocess.run(argv, capture_output=True, text=True, check=False)
        assert final.returncode == 0, final.stdout + final.stderr
        assert_final_state(root, expected)
        shutil.rmtree(root)
        rounds += 1
    assert kills >= 50, f"only {kills} kills landed in {rounds} rounds within {WALL_BUDGET_S} s"
    # Evidence that kills land inside the copy protocol, not only before or after it.
    assert left_temporary >= 3, f"only {left_temporary} of {kills} kills interrupted a copy"
