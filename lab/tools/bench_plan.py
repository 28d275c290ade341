"""Benchmark: validate a generated 200-host inventory with the plan report.

Usage (from the repo root)::

    .venv/bin/python lab/tools/bench_plan.py [--hosts 200] [--repeat 5]

The inventory is generated from the two example host plans: each host is a
copy of one of them with its own GPU PCI addresses, disk ids, VM names and
memory size, so no two hosts are the same object and no result can be reused.
For every repetition the whole inventory is validated (schema + every planning
calculation, the same ``build_report`` that ``playbooks/plan.yml`` runs per
host); the median wall time is reported and written to
``docs/measurements/plan-200-hosts.json``.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / ".cache" / "collections"))

from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.report import build_report

EXAMPLES = [
    ROOT / "inventories/examples/xc740xd/host_vars/xc740xd/host_plan.yml",
    ROOT / "inventories/examples/rtx4090/host_vars/rtx4090/host_plan.yml",
]


def generate(hosts: int) -> dict[str, dict[str, Any]]:
    """Return ``{hostname: host_plan}`` for ``hosts`` distinct hosts."""
    bases = [yaml.safe_load(path.read_text())["host_plan"] for path in EXAMPLES]
    inventory = {}
    for index in range(hosts):
        plan = copy.deepcopy(bases[index % len(bases)])
        hardware = plan["hardware"]
        for gpu_index, gpu in enumerate(hardware.get("gpus", {}).values()):
            bus = f"{(index * 8 + gpu_index) % 256:02x}"
            gpu["pci_address"] = f"0000:{bus}:00.0"
            gpu["functions"] = [f"0000:{bus}:00.0", f"0000:{bus}:00.1"]
        for disk in hardware.get("disks", {}).values():
            disk["id"] = f"{disk['id']}-h{index:03d}"
        hardware["memory"]["total_gb"] += (index % 4) * 64
        vms = plan.get("intent", {}).get("vms", {})
        plan.setdefault("intent", {})["vms"] = {f"{name}-{index % 7}": vm for name, vm in vms.items()}
        inventory[f"host{index:03d}"] = plan
    return inventory


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    inventory = generate(args.hosts)
    times = []
    findings = 0
    for _ in range(args.repeat):
        start = time.perf_counter()
        reports = [build_report(plan) for plan in inventory.values()]
        times.append(time.perf_counter() - start)
        findings = sum(len(r["errors"]) + len(r["warnings"]) for r in reports)
    median = statistics.median(times)
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "hosts": args.hosts,
        "repeat": args.repeat,
        "runs_s": [round(t, 3) for t in times],
        "median_s": round(median, 3),
        "findings_per_run": findings,
    }
    out = ROOT / "docs" / "measurements" / f"plan-{args.hosts}-hosts.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{args.hosts} hosts: median {median:.3f} s over {args.repeat} runs ({findings} findings per run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
