"""Monitoring on the lab VM's real kernel: every dashboard panel's query returns data from the trading VM's own
Prometheus (md arrays, OpenZFS pools and ARC, the health checks' and the data lifecycle's metrics), the GPU
panels (no GPU here) are listed and return nothing, and what the monitoring processes cost is measured."""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

testinfra_hosts = ["ansible://lab-trading"]

PROJECT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[3]))
_SPEC = importlib.util.spec_from_file_location("dashboard", PROJECT / "plugins/module_utils/grafana/dashboard.py")
assert _SPEC is not None and _SPEC.loader is not None
DASHBOARD = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(DASHBOARD)
DESCRIPTIONS = yaml.safe_load((PROJECT / "roles/grafana/defaults/main/dashboards.yml").read_text())[
    "grafana_dashboards"
]
QUERIES = [q for d in DESCRIPTIONS for q in DASHBOARD.queries(d)]
# Runs on the VM: each query against the local Prometheus; the number of series, or the error.
QUERY_PROGRAM = """
import base64, json, sys, urllib.parse, urllib.request
out = {}
for expr in json.loads(base64.b64decode(sys.argv[1])):
    url = "http://127.0.0.1:9090/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    body = json.load(urllib.request.urlopen(url, timeout=20))
    out[expr] = len(body["data"]["result"]) if body["status"] == "success" else "error: " + body.get("error", "")
print(json.dumps(out))
"""
MONITORING_SERVICES = ["prometheus-node-exporter", "prometheus", "prometheus-alertmanager"]


def run_queries(host: Any, exprs: list[str]) -> dict[str, Any]:
    encoded = base64.b64encode(json.dumps(exprs).encode()).decode()
    return json.loads(host.check_output("python3 -c %s %s", QUERY_PROGRAM, encoded))


@pytest.fixture(scope="module")
def series(host: Any) -> dict[str, Any]:
    """Every pool scrubbed once (the last-scrub series needs a finished scrub), the health checks and the mover
    run once, then the panels queried until each has data or three minutes have passed."""
    with host.sudo():
        for pool in host.check_output("zpool list -H -o name").split():
            host.run_expect([0], f"zpool scrub -w {pool}")
        host.run_expect([0], "systemctl start onprem-health-check-pools.service")
        daily = host.run("systemctl start onprem-health-check-daily.service")
        print(f"daily health checks: rc {daily.rc}")
        print(host.check_output("journalctl -u onprem-health-check-daily.service -n 20 -o cat --no-pager"))
        host.run_expect([0], "systemctl start onprem-data-lifecycle-move.service")
    exprs = [q["expr"] for q in QUERIES if not q["gpu"]]
    deadline = time.monotonic() + 180
    while True:
        found = run_queries(host, exprs)
        if all(isinstance(n, int) and n > 0 for n in found.values()) or time.monotonic() > deadline:
            break
        time.sleep(10)
    found.update(run_queries(host, [q["expr"] for q in QUERIES if q["gpu"]]))
    return found


def test_every_dashboard_panel_returns_data_from_the_live_prometheus(series: dict[str, Any]) -> None:
    rows = []
    for q in QUERIES:
        if not q["gpu"]:
            rows.append(f"{q['dashboard']:16} {q['panel']:32} {series[q['expr']]}")
    print("\n".join(rows))
    empty = [
        f"{q['dashboard']}/{q['panel']}: {series[q['expr']]}"
        for q in QUERIES
        if not q["gpu"] and series[q["expr"]] in (0,)
    ]
    errors = [
        f"{q['dashboard']}/{q['panel']}: {series[q['expr']]}" for q in QUERIES if isinstance(series[q["expr"]], str)
    ]
    assert not errors, errors
    assert not empty, f"panels without data on the lab VM: {empty}"


def test_gpu_panels_are_valid_queries_listed_as_gpu_only(series: dict[str, Any]) -> None:
    gpu = [q for q in QUERIES if q["gpu"]]
    print("GPU-only panels (no GPU on the lab VM): " + ", ".join(f"{q['dashboard']}/{q['panel']}" for q in gpu))
    assert gpu
    # Prometheus parses them (an error would be a string) and, with no GPU here, finds no series.
    assert all(series[q["expr"]] == 0 for q in gpu), {q["panel"]: series[q["expr"]] for q in gpu}


def test_the_dashboards_grafana_would_load_are_on_the_host(host: Any) -> None:
    for description in DESCRIPTIONS:
        model = json.loads(host.file(f"/var/lib/grafana/dashboards/onprem/{description['uid']}.json").content_string)
        assert model == DASHBOARD.build(description, "onprem-prometheus")
    datasource = yaml.safe_load(host.file("/etc/grafana/provisioning/datasources/onprem.yaml").content_string)
    assert datasource["datasources"][0]["uid"] == "onprem-prometheus"
    assert datasource["datasources"][0]["url"] == "http://127.0.0.1:9090"


def test_what_the_monitoring_processes_cost(host: Any) -> None:
    """Resident memory and CPU time since start of each process (a measurement, printed for the docs)."""
    lines = []
    for name in MONITORING_SERVICES:
        pid = host.check_output(f"systemctl show -P MainPID {name}.service")
        assert pid not in ("", "0"), f"{name} is not running"
        out = host.check_output(f"ps -p {pid} -o rss=,times=,etimes=").split()
        rss_kib, cpu_s, elapsed_s = (int(v) for v in out)
        lines.append(
            f"{name}: RSS {rss_kib / 1024:.1f} MiB, CPU {cpu_s} s in {elapsed_s} s up "
            f"({100.0 * cpu_s / max(elapsed_s, 1):.2f} % of one core)"
        )
    print("\n".join(lines))
