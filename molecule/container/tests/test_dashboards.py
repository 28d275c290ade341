"""The dashboards the grafana role provisions, as files on the host, and every panel's query parsed and run by the
container's live Prometheus (the lab test checks that each one finds data on the trading VM)."""

from __future__ import annotations

import importlib.util
import json
import pathlib
import urllib.parse

import yaml
from mailspool import http_get

REPO = pathlib.Path(__file__).resolve().parents[3]
_SPEC = importlib.util.spec_from_file_location("dashboard", REPO / "plugins/module_utils/grafana/dashboard.py")
assert _SPEC is not None and _SPEC.loader is not None
DASHBOARD = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(DASHBOARD)
DESCRIPTIONS = yaml.safe_load((REPO / "roles/grafana/defaults/main/dashboards.yml").read_text())["grafana_dashboards"]


def test_the_provisioned_files_are_the_described_dashboards(host) -> None:
    for description in DESCRIPTIONS:
        path = f"/var/lib/grafana/dashboards/onprem/{description['uid']}.json"
        assert json.loads(host.file(path).content_string) == DASHBOARD.build(description, "onprem-prometheus")
    provider = yaml.safe_load(host.file("/etc/grafana/provisioning/dashboards/onprem.yaml").content_string)
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards/onprem"


def test_prometheus_accepts_every_panel_query(host) -> None:
    answers = {}
    for description in DESCRIPTIONS:
        for query in DASHBOARD.queries(description):
            url = "http://127.0.0.1:9090/api/v1/query?" + urllib.parse.urlencode({"query": query["expr"]})
            answers[f"{query['dashboard']}/{query['panel']}"] = json.loads(http_get(host, url))["status"]
    print(answers)
    assert set(answers.values()) == {"success"}
