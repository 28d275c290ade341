"""The proxmox_config_diff filter wraps config_diff for the role."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.onprem.gpu_server.plugins.filter.proxmox_config_diff import FilterModule, proxmox_config_diff


def test_registered():
    assert FilterModule().filters()["proxmox_config_diff"] is proxmox_config_diff


def test_missing_vm_is_a_create():
    diff = proxmox_config_diff(None, {"vmid": 101, "name": "a", "cores": 2, "args": "-no-reboot"})
    assert diff["create"] and diff["api_changes"] == {"name": "a", "cores": 2}
    assert diff["root_changes"] == {"args": "-no-reboot"}


def test_second_run_changes_nothing():
    desired = {"name": "a", "cores": 2, "net0": "virtio,bridge=vmbr0,tag=10"}
    current = {"name": "a", "cores": "2", "net0": "virtio=BC:24:11:00:00:02,tag=10,bridge=vmbr0", "digest": "x"}
    assert proxmox_config_diff(current, desired, running=True)["changes"] == {}


@pytest.mark.parametrize("current", ["cores: 2", ["cores", 2]])
def test_current_must_be_a_mapping(current):
    with pytest.raises(AnsibleFilterError, match="current config must be a mapping"):
        proxmox_config_diff(current, {"cores": 2})


def test_unreadable_property_string_is_a_filter_error():
    with pytest.raises(AnsibleFilterError, match="numa0"):
        proxmox_config_diff({"name": "a", "numa0": "0-3"}, {"name": "a", "numa0": "cpus=0-3"})
