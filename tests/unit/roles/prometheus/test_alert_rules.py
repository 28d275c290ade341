"""The prometheus role's alert rules, rendered with plain Jinja2 and the role's defaults, judged by promtool.

promtool comes from Debian 12's prometheus package (the version the role installs): lab/tools/prometheus-tools.sh
unpacks it into .cache/tools/. Without it these tests fail rather than skip, so a missing tool cannot pass CI.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml
from fixtures import tools

REPO_ROOT = Path(__file__).resolve().parents[4]
ROLE = REPO_ROOT / "roles" / "prometheus"
TEMPLATE = ROLE / "templates" / "onprem-alerts.rules.yml.j2"
DEFAULTS = ROLE / "defaults" / "main" / "alerts.yml"
RULE_TESTS = REPO_ROOT / "tests" / "prometheus" / "onprem-alerts.test.yml"
# The name the test file's rule_files expects beside it.
RULES_NAME = "onprem-alerts.rules.yml"
# HAProxy's exporter as Debian 12's haproxy writes it (how it was recorded: the file's header).
HAPROXY_RECORDING = REPO_ROOT / "tests" / "unit" / "fixtures" / "haproxy" / "metrics-2.6.12.txt"
SEVERITIES = {"warning", "critical"}
ANNOTATIONS = {"summary", "description", "runbook"}


def promtool() -> str:
    """The promtool to judge with; fails (never skips) without one."""
    return tools.require("promtool", REPO_ROOT)


def defaults() -> dict[str, Any]:
    return yaml.safe_load(DEFAULTS.read_text(encoding="utf-8"))


def render(**overrides: Any) -> str:
    """The rules file as the template renders with the defaults: no Ansible filter may be needed."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, trim_blocks=True, keep_trailing_newline=True)
    return env.from_string(TEMPLATE.read_text(encoding="utf-8")).render(**(defaults() | overrides))


def rules(text: str) -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(text)["groups"] for rule in group["rules"]]


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False, timeout=300)


def output(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"


def test_rules_pass_promtool_check(tmp_path: Path) -> None:
    text = render()
    (tmp_path / RULES_NAME).write_text(text, encoding="utf-8")
    result = run([promtool(), "check", "rules", "--lint=all", "--lint-fatal", RULES_NAME], tmp_path)
    assert result.returncode == 0, output(result)
    assert f"SUCCESS: {len(rules(text))} rules found" in result.stdout, output(result)


def test_promtool_unit_tests_pass(tmp_path: Path) -> None:
    (tmp_path / RULES_NAME).write_text(render(), encoding="utf-8")
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    result = run([promtool(), "test", "rules", RULE_TESTS.name], tmp_path)
    assert result.returncode == 0, output(result)
    assert "SUCCESS" in result.stdout, output(result)


def recorded_series(path: Path, **labels: str) -> list[dict[str, str]]:
    """Each sample line of a recorded exposition as a promtool input series holding its value, with the labels a
    scrape adds."""
    extra = ", ".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    series = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        metric, value = line.rsplit(" ", 1)
        name, brace, rest = metric.partition("{")
        selector = f"{name}{{{extra}, {rest}" if brace else f"{name}{{{extra}}}"
        series.append({"series": selector, "values": f"{value}x30"})
    return series


def test_the_llm_alerts_read_haproxy_as_it_writes_its_metrics(tmp_path: Path) -> None:
    # Replica onprem-llm-tiny-2 and backend llm_dead's only replica were down when recorded: those two replicas
    # and that one deployment alert, and nothing else does. The labels are what this case is about: the rules'
    # annotations (checked in tests/prometheus) are left out.
    doc = yaml.safe_load(render())
    for group in doc["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / RULES_NAME).write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    replica = {"severity": "warning", "instance": "lab", "job": "haproxy", "state": "DOWN"}
    dead = replica | {"proxy": "llm_dead", "server": "onprem-llm-dead-1", "deployment": "dead"}
    tiny = replica | {"proxy": "llm_tiny", "server": "onprem-llm-tiny-2", "deployment": "tiny"}
    cases = {
        "tests": [
            {
                "name": "recorded HAProxy 2.6.12 series",
                "interval": "1m",
                "input_series": recorded_series(HAPROXY_RECORDING, instance="lab", job="haproxy"),
                "alert_rule_test": [
                    {
                        "eval_time": "11m",
                        "alertname": "LLMReplicaDown",
                        "exp_alerts": [{"exp_labels": dead}, {"exp_labels": tiny}],
                    },
                    {
                        "eval_time": "11m",
                        "alertname": "LLMDeploymentDown",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "severity": "critical",
                                    "instance": "lab",
                                    "job": "haproxy",
                                    "proxy": "llm_dead",
                                    "deployment": "dead",
                                }
                            }
                        ],
                    },
                ],
            }
        ],
        "rule_files": [RULES_NAME],
        "evaluation_interval": "1m",
    }
    assert len(cases["tests"][0]["input_series"]) == 21
    (tmp_path / "recorded.test.yml").write_text(yaml.safe_dump(cases), encoding="utf-8")
    result = run([promtool(), "test", "rules", "recorded.test.yml"], tmp_path)
    assert result.returncode == 0, output(result)
    assert "SUCCESS" in result.stdout, output(result)


def test_a_broken_expression_is_rejected_by_name(tmp_path: Path) -> None:
    doc = yaml.safe_load(render())
    victim = doc["groups"][0]["rules"][0]
    victim["expr"] = "up =="
    (tmp_path / RULES_NAME).write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    result = run([promtool(), "check", "rules", RULES_NAME], tmp_path)
    assert result.returncode != 0, output(result)
    message = result.stdout + result.stderr
    assert victim["alert"] in message and "parse error" in message, output(result)


def test_every_alert_keeps_the_contract() -> None:
    seen: set[tuple[str, str]] = set()
    for rule in rules(render()):
        name = rule.get("alert")
        assert name, f"a recording rule or a rule without a name: {rule}"
        severity = rule.get("labels", {}).get("severity")
        assert severity in SEVERITIES, f"{name}: severity {severity!r}"
        assert (name, severity) not in seen, f"{name}: two {severity} rules"
        seen.add((name, severity))
        annotations = rule.get("annotations", {})
        assert set(annotations) == ANNOTATIONS, f"{name}: annotations {sorted(annotations)}"
        assert "$labels.instance" in annotations["summary"], f"{name}: the summary does not name the host"
        assert "\n" not in annotations["runbook"].strip(), f"{name}: the runbook is more than one line"


def test_every_alert_fires_in_a_case_and_stays_quiet_in_another() -> None:
    names = {rule["alert"] for rule in rules(render())}
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))["tests"]:
        for check in case.get("alert_rule_test", []):
            alertname = check["alertname"]
            # A misspelt name is never found, so its quiet case would pass for nothing.
            assert alertname in names, f"{case['name']}: no alert {alertname!r} in the rules"
            expected = check.get("exp_alerts") or []
            if not expected:
                quiet.add(alertname)
                continue
            firing.add(alertname)
            for alert in expected:
                assert "summary" in alert.get("exp_annotations", {}), f"{case['name']}: no summary checked"
    assert names, "no alerting rules rendered"
    assert sorted(names - firing) == [], "alerts without a firing case"
    assert sorted(names - quiet) == [], "alerts without a quiet case"


def test_defaults_are_exactly_the_variables_the_rules_use() -> None:
    used = set(re.findall(r"\bprometheus_alert_\w+", TEMPLATE.read_text(encoding="utf-8")))
    assert sorted(used ^ set(defaults())) == []


def test_every_default_says_where_its_number_comes_from() -> None:
    lines = DEFAULTS.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines):
        if line.startswith("prometheus_alert_"):
            assert number > 0 and lines[number - 1].startswith("# "), f"{line.split(':')[0]}: no comment above"


def test_prometheus_templates_are_left_to_prometheus() -> None:
    text = render(prometheus_alert_gpu_xid_critical_codes=[79])
    assert "{{ $labels.instance }}" in text and "{{ $value" in text
    assert "DCGM_FI_DEV_XID_ERRORS == 79\n" in text


def test_a_multiline_managed_header_stays_a_comment() -> None:
    text = render(ansible_managed="Ansible managed: site\nchanges are overwritten")
    assert text.startswith("# Ansible managed: site\n# changes are overwritten\n")
    assert yaml.safe_load(text) == yaml.safe_load(render())


def test_without_promtool_the_tests_fail_and_say_how_to_get_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys.modules[__name__], "REPO_ROOT", tmp_path)
    monkeypatch.delenv("PROMTOOL", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(pytest.fail.Exception, match=r"run lab/tools/prometheus-tools\.sh"):
        promtool()
    monkeypatch.setenv("PROMTOOL", str(tmp_path / "missing" / "promtool"))
    with pytest.raises(pytest.fail.Exception, match=r"run lab/tools/prometheus-tools\.sh"):
        promtool()


# The role writes the file through lookup('ansible.builtin.template'): it must give what plain Jinja2 gives.
# A subprocess, as the plugin loader it needs changes how this interpreter imports ansible_collections.
_ANSIBLE_LOOKUP = """
import sys, yaml
from ansible.plugins.loader import init_plugin_loader
init_plugin_loader()
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template
role, defaults = sys.argv[1:3]
variables = yaml.safe_load(open(defaults, encoding="utf-8"))
variables.update(ansible_managed="Ansible managed: test", ansible_search_path=[role])
templar = Templar(loader=DataLoader(), variables=variables)
sys.stdout.write(templar.template(trust_as_template("{{ lookup('ansible.builtin.template', '%s') }}" % sys.argv[3])))
"""


def test_ansible_lookup_renders_what_jinja2_renders() -> None:
    pytest.importorskip("ansible")
    result = subprocess.run(
        [sys.executable, "-c", _ANSIBLE_LOOKUP, str(ROLE), str(DEFAULTS), TEMPLATE.name],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, output(result)
    assert result.stdout == render(ansible_managed="Ansible managed: test")
