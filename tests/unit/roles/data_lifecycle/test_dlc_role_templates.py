"""The data_lifecycle role's templates, rendered with its defaults, fit the tool and systemd."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from dlc_helpers import REPO_ROOT, TOOL, load_tool

pytest.importorskip("ansible")
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template
from fixtures.templating import trusted

ROLE = REPO_ROOT / "roles" / "data_lifecycle"
dlc = load_tool()


def render(template: str, **overrides: Any) -> str:
    variables = yaml.safe_load((ROLE / "defaults/main.yml").read_text())
    variables.update(yaml.safe_load((ROLE / "vars/main.yml").read_text()))
    variables.update(ansible_managed="Ansible managed: test", __data_lifecycle_command="move")
    variables.update(overrides)
    templar = Templar(loader=DataLoader(), variables=trusted(variables))
    return templar.template(trust_as_template((ROLE / "templates" / template).read_text()))


def unit(text: str) -> dict[str, dict[str, list[str]]]:
    """Parse a systemd unit: {section: {key: [values in order]}} (keys such as ReadWritePaths repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, sep, value = line.partition("=")
        assert sep, f"not a key=value line: {line!r}"
        current.setdefault(key, []).append(value)
    return sections


def test_config_renders_to_json_the_tool_accepts(tmp_path: Path) -> None:
    text = render("data-lifecycle.json.j2")
    doc = json.loads(text)
    assert doc["_managed"] == "Ansible managed: test"
    assert doc["buffer_bytes"] == 1048576 and doc["link_within_filesystem"] is True
    assert doc["required_mountpoints"] == ["/lake", "/srv/landing"]
    config = dlc.parse_config(doc)
    retention = {c.name: c.retention_days for c in config.classes}
    assert retention == {
        "tick": 1826.0,
        "ohlcv": 3653.0,
        "model_checkpoints": None,
        "training_datasets": None,
        "strategy_logs": 731.0,
        "backups": None,
    }
    path = tmp_path / "config.json"
    path.write_text(text)
    result = subprocess.run([sys.executable, str(TOOL), "--config", str(path), "check-config"], check=False)
    assert result.returncode == 0


def test_config_without_metrics_or_managed_filesystem() -> None:
    doc = json.loads(
        render(
            "data-lifecycle.json.j2",
            data_lifecycle_metrics_path=None,
            data_lifecycle_manage_filesystem=False,
            data_lifecycle_required_mountpoints=[],
        )
    )
    assert doc["metrics_path"] is None and doc["required_mountpoints"] == []
    assert dlc.parse_config(doc).metrics_path is None


def test_service_unit_is_hardened_and_may_write_the_tiers() -> None:
    service = unit(render("onprem-data-lifecycle.service.j2"))["Service"]
    assert service["Type"] == ["oneshot"]
    assert service["ProtectSystem"] == ["strict"]
    assert service["PrivateTmp"] == ["true"] and service["NoNewPrivileges"] == ["true"]
    assert set(service["ReadWritePaths"]) == {
        "/srv/landing/hot",
        "/srv/landing/warm",
        "/lake/data",
        "/run/lock",
        "-/var/lib/prometheus/node-exporter",
    }
    assert service["ExecStart"][0].split()[-1] == "move"
    assert "--lock-wait" in service["ExecStart"][0]


def test_timer_is_persistent_with_the_configured_calendar() -> None:
    timer = unit(render("onprem-data-lifecycle.timer.j2", __data_lifecycle_command="purge"))["Timer"]
    assert timer["OnCalendar"] == ["daily"]
    assert timer["Persistent"] == ["true"]
    assert timer["RandomizedDelaySec"] == ["600"]
