"""docker_daemon_json_merge: users' keys survive, the nvidia runtime is added, a second merge changes nothing."""

from __future__ import annotations

import json

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.onprem.gpu_server.plugins.filter.docker_daemon_json_merge import (
    FilterModule,
    docker_daemon_json_merge,
)

NVIDIA = {"runtimes": {"nvidia": {"path": "nvidia-container-runtime", "runtimeArgs": []}}}
LOGS = {"log-driver": "json-file", "log-opts": {"max-size": "100m", "max-file": "5"}}
USER_FILE = """{
  "data-root": "/srv/docker",
  "registry-mirrors": ["https://mirror.example.invalid"],
  "runtimes": {"kata": {"path": "/usr/bin/kata-runtime"}}
}
"""


def test_registered_under_its_name() -> None:
    assert FilterModule().filters()["docker_daemon_json_merge"] is docker_daemon_json_merge


@pytest.mark.parametrize("existing", ["", "   \n", None])
def test_missing_or_empty_file_gets_the_wanted_keys(existing: str | None) -> None:
    result = docker_daemon_json_merge(existing, NVIDIA, LOGS)
    assert result["changed"] is True
    assert json.loads(result["text"]) == {**NVIDIA, **LOGS}
    assert result["text"].endswith("}\n")


def test_user_keys_survive_and_nvidia_runtime_is_added_beside_theirs() -> None:
    result = docker_daemon_json_merge(USER_FILE, NVIDIA, LOGS)
    doc = json.loads(result["text"])
    assert doc["data-root"] == "/srv/docker"
    assert doc["registry-mirrors"] == ["https://mirror.example.invalid"]
    assert doc["runtimes"] == {
        "kata": {"path": "/usr/bin/kata-runtime"},
        "nvidia": {"path": "nvidia-container-runtime", "runtimeArgs": []},
    }
    # Existing keys keep their order; new ones follow.
    assert list(doc) == ["data-root", "registry-mirrors", "runtimes", "log-driver", "log-opts"]
    assert {c["key"] for c in result["changes"]} == {"runtimes.nvidia", "log-driver", "log-opts"}
    assert all(c["action"] == "added" for c in result["changes"])


def test_second_merge_is_idempotent() -> None:
    first = docker_daemon_json_merge(USER_FILE, NVIDIA, LOGS)
    second = docker_daemon_json_merge(first["text"], NVIDIA, LOGS)
    assert second["changed"] is False
    assert second["changes"] == []
    assert second["text"] == first["text"]


def test_formatting_alone_is_not_a_change() -> None:
    compact = json.dumps({**NVIDIA, **LOGS}, separators=(",", ":"))
    assert docker_daemon_json_merge(compact, NVIDIA, LOGS)["changed"] is False


def test_defaults_never_override_a_users_log_driver() -> None:
    user = '{"log-driver": "journald", "log-opts": {"tag": "{{.Name}}"}}'
    result = docker_daemon_json_merge(user, NVIDIA, LOGS)
    doc = result["config"]
    assert doc["log-driver"] == "journald"
    # Missing sub-keys of a default object are still filled in, the user's own sub-key stays.
    assert doc["log-opts"] == {"tag": "{{.Name}}", "max-size": "100m", "max-file": "5"}


def test_wanted_values_are_enforced_and_reported() -> None:
    user = '{"runtimes": {"nvidia": {"path": "/opt/old/nvidia-container-runtime"}}, "default-runtime": "runc"}'
    result = docker_daemon_json_merge(user, {**NVIDIA, "default-runtime": "nvidia"})
    assert result["config"]["runtimes"]["nvidia"]["path"] == "nvidia-container-runtime"
    assert result["config"]["default-runtime"] == "nvidia"
    changed = {c["key"]: c for c in result["changes"]}
    assert changed["runtimes.nvidia.path"]["before"] == "/opt/old/nvidia-container-runtime"
    assert changed["default-runtime"] == {
        "key": "default-runtime",
        "action": "changed",
        "before": "runc",
        "after": "nvidia",
    }
    assert changed["runtimes.nvidia.runtimeArgs"]["action"] == "added"


def test_lists_are_replaced_not_appended() -> None:
    result = docker_daemon_json_merge('{"dns": ["10.0.0.1"]}', {"dns": ["10.0.0.2"]})
    assert result["config"]["dns"] == ["10.0.0.2"]


def test_input_is_not_modified() -> None:
    existing = {"runtimes": {"kata": {"path": "k"}}}
    docker_daemon_json_merge(existing, NVIDIA)
    assert existing == {"runtimes": {"kata": {"path": "k"}}}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('{"data-root": "/srv/docker",}', "line 1 column"),
        ('{"log-opts": {"max-size": "10m"}\n', "line 2 column"),
        ("[1, 2]", "JSON list"),
        ('"just a string"', "JSON str"),
    ],
)
def test_invalid_json_is_refused_clearly(text: str, words: str) -> None:
    with pytest.raises(AnsibleFilterError) as info:
        docker_daemon_json_merge(text, NVIDIA)
    assert words in str(info.value)
    assert "/etc/docker/daemon.json" in str(info.value)
    assert "left untouched" in str(info.value)


def test_wanted_must_be_a_mapping() -> None:
    with pytest.raises(AnsibleFilterError, match="wanted must be a dictionary"):
        docker_daemon_json_merge("{}", ["runtimes"])
