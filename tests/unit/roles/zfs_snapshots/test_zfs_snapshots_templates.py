"""The zfs_snapshots role's sanoid.conf and zed.rc settings, rendered with its defaults and overrides."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip("ansible")
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template
from fixtures.templating import trusted

REPO_ROOT = Path(__file__).resolve().parents[4]
ROLE = REPO_ROOT / "roles" / "zfs_snapshots"
PERIODS = ["frequently", "hourly", "daily", "weekly", "monthly", "yearly"]
PLAN_CLASSES = {
    "tick_data": {"retention_years": 5, "retention_years_min": 3},
    "ohlcv": {"retention_years": 10},
    "model_artifacts": {"retention": "indefinite"},
    "strategy_logs": {"retention_years": 2},
}
PLAN = {"intent": {"zfs": {"pools": {"lake": {}}}, "data_classes": PLAN_CLASSES}}


def templar(**overrides: Any) -> Templar:
    variables = yaml.safe_load((ROLE / "defaults/main.yml").read_text())
    variables.update(yaml.safe_load((ROLE / "vars/main.yml").read_text()))
    variables.update(ansible_managed="Ansible managed: test", host_plan=PLAN)
    variables.update(overrides)
    return Templar(loader=DataLoader(), variables=trusted(variables))


def render_conf(**overrides: Any) -> str:
    return templar(**overrides).template(trust_as_template((ROLE / "templates/sanoid.conf.j2").read_text()))


def variable(name: str, **overrides: Any) -> Any:
    return templar(**overrides).template(trust_as_template("{{ " + name + " }}"))


def parse_ini(text: str) -> dict[str, dict[str, str]]:
    """Sections of sanoid.conf as Config::IniFiles reads them (indented key = value lines, # comments)."""
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            assert line[1:-1] not in sections, f"section {line} twice"
            current = sections.setdefault(line[1:-1], {})
            continue
        key, sep, value = line.partition("=")
        assert sep and current is not None, f"not a key = value line in a section: {raw!r}"
        assert key.strip() not in current, f"{key} twice"
        current[key.strip()] = value.strip()
    return sections


def test_default_policy_one_section_and_template_per_class() -> None:
    conf = parse_ini(render_conf())
    datasets = {k: v for k, v in conf.items() if not k.startswith("template_")}
    assert datasets == {
        "lake/data/models": {"use_template": "onprem_model_artifacts", "recursive": "no"},
        "lake/data/ohlcv": {"use_template": "onprem_ohlcv", "recursive": "no"},
        "lake/data/strategy-logs": {"use_template": "onprem_strategy_logs", "recursive": "no"},
        "lake/data/tick": {"use_template": "onprem_tick_data", "recursive": "no"},
    }
    kept = {k: {p: int(v[p]) for p in PERIODS} for k, v in conf.items() if k.startswith("template_")}
    assert kept == {
        "template_onprem_model_artifacts": dict.fromkeys(PERIODS, 0) | {"daily": 14, "weekly": 8, "monthly": 12},
        "template_onprem_ohlcv": dict.fromkeys(PERIODS, 0) | {"daily": 14, "weekly": 8, "monthly": 12},
        "template_onprem_strategy_logs": dict.fromkeys(PERIODS, 0) | {"daily": 30, "weekly": 8, "monthly": 6},
        "template_onprem_tick_data": dict.fromkeys(PERIODS, 0) | {"daily": 7, "weekly": 4, "monthly": 3},
    }
    for name, section in conf.items():
        if name.startswith("template_"):
            # Every period is named: sanoid's template_default (hourly 48, daily 90, monthly 6) never leaks in.
            assert set(section) == set(PERIODS) | {"autosnap", "autoprune"}
            assert section["autosnap"] == section["autoprune"] == "yes"


def test_managed_header_is_a_comment() -> None:
    text = render_conf()
    assert "# Ansible managed: test" in text.splitlines()[:3]
    assert all(line.startswith("#") for line in text.splitlines()[:3])


def test_overrides_unknown_class_and_extra_datasets() -> None:
    conf = parse_ini(
        render_conf(
            zfs_snapshots_data_classes={"tick_data": {}, "risk-reports": {}},
            zfs_snapshots_policies={"tick_data": {"hourly": 24, "daily": 3}},
            zfs_snapshots_pool="tank",
            zfs_snapshots_data_parent="d",
            zfs_snapshots_extra_datasets={
                "tank/vm": {"policy": {"daily": 2}, "recursive": True},
                "tank/archive": {"class": "tick_data"},
            },
        )
    )
    assert conf["tank/d/tick"]["use_template"] == "onprem_tick_data"
    # A class without a dataset name keeps its key; without a policy it gets the default.
    assert conf["tank/d/risk-reports"]["use_template"] == "onprem_risk_reports"
    assert conf["template_onprem_risk_reports"]["daily"] == "14"
    assert conf["template_onprem_tick_data"]["hourly"] == "24"
    assert conf["template_onprem_tick_data"]["monthly"] == "0"
    assert conf["tank/vm"] == {"use_template": "onprem_tank_vm", "recursive": "yes"}
    assert conf["template_onprem_tank_vm"]["daily"] == "2"
    assert conf["template_onprem_tank_archive"]["hourly"] == "24"


def test_no_classes_no_sections() -> None:
    assert parse_ini(render_conf(zfs_snapshots_data_classes={})) == {}


def test_zed_mail_off_without_an_address() -> None:
    assert variable("__zfs_snapshots_zed_settings") == {"ZED_EMAIL_ADDR": None}


def zed_lines(settings: dict[str, Any]) -> list[str]:
    # The same expression as tasks/zed.yml's line.
    tpl = templar(settings=settings)
    return [
        tpl.template(trust_as_template("{{ '" + key + "=' ~ (settings['" + key + "'] | string | quote) }}"))
        for key, value in settings.items()
        if value is not None
    ]


def test_zed_settings_survive_the_shell(tmp_path: Path) -> None:
    settings = variable(
        "__zfs_snapshots_zed_settings",
        zfs_snapshots_zed_email_addr="ops@example.com,oncall@example.com",
        zfs_snapshots_zed_notify_verbose=True,
        zfs_snapshots_zed_extra_settings={"ZED_NOTIFY_DATA": 1, "ZED_USE_ENCLOSURE_LEDS": None},
    )
    assert settings == {
        "ZED_EMAIL_ADDR": "ops@example.com,oncall@example.com",
        "ZED_EMAIL_PROG": "mail",
        "ZED_EMAIL_OPTS": "-s '@SUBJECT@' @ADDRESS@",
        "ZED_NOTIFY_VERBOSE": 1,
        "ZED_NOTIFY_INTERVAL_SECS": 3600,
        "ZED_NOTIFY_DATA": 1,
        "ZED_USE_ENCLOSURE_LEDS": None,
    }
    rc = tmp_path / "zed.rc"
    rc.write_text("\n".join(zed_lines(settings)) + "\n")
    # zed sources zed.rc with sh: every value must come back unchanged.
    names = [k for k, v in settings.items() if v is not None]
    script = ". " + str(rc) + "; " + "; ".join(f'printf "%s\\n" "${k}"' for k in names)
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out == [str(settings[k]) for k in names]
