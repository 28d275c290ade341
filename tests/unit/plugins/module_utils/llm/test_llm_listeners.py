"""The llm_serving role's port check (plugins/module_utils/llm/listeners.py) on recorded `ss -Hltnp` output.

The listing was recorded on Debian 12 (iproute2 6.1) with two `python3 -m http.server` (IPv4 and IPv6 loopback),
Debian's haproxy 2.6 and a listener whose process ss could not name (port 2024); the
recording's trailing blanks are left out.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ansible_collections.onprem.gpu_server.plugins.module_utils.llm import listeners

RECORDED = """\
LISTEN 0      128      0.0.0.0:2024  0.0.0.0:*
LISTEN 0      5      127.0.0.1:18090 0.0.0.0:* users:(("python3",pid=3262,fd=3))
LISTEN 0      5          [::1]:18091    [::]:* users:(("python3",pid=3264,fd=3))
LISTEN 0      4096   127.0.0.1:18100 0.0.0.0:* users:(("haproxy",pid=3436,fd=6))
LISTEN 0      4096   127.0.0.1:18404 0.0.0.0:* users:(("haproxy",pid=3436,fd=4))
"""
# /proc/<pid>/cgroup as recorded on Debian 12 hosts: cgroup v2 (unified) and a v1 host's systemd line.
CGROUP_V2 = "0::/system.slice/smtp-sink.service\n"
CGROUP_V1 = "12:pids:/system.slice/haproxy.service\n1:name=systemd:/system.slice/haproxy.service\n"
SCRIPT = Path(listeners.__file__)


def test_the_listing_names_each_port_once_with_its_program() -> None:
    assert listeners.listeners(RECORDED) == {
        2024: ("?", None),
        18090: ("python3", 3262),
        18091: ("python3", 3264),
        18100: ("haproxy", 3436),
        18404: ("haproxy", 3436),
    }


def test_cgroup_path_of_either_hierarchy() -> None:
    assert listeners.cgroup_path(CGROUP_V2) == "/system.slice/smtp-sink.service"
    assert listeners.cgroup_path(CGROUP_V1) == "/system.slice/haproxy.service"
    assert listeners.cgroup_path("") == ""


def test_another_program_on_a_planned_port_is_refused_by_name() -> None:
    ports = {18090: "the frontend of tiny", 18091: "onprem-llm-tiny-0", 18404: "the HAProxy statistics page"}
    cgroups = {
        3262: "/system.slice/smtp-sink.service",
        3264: "/user.slice/session-4.scope",
        3436: "/system.slice/haproxy.service",
    }
    assert listeners.refusals(ports, RECORDED, cgroups, own_config="") == [
        "18090 (the frontend of tiny) is held by python3 (/system.slice/smtp-sink.service)",
        "18091 (onprem-llm-tiny-0) is held by python3 (/user.slice/session-4.scope)",
    ]


def test_the_roles_own_services_and_ports_not_planned_pass() -> None:
    cgroups = {
        3262: "/system.slice/onprem-llm-tiny-0.service",
        3264: "/system.slice/docker-4f0c2a9be1d3.scope",
        3436: "/system.slice/haproxy.service",
    }
    ports = {18090: "a", 18091: "b", 18100: "c", 18404: "d", 9999: "free"}
    assert listeners.refusals(ports, RECORDED, cgroups, own_config="") == []


def test_an_unnamed_holder_passes_only_on_a_port_the_roles_files_use() -> None:
    ports = {2024: "onprem-llm-tiny-0"}
    assert listeners.refusals(ports, RECORDED, {}, own_config="") == ["2024 (onprem-llm-tiny-0) is held by ? ()"]
    unit = "ExecStart=/opt/onprem/llm/llamacpp/bin/python -m llama_cpp.server --port 2024 --host 127.0.0.1\n"
    assert listeners.refusals(ports, RECORDED, {}, own_config=unit) == []
    haproxy = "    server onprem-llm-tiny-0 127.0.0.1:2024 check\n"
    assert listeners.refusals(ports, RECORDED, {}, own_config=haproxy) == []
    # Another port's digits are not this one.
    assert listeners.refusals(ports, RECORDED, {}, own_config="--port 20245\n127.0.0.1:20240") != []


def test_the_file_runs_as_the_role_runs_it() -> None:
    """python3 - PORTS < listeners.py, as the role's preflight: a JSON list on stdout, nothing else."""
    done = subprocess.run(
        [sys.executable, "-I", "-", json.dumps({"1": "a port no unprivileged program holds"})],
        input=SCRIPT.read_text(encoding="utf-8"),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []
