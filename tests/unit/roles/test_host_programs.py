"""Programs that roles run on managed hosts live under plugins/ and are shipped unchanged.

Each role copies its program from the collection's plugins/module_utils (where ruff, mypy and the unit
tests see it) to the path the units and the lab proofs call; no role keeps a program of its own in
files/ or templates/.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
PYTHON3 = "/usr/bin/python3"


def flat(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tasks with those inside blocks."""
    return [leaf for t in tasks for leaf in [t, *flat(t.get("block", []) + t.get("rescue", []))]]


def copy_tasks(role: str, tasks_file: str) -> list[dict[str, Any]]:
    tasks = yaml.safe_load((REPO / "roles" / role / "tasks" / tasks_file).read_text())
    return [t for t in flat(tasks) if "ansible.builtin.copy" in t]


def sources(role: str, task: dict[str, Any]) -> list[Path]:
    """The files a copy task reads, with role_path and its loop items filled in (no other templating)."""
    src = task["ansible.builtin.copy"]["src"].replace("{{ role_path }}", str(REPO / "roles" / role))
    items = task.get("loop") or [{}]
    paths = []
    for item in items:
        path = src
        for key, value in item.items():
            path = path.replace("{{ item." + key + " }}", str(value))
        paths.append(Path(os.path.normpath(path)))
    return paths


@pytest.mark.parametrize(("role", "tasks_file", "task_name", "programs", "dest"), [
    ("data_lifecycle", "install.yml", "Install | the lifecycle tool", ["data_lifecycle/mover.py"],
     "{{ data_lifecycle_tool_path }}"),
    ("roce", "install.yml", "Install | the RoCE tool", ["rdma/roce.py"], "{{ roce_tool_path }}"),
    ("nic_tuning", "irq.yml", "IRQ | the boot script and its library (the module's irq.py)",
     ["nic/irq.py", "nic/irq_boot.py"], "{{ __nic_tuning_irq_lib }}/{{ item.name }}"),
    ("ups", "main.yml", "Install | the shedding program", ["ups/shed.py"], "{{ __ups_program }}"),
])
def test_each_role_copies_its_program_from_plugins(
    role: str, tasks_file: str, task_name: str, programs: list[str], dest: str
) -> None:
    task = next(t for t in copy_tasks(role, tasks_file) if t["name"] == task_name)
    assert sources(role, task) == [REPO / "plugins" / "module_utils" / p for p in programs]
    assert all(path.is_file() for path in sources(role, task))
    assert task["ansible.builtin.copy"]["dest"] == dest
    # Copied, not templated: the file on the host is the file that was linted and tested.
    assert "content" not in task["ansible.builtin.copy"]


def test_no_role_keeps_a_program_in_files_or_templates() -> None:
    programs = []
    for path in sorted(REPO.glob("roles/*/files/**/*")) + sorted(REPO.glob("roles/*/templates/**/*")):
        if not path.is_file():
            continue
        with path.open("rb") as handle:
            first = handle.readline()
        # An interpreter line or Python source; a profile.d fragment (sourced, no #!) is configuration.
        if first.startswith(b"#!") or path.name.endswith((".py", ".py.j2")):
            programs.append(str(path.relative_to(REPO)))
    assert programs == []


needs_python3 = pytest.mark.skipif(not os.access(PYTHON3, os.X_OK), reason="their interpreter line names python3")


def install(tmp_path: Path, program: str, name: str) -> Path:
    """Copy a program as its role does (mode 0755) under its installed name."""
    path = tmp_path / name
    shutil.copy(REPO / "plugins" / "module_utils" / program, path)
    path.chmod(0o755)
    return path


@needs_python3
def test_installed_mover_runs_through_its_interpreter_line(tmp_path: Path) -> None:
    tool = install(tmp_path, "data_lifecycle/mover.py", "onprem-data-lifecycle")
    config = tmp_path / "data-lifecycle.json"
    config.write_text(json.dumps({
        "tiers": {t: str(tmp_path / t) for t in ("landing", "warm", "cold")},
        "classes": [{"name": "tick", "directory": "tick", "hot_days": 1, "warm_days": 7, "retention_days": 30}],
    }))
    done = subprocess.run([str(tool), "--config", str(config), "check-config"], capture_output=True, text=True,
                          check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, "<6>configuration ok: 1 classes\n", "")
    bad = subprocess.run([str(tool), "--config", str(tmp_path / "missing.json"), "check-config"],
                         capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and bad.stderr.startswith("<3>error configuration: ")


@needs_python3
def test_installed_roce_tool_runs_through_its_interpreter_line(tmp_path: Path) -> None:
    tool = install(tmp_path, "rdma/roce.py", "onprem-roce")
    config = tmp_path / "roce.json"
    config.write_text(json.dumps({"links": [{"mac": "52:54:00:4c:ab:12", "tos": 300}]}))
    done = subprocess.run([str(tool), "--config", str(config), "check-config"], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 2
    assert json.loads(done.stdout) == {"failed": True, "msg": f"{config}: links[0]: tos must be an integer 0-255"}
