"""Dashboards as code: the collection's dashboard descriptions built into Grafana's JSON model, the builder's
refusals, and the GPU panels' metric names against the fields the dcgm role makes dcgm-exporter export (checked
in turn against dcgm-exporter's own counters file, tests/unit/fixtures/dcgm/SOURCES.md)."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from ansible_collections.onprem.gpu_server.plugins.module_utils.grafana import dashboard

REPO = Path(__file__).resolve().parents[4]
DASHBOARDS = yaml.safe_load((REPO / "roles/grafana/defaults/main/dashboards.yml").read_text())["grafana_dashboards"]
COUNTERS = yaml.safe_load((REPO / "roles/dcgm/defaults/main.yml").read_text())["dcgm_exporter_counters"]
DCGM_NAMES = set((REPO / "tests/unit/fixtures/dcgm/dcgm-exporter_counters-file_field-names.txt").read_text().split())
# The rules' expressions, without their comments.
ALERT_RULES = "\n".join(
    line
    for line in (REPO / "roles/prometheus/templates/onprem-alerts.rules.yml.j2").read_text().splitlines()
    if not line.lstrip().startswith("#")
)
DCGM_METRIC = re.compile(r"\bDCGM_FI_\w+")


@pytest.mark.parametrize("description", DASHBOARDS, ids=[d["uid"] for d in DASHBOARDS])
def test_each_dashboard_builds_with_ids_and_a_grid_that_do_not_collide(description: dict) -> None:
    model = dashboard.build(description, "onprem-prometheus")
    assert model["uid"] == description["uid"]
    panels = model["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24
        taken = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}
        assert not taken & cells, f"{panel['title']} overlaps another panel"
        cells |= taken
    queries = [p for p in panels if p["type"] != "row"]
    described = [panel for row in description["rows"] for panel in row["panels"]]
    assert [p["targets"][0]["expr"] for p in queries] == [p["expr"] for p in described]
    assert all(p["datasource"] == {"type": "prometheus", "uid": "onprem-prometheus"} for p in queries)
    assert model["templating"]["list"][0]["name"] == "instance"


def test_legend_names_labels() -> None:
    model = dashboard.build(DASHBOARDS[0], "x")
    legends = [p["targets"][0]["legendFormat"] for p in model["panels"] if p["type"] != "row"]
    assert "{{instance}} {{mountpoint}}" in legends


def test_queries_fill_the_variables_as_all_hosts_and_a_rate_window() -> None:
    found = dashboard.queries(DASHBOARDS[0])
    assert all("$" not in q["expr"] for q in found)
    assert any('instance=~".+"' in q["expr"] and "[5m]" in q["expr"] for q in found)


def _broken(path: str, value) -> dict:
    description = copy.deepcopy(DASHBOARDS[0])
    panel = description["rows"][0]["panels"][0]
    if value is None:
        del panel[path]
    else:
        panel[path] = value
    return description


@pytest.mark.parametrize(
    ("description", "message"),
    [
        (_broken("expr", None), "a panel has a PromQL expr"),
        (_broken("colour", "red"), "unknown keys ['colour']"),
        (_broken("expr", 'up{instance=~"$host"}'), "unknown variables ['host']"),
        (_broken("legend", "{{instance}}"), "legend is a list of label names"),
        (_broken("type", "piechart"), "type 'piechart'"),
        ({"uid": "has space", "title": "t", "rows": []}, "dashboard uid 'has space'"),
    ],
    ids=["no-query", "unknown-key", "unknown-variable", "legend-format", "panel-type", "uid"],
)
def test_refusals_name_the_dashboard_and_panel(description: dict, message: str) -> None:
    with pytest.raises(dashboard.DashboardError, match=re.escape(message)):
        dashboard.build(description, "onprem-prometheus")


def test_gpu_panels_read_only_what_the_dcgm_role_exports() -> None:
    exported = {c["field"] for c in COUNTERS}
    for description in DASHBOARDS:
        for query in dashboard.queries(description):
            names = set(DCGM_METRIC.findall(query["expr"]))
            assert bool(names) == query["gpu"], f"{query['panel']}: gpu marks exactly the DCGM panels"
            assert names <= exported, f"{query['panel']}: {sorted(names - exported)} not in dcgm_exporter_counters"


def test_gpu_alerts_read_only_what_the_dcgm_role_exports() -> None:
    names = set(DCGM_METRIC.findall(ALERT_RULES))
    assert names, "the alert rules read DCGM metrics"
    assert names <= {c["field"] for c in COUNTERS}


def test_every_exported_field_is_one_dcgm_exporter_knows() -> None:
    unknown = {c["field"] for c in COUNTERS} - DCGM_NAMES
    assert not unknown
    # The fields the alerts need that dcgm-exporter's own file leaves commented out are turned on here.
    assert {"DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "DCGM_FI_DEV_XID_ERRORS", "DCGM_FI_DEV_GPU_TEMP"} <= {
        c["field"] for c in COUNTERS
    }
