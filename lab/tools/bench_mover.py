"""Benchmark: throughput of the data-lifecycle mover against ``cp -a`` + ``sha256sum``.

Usage (from the repo root)::

    .venv/bin/python lab/tools/bench_mover.py [--size-mib 1024] [--repeat 3] [--dir /var/tmp]

A data set of mixed file sizes (log-uniform from 4 KiB to 64 MiB, seeded) is
generated in a scratch directory below ``--dir``. Each repetition times, on the
same data and with the source in the same state:

``mover``
    ``onprem-data-lifecycle move`` moving every file from the landing tier to the
    warm tier on the same filesystem, by copy (``link_within_filesystem: false``):
    read once, hash while writing, fsync, re-read and hash the copy, link into
    place, fsync the directory, delete the source.
``cp+sha256(dst)`` (the baseline the target refers to)
    ``cp -a SRC DST`` then ``sha256sum`` of every destination file.
``cp+sha256(src+dst)``
    ``cp -a SRC DST`` then ``sha256sum`` of every source and destination file
    (the same amount of hashing as the mover).
``cp+sync+sha256(dst)``
    the baseline with a ``sync`` after the copy: the data reaches the disk, as the
    mover's fsyncs make it.

Page cache: the source is rewritten before every timed run and ``sync`` is run
before the clock starts, so each run reads a source that is in the page cache
(the landing zone's normal case: data is moved while recent) and no earlier
writes are flushed inside a timed run. The caches are not dropped (that needs
root); the data set fits in memory, so the re-reads of fresh copies come from
the cache for the mover and for ``sha256sum`` alike. The baseline without
``sync`` leaves its writes in the cache; the mover does not.

The medians of ``--repeat`` runs are written to
``docs/measurements/mover-throughput.json``; the scratch directory is deleted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "plugins" / "module_utils" / "data_lifecycle" / "mover.py"
OUT = ROOT / "docs" / "measurements" / "mover-throughput.json"
MIB = 1 << 20


def generate(dest: Path, total: int, seed: int) -> list[tuple[str, int]]:
    """Write files of log-uniform sizes (4 KiB .. 64 MiB) until ``total`` bytes; return (relpath, size)."""
    rng = random.Random(seed)
    block = rng.randbytes(8 * MIB)
    files: list[tuple[str, int]] = []
    written = 0
    while written < total:
        size = min(int(2 ** rng.uniform(12, 26)), total - written)
        rel = f"tick/{len(files) % 16:02d}/f{len(files):05d}.bin"
        path = dest / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        offset = rng.randrange(0, len(block) - MIB)
        with path.open("wb") as handle:
            left = size
            while left:
                chunk = block[offset : offset + min(left, len(block) - offset)]
                handle.write(chunk)
                left -= len(chunk)
                offset = 0
        files.append((rel, size))
        written += size
    return files


def sync() -> None:
    subprocess.run(["sync"], check=True)


def stage_source(master: Path, landing: Path, old: float) -> None:
    """Copy the master data set into ``landing`` (untimed), make it old, flush it."""
    shutil.rmtree(landing, ignore_errors=True)
    subprocess.run(["cp", "-a", str(master), str(landing)], check=True)
    for path in landing.rglob("*"):
        if path.is_file():
            os.utime(path, (old, old))
    sync()


def files_of(root: Path) -> list[str]:
    return sorted(str(p) for p in root.rglob("*") if p.is_file())


def sha256sum(paths: list[str]) -> None:
    # xargs keeps every argument list under the kernel's limit.
    subprocess.run(["xargs", "-0", "sha256sum"], input="\0".join(paths).encode(), stdout=subprocess.DEVNULL, check=True)


def run_mover(work: Path, master: Path, now: float, buffer_bytes: int) -> float:
    tiers = {t: work / t for t in ("landing", "warm", "cold")}
    for tier in ("warm", "cold"):
        shutil.rmtree(tiers[tier], ignore_errors=True)
        tiers[tier].mkdir()
    stage_source(master, tiers["landing"], now - 3 * 86400)
    config = work / "config.json"
    config.write_text(
        json.dumps(
            {
                "tiers": {k: str(v) for k, v in tiers.items()},
                "classes": [
                    {"name": "tick", "directory": "tick", "hot_days": 1, "warm_days": 7, "retention_days": None}
                ],
                "lock_file": str(work / "lock"),
                "metrics_path": None,
                "link_within_filesystem": False,
                "buffer_bytes": buffer_bytes,
            }
        )
    )
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, str(TOOL), "--config", str(config), "--now", str(now), "move"],
        stdout=subprocess.DEVNULL,
        check=True,
    )
    elapsed = time.perf_counter() - start
    assert not files_of(tiers["landing"]), "the mover left files behind"
    return elapsed


def run_baseline(work: Path, master: Path, now: float, variant: str) -> float:
    src, dst = work / "landing", work / "baseline-dst"
    shutil.rmtree(dst, ignore_errors=True)
    stage_source(master, src, now - 3 * 86400)
    start = time.perf_counter()
    subprocess.run(["cp", "-a", str(src), str(dst)], check=True)
    if variant == "sync":
        sync()
    sha256sum(files_of(dst) + (files_of(src) if variant == "both" else []))
    elapsed = time.perf_counter() - start
    shutil.rmtree(dst)
    return elapsed


def machine(scratch: Path) -> dict[str, object]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    mem_kib = int(
        next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
    )
    fs = subprocess.run(
        ["findmnt", "-n", "-o", "FSTYPE,SOURCE", "-T", str(scratch)], capture_output=True, text=True, check=False
    ).stdout.split()
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory_gib": round(mem_kib / MIB, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "filesystem": " ".join(fs),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "note": "shared build machine (other jobs ran concurrently); page cache not dropped (needs root)",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="data set size (default 1024)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default="/var/tmp", help="parent of the scratch directory")
    parser.add_argument("--buffer-bytes", type=int, default=1 << 20, help="the mover's copy buffer")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    total = args.size_mib * MIB
    free = shutil.disk_usage(args.dir).free
    if free < 4 * total:
        print(f"{args.dir}: {free // MIB} MiB free, need {4 * total // MIB} MiB", file=sys.stderr)
        return 1
    scratch = Path(tempfile.mkdtemp(prefix="bench-mover-", dir=args.dir))
    try:
        info = machine(scratch)
        master = scratch / "master"
        files = generate(master, total, args.seed)
        now = time.time()
        runs: dict[str, list[float]] = {
            "mover": [],
            "cp+sha256(dst)": [],
            "cp+sha256(src+dst)": [],
            "cp+sync+sha256(dst)": [],
        }
        for index in range(args.repeat):
            runs["mover"].append(run_mover(scratch, master, now, args.buffer_bytes))
            runs["cp+sha256(dst)"].append(run_baseline(scratch, master, now, "dst"))
            runs["cp+sha256(src+dst)"].append(run_baseline(scratch, master, now, "both"))
            runs["cp+sync+sha256(dst)"].append(run_baseline(scratch, master, now, "sync"))
            print(f"repetition {index + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in runs.items()), flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    mb = total / 1e6
    medians = {k: statistics.median(v) for k, v in runs.items()}
    throughput = {k: round(mb / v, 1) for k, v in medians.items()}
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "command": " ".join(["lab/tools/bench_mover.py", *sys.argv[1:]]),
        "machine": info,
        "data_set": {
            "bytes": total,
            "files": len(files),
            "sizes": "log-uniform 4 KiB .. 64 MiB, seeded",
            "largest_bytes": max(s for _, s in files),
            "smallest_bytes": min(s for _, s in files),
            "seed": args.seed,
        },
        "mover_buffer_bytes": args.buffer_bytes,
        "repeat": args.repeat,
        "runs_s": {k: [round(x, 3) for x in v] for k, v in runs.items()},
        "median_s": {k: round(v, 3) for k, v in medians.items()},
        "throughput_mb_s": throughput,
        "mover_vs_baseline": round(medians["cp+sha256(dst)"] / medians["mover"], 3),
        "mover_vs_baseline_src_dst": round(medians["cp+sha256(src+dst)"] / medians["mover"], 3),
        "mover_vs_baseline_sync": round(medians["cp+sync+sha256(dst)"] / medians["mover"], 3),
        "target": "mover >= 0.70 of cp -a + sha256sum(dst)",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
