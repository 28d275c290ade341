"""Conditions in the GPU stack roles' tasks, evaluated on recorded tool output."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

pytest.importorskip("ansible")
from gpu_stack_render import ROLES, Host

from ansible_collections.onprem.gpu_server.plugins.filter.docker_daemon_json_merge import docker_daemon_json_merge

# apt-cache policy on Debian 12 with contrib/non-free and the 535 branch pin (bookworm + bookworm-security).
POLICY_DEBIAN = """nvidia-kernel-dkms:
  Installed: (none)
  Candidate: 535.309.01-0+deb12u1
nvidia-smi:
  Installed: (none)
  Candidate: 535.309.01-0+deb12u1
"""
POLICY_NO_NONFREE = """nvidia-kernel-dkms:
  Installed: (none)
  Candidate: (none)
"""


def _task(role: str, tasks_file: str, name: str) -> dict[str, Any]:
    tasks = yaml.safe_load((ROLES / role / "tasks" / tasks_file).read_text())
    (task,) = [t for t in tasks if t.get("name") == name]
    return task


def _candidate_check(policy: str, branch: str) -> bool:
    task = _task("nvidia_driver", "install.yml", "Apt offers the pinned branch")
    host = Host(
        ("nvidia_driver",),
        nvidia_driver_branch=branch,
        __nvidia_driver_policy={"stdout": policy},
        __nvidia_driver_candidates=task["vars"]["__nvidia_driver_candidates"],
    )
    return bool(host.expr(task["ansible.builtin.assert"]["that"]))


def test_candidate_check_passes_for_the_pinned_branch() -> None:
    assert _candidate_check(POLICY_DEBIAN, "535") is True


@pytest.mark.parametrize(("policy", "branch"), [(POLICY_DEBIAN, "550"), (POLICY_NO_NONFREE, "535")])
def test_candidate_check_refuses_another_branch_or_none(policy: str, branch: str) -> None:
    assert _candidate_check(policy, branch) is False


def test_distribution_branch_refusal_names_the_way_out() -> None:
    task = _task("nvidia_driver", "preflight.yml", "Refuse a branch that Debian does not ship")
    assert "nvidia_driver_branch | string != __nvidia_driver_debian_branch" in task["when"]
    assert "cuda_repo" in task["ansible.builtin.fail"]["msg"]
    assert Host(("nvidia_driver",)).value("__nvidia_driver_debian_branch") == "535"


@pytest.mark.parametrize(
    ("gpus", "refused"),
    [
        ([{"bus_id": "0000:3b:00.0", "driver": "vfio-pci", "source": "sysfs"}], ["0000:3b:00.0"]),
        ([{"bus_id": "0000:3b:00.0", "driver": "nvidia", "source": "nvidia-smi"}], []),
        ([{"bus_id": "0000:3b:00.0", "driver": None, "source": "sysfs"}], []),
        ([], []),
    ],
)
def test_vfio_claimed_gpus_are_found(gpus: list[dict[str, Any]], refused: list[str]) -> None:
    task = _task("nvidia_driver", "preflight.yml", "Refuse a vfio passthrough hypervisor")
    host = Host(("nvidia_driver",))
    host = Host(("nvidia_driver",), ansible_facts={**host.variables["ansible_facts"], "gpu": {"gpus": gpus}})
    assert host.expr(task["vars"]["__nvidia_driver_vfio_gpus"].strip().removeprefix("{{").removesuffix("}}")) == refused
    assert "/etc/modprobe.d/vfio-pci-onprem.conf" in host.value("__nvidia_driver_vfio_markers")


def test_daemon_json_wanted_keys_and_log_defaults() -> None:
    host = Host(("container_runtime",))
    wanted = host.value("__container_runtime_daemon_json_wanted")
    defaults = host.value("__container_runtime_daemon_json_defaults")
    assert wanted == {"runtimes": {"nvidia": {"path": "nvidia-container-runtime", "runtimeArgs": []}}}
    assert defaults == {"log-driver": "json-file", "log-opts": {"max-size": "100m", "max-file": "5"}}
    user = json.dumps({"insecure-registries": ["10.0.0.5:5000"]})
    merged = docker_daemon_json_merge(user, wanted, defaults)
    assert merged["config"]["insecure-registries"] == ["10.0.0.5:5000"]
    assert docker_daemon_json_merge(merged["text"], wanted, defaults)["changed"] is False


def test_daemon_json_default_runtime_and_extra_keys() -> None:
    host = Host(
        ("container_runtime",),
        container_runtime_nvidia_default_runtime=True,
        container_runtime_daemon_json={"runtimes": {"nvidia": {"runtimeArgs": ["--debug"]}}, "live-restore": True},
    )
    wanted = host.value("__container_runtime_daemon_json_wanted")
    assert wanted["default-runtime"] == "nvidia"
    assert wanted["live-restore"] is True
    assert wanted["runtimes"]["nvidia"] == {"path": "nvidia-container-runtime", "runtimeArgs": ["--debug"]}


def test_daemon_json_is_written_only_on_change_and_restarts_docker() -> None:
    task = _task(
        "container_runtime",
        "daemon_json.yml",
        "Write daemon.json (JSON has no comments; the file is shared, not owned)",
    )
    assert task["when"] == "__container_runtime_daemon_json.changes | length > 0"
    assert task["notify"] == "Restart docker"
