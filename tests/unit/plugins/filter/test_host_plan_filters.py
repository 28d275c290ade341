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


RTX4090 = REPO / "inventories" / "examples" / "rtx4090" / "host_vars" / "rtx4090" / "host_plan.yml"


def svg_of(page: str) -> ET.Element:
    svg = ET.fromstring(page.split("\n", 1)[1]).find(f".//{SVG}svg")
    assert svg is not None
    return svg


def rects(svg: ET.Element) -> dict[str, ET.Element]:
    """Each SVG rect by its tooltip."""
    return {(r.findtext(f"{SVG}title") or ""): r for r in svg.iter(f"{SVG}rect")}


def test_host_reserve_cores_are_drawn_with_an_h() -> None:
    report = host_plan_report(yaml.safe_load(RTX4090.read_text())["host_plan"])
    svg = svg_of(host_plan_html(report, "rtx4090"))
    by_title = rects(svg)
    assert [by_title[f"core {n}: host"].get("fill") for n in range(4)] == ["#9aa0a6"] * 4
    assert by_title["core 4: free"].get("fill") == "#ffffff"
    assert [t.text for t in svg.iter(f"{SVG}text")].count("H") == 4


def test_host_reserve_that_finds_no_core_is_drawn_red_outside_the_nodes() -> None:
    svg = svg_of(host_plan_html(host_plan_report(plan()), "xc740xd"))
    texts = [t.text or "" for t in svg.iter(f"{SVG}text")]
    assert "Not on this host: 4 core(s) the plan asks for" in texts
    assert "host reserve: 4" in texts
    cells = [r for r in svg.iter(f"{SVG}rect") if r.get("stroke-dasharray")]
    assert len(cells) == 4 and {c.get("fill") for c in cells} == {"#d62728"}
    assert cells[0].findtext(f"{SVG}title") == "host reserve: a core it needs is not free on any node"


def test_cores_beyond_the_host_are_drawn_red_with_their_numbers() -> None:
    beyond = plan()
    beyond["intent"]["vms"]["research"]["cores"] = "104-111"
    svg = svg_of(host_plan_html(host_plan_report(beyond)))
    titles = [r.findtext(f"{SVG}title") for r in svg.iter(f"{SVG}rect") if r.get("stroke-dasharray")]
    assert "CPU 104 of research: no such CPU in numa_nodes" in titles
    assert "research: 8 (CPU 104-111)" in [t.text for t in svg.iter(f"{SVG}text")]


def test_memory_and_power_are_bars_against_their_limits() -> None:
    svg = svg_of(host_plan_html(host_plan_report(plan()), "xc740xd"))
    texts = [t.text or "" for t in svg.iter(f"{SVG}text")]
    assert "416 of 320 GiB (130%), 96 over" in texts
    assert "VMs 320 + host reserve 32 + ZFS ARC max 64 = 416 GiB" in texts
    assert "1,564 of 1,600 W (98%)" in texts and "1,700 of 2,100 W (81%)" in texts
    by_title = rects(svg)
    over = by_title["96 GiB over the installed"]
    assert over.get("fill") == "#d62728"
    assert by_title["320 GiB installed"].get("fill") == "#f1f3f4"
    assert by_title["llm-inference: 128 GiB"].get("fill") == "#59a14f"
    # Above 80 % of a PSU or UPS rating is a warning (orange); within it is green.
    assert by_title["1,564 W"].get("fill") == "#ef6c00"
    assert by_title["1,500 W"].get("fill") == "#59a14f"
    over_text = next(t for t in svg.iter(f"{SVG}text") if t.text == "416 of 320 GiB (130%), 96 over")
    assert over_text.get("fill") == "#b71c1c"


def test_circuit_over_its_continuous_limit_is_red() -> None:
    report = host_plan_report(yaml.safe_load(RTX4090.read_text())["host_plan"])
    svg = svg_of(host_plan_html(report, "rtx4090"))
    assert "2,287 of 1,920 W (119%), 367 over" in [t.text for t in svg.iter(f"{SVG}text")]
    assert rects(svg)["2,287 W"].get("fill") == "#d62728"


def test_non_finite_vm_memory_is_drawn_as_written() -> None:
    broken = plan()
    broken["intent"]["vms"]["research"]["memory_gb"] = float("nan")
    page = host_plan_html(host_plan_report(broken), "xc740xd")
    texts = [t.text or "" for t in svg_of(page).iter(f"{SVG}text")]
    assert "research: cores 44-51 (node 1), .nan GiB, no GPU" in texts
    assert "host_plan.intent.vms.research.memory_gb" in page and "expected a finite number, got .nan" in page


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


def _run_plan_playbook(inventory: Path, report_dir: Path) -> tuple[subprocess.CompletedProcess[str], str]:
    """playbooks/plan.yml on ``inventory`` (reports into ``report_dir``): the process and its whole output."""
    proc = subprocess.run(
        [_ansible_playbook(), "playbooks/plan.yml", "-i", str(inventory), "-e", f"plan_report_dir={report_dir}"],
        cwd=REPO,
        env=dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0"),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return proc, proc.stdout + proc.stderr


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


BROKEN_PLAN_EDITS = (
    ("      sockets: 2\n", '      sockets: "two"\n'),
    ("    bmc: iDRAC9 Enterprise\n", "    bmc: [iDRAC9, Enterprise]\n"),
    ("    networks:\n", "    networks: [trading, research]\n    unused_networks:\n"),
)


@pytest.mark.skipif(_ansible_playbook() is None, reason="ansible-playbook not installed")
def test_plan_playbook_messages_name_plain_types_and_values(tmp_path: Path) -> None:
    """Through ansible-core itself: its tagged str/list/dict subclasses must not reach a message."""
    inventory = tmp_path / "inventory"
    host_vars = inventory / "host_vars" / "xc740xd"
    host_vars.mkdir(parents=True)
    (inventory / "hosts.yml").write_text("all:\n  hosts:\n    xc740xd:\n")
    text = XC740XD.read_text()
    for old, new in BROKEN_PLAN_EDITS:
        assert old in text
        text = text.replace(old, new, 1)
    (host_vars / "host_plan.yml").write_text(text)
    proc, output = _run_plan_playbook(inventory, tmp_path)
    assert proc.returncode == 2, output
    assert "_Ansible" not in output
    report = json.loads((tmp_path / "xc740xd.json").read_text())
    messages = {e["path"]: e["message"] for e in report["errors"]}
    assert messages["host_plan.hardware.cpu.sockets"] == "expected integer, got string 'two'"
    assert messages["host_plan.hardware.bmc"] == "expected string, got list ['iDRAC9', 'Enterprise']"
    assert messages["host_plan.intent.networks"] == "expected a mapping of names, got list ['trading', 'research']"


@pytest.mark.skipif(_ansible_playbook() is None, reason="ansible-playbook not installed")
def test_plan_playbook_reports_nan_with_the_users_path_and_keeps_other_findings(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory"
    host_vars = inventory / "host_vars" / "xc740xd"
    host_vars.mkdir(parents=True)
    (inventory / "hosts.yml").write_text("all:\n  hosts:\n    xc740xd:\n")
    text = XC740XD.read_text()
    old = '        cores: "44-51"\n        memory_gb: 32\n'
    assert old in text
    (host_vars / "host_plan.yml").write_text(text.replace(old, '        cores: "44-51"\n        memory_gb: .nan\n'))
    proc, output = _run_plan_playbook(inventory, tmp_path)
    assert proc.returncode == 2, output
    assert "host_plan.intent.vms.research.memory_gb: expected a finite number, got .nan" in output
    assert "memory_gib" not in output
    report = json.loads((tmp_path / "xc740xd.json").read_text())
    checks = {e["check"] for e in report["errors"]}
    assert {"schema", "numa_pinning", "zfs", "llm_fit"} <= checks
