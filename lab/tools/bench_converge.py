"""Benchmark a no-change converge of the lab and the lab VM's boot time.

Usage (from the repo root, normally through ``./dev.sh bench``)::

    python lab/tools/bench_converge.py [--runs N] [--vm trading] [--skip-boot]

For the converge benchmark the VM is first converged once, then the same
playbook is run N times per connection mode and the median wall time of each
mode is reported:

* ``stock``      -- ansible defaults: no pipelining, linear strategy
* ``pipelining`` -- the repository's ansible.cfg (pipelining on)
* ``mitogen``    -- pipelining plus the mitogen_linear strategy

Each run must report ``changed=0``; a run that changes something is an error,
because then the numbers would not describe a no-change converge. Results go
to ``docs/measurements/*.json`` and a Markdown table is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"
OUT_DIR = ROOT / "docs" / "measurements"
LABVM = [sys.executable, str(ROOT / "lab" / "vm" / "labvm.py")]
PLAYBOOKS = {"trading": "playbooks/trading_server.yml", "workstation": "playbooks/ai_workstation.yml"}
HOSTS = {"trading": "lab-trading", "workstation": "lab-workstation"}
RECAP = re.compile(r"changed=(\d+).*?failed=(\d+)")


def mitogen_strategy_dir() -> str:
    out = subprocess.run(
        [str(VENV_BIN / "python"), "-c", "import ansible_mitogen; print(ansible_mitogen.__file__)"],
        check=True,
        capture_output=True,
        text=True,
    )
    return os.path.join(os.path.dirname(out.stdout.strip()), "plugins", "strategy")


def mode_env(mode: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_STRATEGY")}
    env["PATH"] = f"{VENV_BIN}:{env.get('PATH', '')}"
    if mode == "stock":
        env["ANSIBLE_PIPELINING"] = "False"
    elif mode == "pipelining":
        env["ANSIBLE_PIPELINING"] = "True"
    elif mode == "mitogen":
        env["ANSIBLE_PIPELINING"] = "True"
        env["ANSIBLE_STRATEGY_PLUGINS"] = mitogen_strategy_dir()
        env["ANSIBLE_STRATEGY"] = "mitogen_linear"
    else:
        raise ValueError(f"unknown mode {mode!r}")
    return env


def converge(vm: str, mode: str) -> tuple[float, int]:
    """Run the VM's profile playbook once; return (seconds, changed count)."""
    cmd = [str(VENV_BIN / "ansible-playbook"), "-i", "inventories/lab/hosts.yml", "--limit", HOSTS[vm], PLAYBOOKS[vm]]
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=mode_env(mode), capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"converge failed in mode {mode} (exit {proc.returncode})")
    match = RECAP.search(proc.stdout.split("PLAY RECAP")[-1])
    if not match:
        raise SystemExit("no PLAY RECAP in ansible-playbook output")
    return elapsed, int(match.group(1))


def bench_converge(vm: str, runs: int) -> dict[str, object]:
    converge(vm, "mitogen")  # bring the host to the converged state first
    results: dict[str, object] = {}
    for mode in ("stock", "pipelining", "mitogen"):
        times = []
        for _ in range(runs):
            seconds, changed = converge(vm, mode)
            if changed:
                raise SystemExit(f"mode {mode}: a no-change converge reported changed={changed}")
            times.append(round(seconds, 2))
        results[mode] = {"runs_s": times, "median_s": round(statistics.median(times), 2)}
        print(f"{mode:<11} median {statistics.median(times):6.1f} s  runs {times}", flush=True)
    return results


def bench_boot(vm: str, runs: int) -> dict[str, object]:
    times = []
    for _ in range(runs):
        subprocess.run([*LABVM, "stop", vm], cwd=ROOT, check=True, capture_output=True)
        start = time.monotonic()
        subprocess.run([*LABVM, "start", vm], cwd=ROOT, check=True, capture_output=True)
        times.append(round(time.monotonic() - start, 2))
        print(f"boot-to-ssh {times[-1]:6.1f} s", flush=True)
    return {"runs_s": times, "median_s": round(statistics.median(times), 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--vm", choices=sorted(PLAYBOOKS), default="trading")
    parser.add_argument("--skip-boot", action="store_true")
    args = parser.parse_args()

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    meta = {
        "date": time.strftime("%Y-%m-%d"),
        "host": f"{platform.node()} {os.cpu_count()} cpus",
        "vm": vm_desc(args.vm),
        "runs": args.runs,
    }
    if not args.skip_boot:
        boot = bench_boot(args.vm, args.runs)
        (OUT_DIR / "vm-boot.json").write_text(json.dumps({**meta, "boot_to_ssh": boot}, indent=2) + "\n")
    else:
        subprocess.run([*LABVM, "start", args.vm], cwd=ROOT, check=True)
    conv = bench_converge(args.vm, args.runs)
    (OUT_DIR / "converge-base.json").write_text(json.dumps({**meta, "no_change_converge": conv}, indent=2) + "\n")
    print("\n| mode | median (s) | runs (s) |\n|---|---|---|")
    for mode, res in conv.items():
        assert isinstance(res, dict)
        print(f"| {mode} | {res['median_s']} | {', '.join(map(str, res['runs_s']))} |")
    return 0


def vm_desc(vm: str) -> str:
    return f"lab VM '{vm}' (QEMU q35, TCG)"


if __name__ == "__main__":
    sys.exit(main())
