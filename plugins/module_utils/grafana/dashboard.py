# Copyright: onprem.gpu_server maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A Grafana dashboard (JSON model) from a compact description: rows of panels, each one PromQL query.

A description::

    {"uid": "onprem-hosts", "title": "Hosts", "rows": [
        {"title": "CPU and memory", "panels": [
            {"title": "CPU busy", "expr": "1 - avg by (instance) (rate(...))", "unit": "percentunit"},
        ]},
    ]}

Panel keys: ``title`` and ``expr`` (required), ``unit`` (a Grafana unit, default ``short``), ``legend`` (the
label names that tell the series apart, e.g. ``[instance, device]``), ``type`` (``timeseries`` or ``stat``),
``gpu`` (true: the series exist only where a GPU and its exporter do). Queries may use ``$instance`` (the
dashboard's host variable, a regex) and ``$__rate_interval``; ``queries`` gives each panel's query with both
replaced, as the tests send them to a live Prometheus.
"""

from __future__ import annotations

import re
from typing import Any

PANEL_TYPES = ("timeseries", "stat")
PANEL_KEYS = {"title", "expr", "unit", "legend", "type", "gpu"}
VARIABLES = re.compile(r"\$(?:\{)?(\w+)")
KNOWN_VARIABLES = {"instance", "__rate_interval"}
WIDTH = {"timeseries": 12, "stat": 6}
HEIGHT = {"timeseries": 8, "stat": 4}
SCHEMA_VERSION = 39


class DashboardError(ValueError):
    """The description cannot become a dashboard."""


def _check(description: Any) -> None:
    if not isinstance(description, dict):
        raise DashboardError("a dashboard description is a mapping")
    for key in ("uid", "title", "rows"):
        if key not in description:
            raise DashboardError(f"dashboard {description.get('uid', '?')}: missing {key!r}")
    if not re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", str(description["uid"])):
        raise DashboardError(f"dashboard uid {description['uid']!r}: 1-40 letters, digits, - or _")
    for r, row in enumerate(description["rows"]):
        where = f"dashboard {description['uid']} row {r}"
        if not isinstance(row, dict) or not isinstance(row.get("title"), str) or not row.get("panels"):
            raise DashboardError(f"{where}: a row has a title and panels")
        for p, panel in enumerate(row["panels"]):
            at = f"{where} panel {p} ({panel.get('title', '?') if isinstance(panel, dict) else '?'})"
            if not isinstance(panel, dict) or not isinstance(panel.get("title"), str):
                raise DashboardError(f"{at}: a panel has a title")
            if not isinstance(panel.get("expr"), str) or not panel["expr"].strip():
                raise DashboardError(f"{at}: a panel has a PromQL expr")
            unknown = set(panel) - PANEL_KEYS
            if unknown:
                raise DashboardError(f"{at}: unknown keys {sorted(unknown)} (known: {sorted(PANEL_KEYS)})")
            legend = panel.get("legend", [])
            if not isinstance(legend, list) or not all(isinstance(n, str) and re.fullmatch(r"\w+", n) for n in legend):
                raise DashboardError(f"{at}: legend is a list of label names, got {legend!r}")
            if panel.get("type", "timeseries") not in PANEL_TYPES:
                raise DashboardError(f"{at}: type {panel['type']!r} is not one of {PANEL_TYPES}")
            variables = set(VARIABLES.findall(panel["expr"])) - KNOWN_VARIABLES
            if variables:
                raise DashboardError(f"{at}: unknown variables {sorted(variables)} (known: {sorted(KNOWN_VARIABLES)})")


def build(description: dict[str, Any], datasource_uid: str) -> dict[str, Any]:
    """The dashboard's JSON model for file provisioning (ids and grid positions computed)."""
    _check(description)
    datasource = {"type": "prometheus", "uid": datasource_uid}
    panels: list[dict[str, Any]] = []
    y = 0
    next_id = 1
    for row in description["rows"]:
        panels.append(
            {
                "id": next_id,
                "type": "row",
                "title": row["title"],
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                "panels": [],
            }
        )
        next_id += 1
        y += 1
        x = 0
        line_height = 0
        for panel in row["panels"]:
            kind = panel.get("type", "timeseries")
            width, height = WIDTH[kind], HEIGHT[kind]
            if x + width > 24:
                x, y, line_height = 0, y + line_height, 0
            panels.append(
                {
                    "id": next_id,
                    "type": kind,
                    "title": panel["title"],
                    "datasource": datasource,
                    "gridPos": {"h": height, "w": width, "x": x, "y": y},
                    "fieldConfig": {"defaults": {"unit": panel.get("unit", "short")}, "overrides": []},
                    "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}}
                    if kind == "timeseries"
                    else {"reduceOptions": {"calcs": ["lastNotNull"]}},
                    "targets": [
                        {
                            "refId": "A",
                            "datasource": datasource,
                            "expr": panel["expr"],
                            "legendFormat": " ".join("{{" + name + "}}" for name in panel.get("legend", [])),
                        }
                    ],
                }
            )
            next_id += 1
            x += width
            line_height = max(line_height, height)
        y += line_height
    return {
        "uid": description["uid"],
        "title": description["title"],
        "tags": list(description.get("tags", ["onprem"])),
        "timezone": "browser",
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "editable": False,
        "refresh": description.get("refresh", "1m"),
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "instance",
                    "label": "host",
                    "type": "query",
                    "datasource": datasource,
                    "query": {"query": 'label_values(up{job="node"}, instance)', "refId": "instance"},
                    "definition": 'label_values(up{job="node"}, instance)',
                    "includeAll": True,
                    "multi": True,
                    "allValue": ".+",
                    "current": {"text": "All", "value": "$__all"},
                    "refresh": 2,
                }
            ]
        },
        "panels": panels,
    }


def queries(description: dict[str, Any], rate_interval: str = "5m") -> list[dict[str, Any]]:
    """Every panel's query as a live Prometheus takes it: $instance matching every host, $__rate_interval given."""
    _check(description)
    out = []
    for row in description["rows"]:
        for panel in row["panels"]:
            expr = panel["expr"].replace("$__rate_interval", rate_interval).replace("${instance}", ".+")
            out.append(
                {
                    "dashboard": description["uid"],
                    "panel": panel["title"],
                    "expr": expr.replace("$instance", ".+"),
                    "gpu": bool(panel.get("gpu", False)),
                }
            )
    return out
