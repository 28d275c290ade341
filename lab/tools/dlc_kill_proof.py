#!/usr/bin/env python3
"""Kill onprem-data-lifecycle with SIGKILL at random instants on real filesystems; report as JSON.

Runs inside a lab VM with the VM's own python3 (standard library only). Each round builds a tree of
files of varied sizes and ages in the landing tier (and some already in warm), then starts the tool's
``move`` again and again, killing each run with SIGKILL after a random delay, until a run completes.

After every kill:
  * every file of the round is complete (original sha256) in at least one tier;
  * every file visible under its real name in any tier is complete (a partial copy only ever exists
    under a temporary name).
After the round's completing run:
  * every file exists exactly once, in the tier its age selects, with its sha256 and mtime, one link;
  * no temporary is left anywhere.

Evidence that kills land inside the copy protocol is counted: kills that left a temporary, kills
that left a temporary shorter than its source (killed while writing), kills that left a file in two
tiers (copied or linked, source not yet removed).

The landing and warm tiers live below ``--landing-root`` and the cold tier below ``--cold-root``; the
JSON names the filesystem type of both so the caller can assert ext4 and zfs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

TIERS = ("landing", "warm", "cold")
DAY = 86400.0
BUFFER = 65536
# Directory below a tier root -> (hot_days, warm_days).
CLASSES = {"tick": (1.0, 7.0), "models/checkpoints": (2.0, 10.0)}
TMP_SUFFIX = ".dlc-tmp"


def is_temporary(name: str) -> bool:
    """Whether ``name`` is one of the tool's temporary copy names (``.<name>.<16 hex>.dlc-tmp``)."""
    if not (name.startswith(".") and name.endswith(TMP_SUFFIX)):
        return False
    token = name[: -len(TMP_SUFFIX)].rsplit(".", 1)[-1]
    return len(token) == 16 and all(c in "0123456789abcdef" for c in token)


def target_tier(age: float, hot: float, warm: float) -> str:
    """The tier the tool's rules put a file of ``age`` days in."""
    if age > warm:
        return "cold"
    if age > hot:
        return "warm"
    return "landing"


def sha256(path: str) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fs_of(path: str) -> dict[str, str]:
    """Mount point, source and type of the filesystem holding ``path`` (longest /proc/self/mounts match)."""
    best = {"target": "", "source": "", "fstype": ""}
    real = os.path.realpath(path)
    with open("/proc/self/mounts", encoding="utf-8") as handle:
        for line in handle:
            source, target, fstype = line.split()[:3]
            target = target.replace("\\040", " ")
            inside = real == target or real.startswith(target.rstrip("/") + "/")
            if inside and len(target) >= len(best["target"]):
                best = {"target": target, "source": source, "fstype": fstype}
    return best


def all_files(root: str) -> list[str]:
    """Every non-directory entry below ``root``."""
    found = []
    for top, _dirs, files in os.walk(root):
        found.extend(os.path.join(top, name) for name in files)
    return found


class Round:
    """One tree of files and its tier roots."""

    def __init__(self, index: int, landing_root: str, cold_root: str, rng: random.Random, now: float, files: int):
        self.index = index
        self.roots = {
            "landing": os.path.join(landing_root, f"round{index}", "hot"),
            "warm": os.path.join(landing_root, f"round{index}", "warm"),
            "cold": os.path.join(cold_root, f"round{index}"),
        }
        for root in self.roots.values():
            os.makedirs(root)
        # rel -> (expected tier, sha256, mtime_ns, size)
        self.expected: dict[str, tuple[str, str, int, int]] = {}
        for number in range(files):
            directory = rng.choice(list(CLASSES))
            hot, warm = CLASSES[directory]
            size = rng.choice(
                [
                    0,
                    rng.randint(1, 4000),
                    rng.randint(4096, BUFFER),
                    rng.randint(BUFFER + 1, 8 * BUFFER),
                    rng.randint(8 * BUFFER, 16 * BUFFER),
                ]
            )
            age = rng.choice([hot / 3, (hot + warm) / 2, warm * 3])
            start = "warm" if age > hot and rng.random() < 0.3 else "landing"
            rel = f"{directory}/d{number % 4}/f{number:03d}.bin"
            path = os.path.join(self.roots[start], rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            data = rng.randbytes(size)
            with open(path, "wb") as handle:
                handle.write(data)
            mtime_ns = int((now - age * DAY) * 1e9)
            os.utime(path, ns=(mtime_ns, mtime_ns))
            self.expected[rel] = (
                target_tier((now - mtime_ns / 1e9) / DAY, hot, warm),
                hashlib.sha256(data).hexdigest(),
                mtime_ns,
                size,
            )

    def config(self, workdir: str, link_within_filesystem: bool) -> str:
        """Write the tool's configuration for this round; return its path."""
        doc = {
            "_managed": "dlc_kill_proof",
            "tiers": self.roots,
            "classes": [
                {"name": d.split("/")[0], "directory": d, "hot_days": h, "warm_days": w, "retention_days": None}
                for d, (h, w) in CLASSES.items()
            ],
            "lock_file": os.path.join(workdir, "lock"),
            "metrics_path": None,
            "link_within_filesystem": link_within_filesystem,
            "buffer_bytes": BUFFER,
        }
        path = os.path.join(workdir, f"round{self.index}.json")
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(doc, handle)
        return path

    def check_after_kill(self) -> tuple[list[str], dict[str, int]]:
        """Failures (lost or corrupt files) and evidence counters of the state a kill left."""
        failures = []
        evidence = {"temporary": 0, "partial_temporary": 0, "two_copies": 0}
        sizes = {rel: exp[3] for rel, exp in self.expected.items()}
        # rel -> {tier: sha256} of every file visible under its real name
        visible: dict[str, dict[str, str]] = {}
        for tier, root in self.roots.items():
            for path in all_files(root):
                name = os.path.basename(path)
                if is_temporary(name):
                    evidence["temporary"] = 1
                    real = os.path.join(os.path.dirname(os.path.relpath(path, root)), name[1:].rsplit(".", 2)[0])
                    if real in sizes and os.path.getsize(path) < sizes[real]:
                        evidence["partial_temporary"] = 1
                    continue
                rel = os.path.relpath(path, root)
                if rel not in self.expected:
                    failures.append(f"round {self.index}: unexpected file {tier}/{rel}")
                    continue
                visible.setdefault(rel, {})[tier] = sha256(path)
                if visible[rel][tier] != self.expected[rel][1]:
                    failures.append(f"round {self.index}: {tier}/{rel} is visible with other content")
        for rel, (_tier, digest, _mtime, _size) in self.expected.items():
            held = visible.get(rel, {})
            if digest not in held.values():
                failures.append(f"round {self.index}: {rel} lost (no complete copy in any tier)")
            if len(held) > 1:
                evidence["two_copies"] = 1
        return failures, evidence

    def check_final(self) -> list[str]:
        """Failures of the state after a completing run."""
        failures = []
        found: dict[str, str] = {}
        for tier, root in self.roots.items():
            for path in all_files(root):
                rel = os.path.relpath(path, root)
                if is_temporary(os.path.basename(path)):
                    failures.append(f"round {self.index}: temporary left: {tier}/{rel}")
                    continue
                if rel in found:
                    failures.append(f"round {self.index}: {rel} duplicated in {found[rel]} and {tier}")
                found[rel] = tier
        if sorted(found) != sorted(self.expected):
            failures.append(f"round {self.index}: files appeared or vanished")
        for rel, (tier, digest, mtime_ns, _size) in self.expected.items():
            if found.get(rel) != tier:
                failures.append(f"round {self.index}: {rel} in {found.get(rel)}, expected {tier}")
                continue
            path = os.path.join(self.roots[tier], rel)
            st = os.stat(path)
            if sha256(path) != digest:
                failures.append(f"round {self.index}: {rel} content changed")
            if st.st_mtime_ns != mtime_ns:
                failures.append(f"round {self.index}: {rel} mtime {st.st_mtime_ns} != {mtime_ns}")
            if st.st_nlink != 1:
                failures.append(f"round {self.index}: {rel} has {st.st_nlink} links")
        return failures


def run(args: argparse.Namespace) -> dict:
    """Run the rounds; return the result document."""
    rng = random.Random(args.seed)
    now = time.time()
    os.makedirs(args.workdir, exist_ok=True)
    result: dict = {
        "seed": args.seed,
        "landing_fs": fs_of(args.landing_root),
        "cold_fs": fs_of(args.cold_root),
        "files_per_round": args.files,
        "kills": 0,
        "rounds": 0,
        "kills_leaving_temporary": 0,
        "kills_leaving_partial_temporary": 0,
        "kills_leaving_two_copies": 0,
        "stale_temporaries_removed": 0,
        "tool_runs": 0,
        "copy_rounds": 0,
        "link_rounds": 0,
        "failures": [],
    }
    started = time.monotonic()
    while result["kills"] < args.kills and time.monotonic() - started < args.budget:
        index = result["rounds"]
        tree = Round(index, args.landing_root, args.cold_root, rng, now, args.files)
        # Every third round moves landing -> warm by hard link (one filesystem); the others copy.
        link = index % 3 == 2
        result["link_rounds" if link else "copy_rounds"] += 1
        argv = [args.python, "-I", args.tool, "--config", tree.config(args.workdir, link), "--now", str(now), "move"]
        while True:
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            result["tool_runs"] += 1
            assert proc.stdout is not None
            early: list[str] = []
            if rng.random() < 0.4:
                # Anywhere from the start: interpreter start-up, the temporary sweep, the first file.
                time.sleep(rng.uniform(0.0, args.startup_s))
            else:
                # Start-up time varies under emulation: count logged steps (a sweep, a file) rather than seconds.
                for _ in range(rng.randint(1, 2)):
                    line = proc.stdout.readline()
                    if not line:
                        break
                    early.append(line)
                time.sleep(rng.uniform(0.0, 0.05))
            killing = proc.poll() is None and time.monotonic() - started < args.budget
            if killing:
                proc.send_signal(signal.SIGKILL)
            out, err = proc.communicate()
            out = "".join(early) + out
            result["stale_temporaries_removed"] += out.count("removed stale temporary")
            if proc.returncode == 0:
                break
            if proc.returncode != -signal.SIGKILL:
                result["failures"].append(f"round {index}: tool exited {proc.returncode}: {err.strip()[-500:]}")
                break
            result["kills"] += 1
            failures, evidence = tree.check_after_kill()
            result["failures"].extend(failures)
            result["kills_leaving_temporary"] += evidence["temporary"]
            result["kills_leaving_partial_temporary"] += evidence["partial_temporary"]
            result["kills_leaving_two_copies"] += evidence["two_copies"]
        final = subprocess.run(argv, capture_output=True, text=True, check=False)
        result["tool_runs"] += 1
        result["stale_temporaries_removed"] += final.stdout.count("removed stale temporary")
        if final.returncode != 0:
            result["failures"].append(f"round {index}: final run exited {final.returncode}: {final.stderr[-500:]}")
        result["failures"].extend(tree.check_final())
        for root in tree.roots.values():
            shutil.rmtree(os.path.dirname(root) if root.startswith(args.landing_root) else root, ignore_errors=True)
        result["rounds"] += 1
        if len(result["failures"]) > 50:
            break
    result["seconds"] = round(time.monotonic() - started, 1)
    result["ok"] = not result["failures"] and result["kills"] >= args.min_kills
    return result


def main() -> int:
    """Command-line entry point: print the JSON result, exit 1 on any failure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tool", required=True, help="path of onprem-data-lifecycle")
    parser.add_argument("--python", default=sys.executable, help="interpreter that runs the tool")
    parser.add_argument("--landing-root", required=True, help="directory on the landing filesystem (ext4)")
    parser.add_argument("--cold-root", required=True, help="directory on the cold filesystem (a ZFS dataset)")
    parser.add_argument("--workdir", required=True, help="configurations and the lock file")
    parser.add_argument("--kills", type=int, default=60, help="kills wanted (no new round starts after them)")
    parser.add_argument("--min-kills", type=int, default=50, help="fewer kills than this within the budget fail")
    parser.add_argument("--budget", type=float, default=150.0, help="seconds after which no further kill is sent")
    parser.add_argument("--files", type=int, default=16, help="files per round")
    parser.add_argument("--startup-s", type=float, default=1.5, help="upper bound of the blind kill delay")
    parser.add_argument("--seed", type=int, default=20261125)
    args = parser.parse_args()
    result = run(args)
    sys.stdout.write(json.dumps(result, indent=1, sort_keys=True) + "\n")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
