# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja2 filter proxmox_config_diff (documentation in proxmox_config_diff.yml beside this file)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.onprem.gpu_server.plugins.module_utils.proxmox.confdiff import config_diff


def proxmox_config_diff(
    current: Any, desired: Mapping[str, Any], running: bool = False, allow_pending: bool = False
) -> dict[str, Any]:
    """Only the VM options that differ from the definition, with what a running VM cannot take refused."""
    if current is not None and not isinstance(current, Mapping):
        raise AnsibleFilterError(f"proxmox_config_diff: the current config must be a mapping, got {current!r}")
    if not isinstance(desired, Mapping):
        raise AnsibleFilterError(f"proxmox_config_diff: the definition must be a mapping, got {desired!r}")
    try:
        return config_diff(current, desired, bool(running), bool(allow_pending))
    except ValueError as exc:
        raise AnsibleFilterError(f"proxmox_config_diff: {exc}") from None


class FilterModule:
    """The proxmox_config_diff filter."""

    def filters(self) -> dict[str, Any]:
        return {"proxmox_config_diff": proxmox_config_diff}
