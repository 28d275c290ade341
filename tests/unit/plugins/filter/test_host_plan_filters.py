"""host_plan_report / host_plan_html / host_plan_text filters and the plan.yml playbook."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.onprem.gpu_server.plugins.filter.host_plan_html import host_plan_html
from ansible_collections.onprem.gpu_server.plugins.filter.host_plan_report import host_plan_report
from ansible_collections.onprem.gpu_server.plugins.filter.host_plan_text import host_plan_text

REPO = Path(__file__).resolve().parents[4]
XC740XD = REPO / "inventories" / "examples" / "xc740xd" / "host_vars" / "xc740xd" / "host_plan.yml"
SVG = "{http://www.w3.org/2000/svg}"


def plan() -> dict[str, Any]:
    return yaml.safe_load(XC740XD.read_text())["host_plan"]


def test_html_is_well_formed_and_draws_the_host() -> None:
    page = host_plan_html(host_plan_report(plan()), "xc740xd")
    root = ET.fromstring(page.split("\n", 1)[1])
    svg = root.find(f".//{SVG}svg")
    assert svg is not None
    texts = [t.text or "" for t in svg.iter(f"{SVG}text")]
    assert "NUMA node 0: 26 cores" in texts and "NUMA node 1: 26 cores" in texts
    assert any(t.startswith("gpu2  NVIDIA RTX 4000 Ada Generation") for t in texts)
    assert any(t.startswith("llm-inference: cores 28-43 (node 1)") for t in texts)
    assert any(t == "lake (zfs)" for t in texts)
    titles = [t.text for t in svg.iter(f"{SVG}title")]
    assert "core 28: llm-inference" in titles
    assert page.count('class="error"') == len(host_plan_report(plan())["errors"])


def test_html_escapes_plan_text() -> None:
    hostile = plan()
    hostile["hardware"]["gpus"]["gpu1"]["model"] = '<script>alert("x")</script> & co'
    page = host_plan_html(host_plan_report(hostile), "<b>host</b>")
    assert "<script>" not in page and "<b>host</b>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co" in page
    ET.fromstring(page.split("\n", 1)[1])


def test_cores_given_twice_are_drawn_red() -> None:
    clash = plan()
    clash["intent"]["vms"]["research"]["cores"] = "40-47"
    page = host_plan_html(host_plan_report(clash))
    assert 'fill="#d62728" stroke="#5f6368"><title>core 40: llm-inference, research</title>' in page


def test_text_lists_findings_then_tables() -> None:
    text = host_plan_text(host_plan_report(plan()), "xc740xd")
    lines = text.splitlines()
    assert lines[0] == "Host plan report for xc740xd (profile trading_server)"
    assert lines[1].startswith("FAILED: 18 error(s)")
    assert "E host_plan.intent.llm_deployments.llama405b-2bit [llm_fit]" in lines
    assert text.index("Errors:") < text.index("Warnings:") < text.index("LLM deployments")
    assert all(line == line.rstrip() for line in lines)


def test_schema_errors_render_without_tables() -> None:
    broken = copy.deepcopy(plan())
    broken["hardware"]["cpu"]["sockets"] = "two"
    report = host_plan_report(broken)
    text = host_plan_text(report)
    assert "E host_plan.hardware.cpu.sockets [schema]" in text
    assert "<svg" not in host_plan_html(report)


@pytest.mark.parametrize("func", [host_plan_html, host_plan_text])
def test_renderers_refuse_non_reports(func: Any) -> None:
    with pytest.raises(AnsibleFilterError, match="expected the result of host_plan_report"):
        func(["not a report"])


def _ansible_playbook() -> str | None:
    local = Path(sys.executable).parent / "ansible-playbook"
    return str(local) if local.exists() else shutil.which("ansible-playbook")


@pytest.mark.skipif(_ansible_playbook() is None, reason="ansible-playbook not installed")
def test_plan_playbook_fails_on_the_xc740xd_example(tmp_path: Path) -> None:
    out = tmp_path / "reports"
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    proc = subprocess.run(
        [
            _ansible_playbook(),
            "playbooks/plan.yml",
            "-i",
            "inventories/examples/xc740xd",
            "-e",
            f"plan_report_dir={out}",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output
    assert "E host_plan.intent.llm_deployments.llama405b-2bit [llm_fit]" in output
    assert "the host plan has 18 error(s)" in output
    assert "xc740xd                    : ok=7    changed=4    unreachable=0    failed=1" in output
    report = json.loads((out / "xc740xd.json").read_text())
    assert report["ok"] is False and len(report["errors"]) == 18
    assert (out / "xc740xd.html").read_text().startswith("<!DOCTYPE html>")
