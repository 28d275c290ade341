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


# apt-cache policy for the headers in the systemd Debian 12 container (bookworm, -security, -backports enabled),
# recorded on 2026-11-26; apt prints nothing for a package it does not know (linux-headers-fc-v595 here).
POLICY_HEADERS = """linux-headers-amd64:
  Installed: (none)
  Candidate: 6.1.192-2
  Version table:
     6.12.95-1~bpo12+1 100
        100 http://deb.debian.org/debian bookworm-backports/main amd64 Packages
     6.1.192-2 500
        500 http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
"""
POLICY_HEADERS_NONE = """linux-headers-6.1.0-9-amd64:
  Installed: (none)
  Candidate: (none)
  Version table:
"""


@pytest.mark.parametrize(
    ("kernel", "packages"),
    [
        ("6.1.0-28-amd64", ["linux-headers-6.1.0-28-amd64", "linux-headers-amd64"]),
        ("6.1.0-28-cloud-amd64", ["linux-headers-6.1.0-28-cloud-amd64", "linux-headers-cloud-amd64"]),
        ("6.10.11+bpo-amd64", ["linux-headers-6.10.11+bpo-amd64", "linux-headers-amd64"]),
        ("5.15.0-125-generic", ["linux-headers-5.15.0-125-generic", "linux-headers-generic"]),
        ("6.8.12-4-pve", ["proxmox-headers-6.8.12-4-pve", "proxmox-default-headers"]),
    ],
)
def test_kernel_headers_follow_the_running_kernel_and_its_flavour(kernel: str, packages: list[str]) -> None:
    assert Host(("nvidia_driver",), ansible_kernel=kernel).value("__nvidia_driver_kernel_headers_packages") == packages


def test_kernel_headers_override_is_taken_as_given() -> None:
    host = Host(
        ("nvidia_driver",),
        ansible_kernel="6.18.44-fc-v595",
        nvidia_driver_kernel_headers_packages=["linux-headers-amd64"],
    )
    assert host.value("__nvidia_driver_kernel_headers_packages") == ["linux-headers-amd64"]


def _headers_missing(policy: str, packages: list[str]) -> list[str]:
    task = _task("nvidia_driver", "install.yml", "Apt offers the kernel headers")
    host = Host(
        ("nvidia_driver",),
        nvidia_driver_kernel_headers_packages=packages,
        __nvidia_driver_headers_policy={"stdout": policy},
        **task["vars"],
    )
    return list(host.value("__nvidia_driver_headers_missing"))


@pytest.mark.parametrize(
    ("policy", "packages", "missing"),
    [
        (POLICY_HEADERS, ["linux-headers-amd64"], []),
        (POLICY_HEADERS, ["linux-headers-6.18.44-fc-v595", "linux-headers-amd64"], ["linux-headers-6.18.44-fc-v595"]),
        (POLICY_HEADERS_NONE, ["linux-headers-6.1.0-9-amd64"], ["linux-headers-6.1.0-9-amd64"]),
    ],
)
def test_headers_check_names_what_apt_lacks(policy: str, packages: list[str], missing: list[str]) -> None:
    assert _headers_missing(policy, packages) == missing


def _kernels_without(lines: list[str], branch: str = "535") -> list[str]:
    task = _task("nvidia_driver", "kernels.yml", "Kernels | every installed kernel has the module of the pinned branch")
    host = Host(
        ("nvidia_driver",), nvidia_driver_branch=branch, __nvidia_driver_kernels={"stdout_lines": lines}, **task["vars"]
    )
    return list(host.value("__nvidia_driver_kernels_without"))


def test_kernel_check_names_each_kernel_that_would_boot_without_the_module() -> None:
    lines = ["6.1.0-27-amd64 yes 535.309.01", "6.1.0-28-amd64 no -", "6.1.0-29-amd64 yes 550.127.05"]
    assert _kernels_without(lines) == ["6.1.0-28-amd64 no -", "6.1.0-29-amd64 yes 550.127.05"]
    assert _kernels_without(lines[:1]) == []
    assert _kernels_without(lines[:1], branch="550") == lines[:1]
