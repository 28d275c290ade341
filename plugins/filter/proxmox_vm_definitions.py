# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja2 filter proxmox_vm_definitions (documentation in proxmox_vm_definitions.yml beside this file)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan._common import PlanInputError
from ansible_collections.onprem.gpu_server.plugins.module_utils.proxmox.vmdef import vm_definitions


def proxmox_vm_definitions(host_plan: Any, options: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Turn host_plan.intent.vms into Proxmox VE VM parameters (POST /nodes/{node}/qemu), pinned and with GPUs."""
    try:
        return vm_definitions(host_plan, options)
    except PlanInputError as exc:
        raise AnsibleFilterError(f"proxmox_vm_definitions: {exc}") from None


class FilterModule:
    """The proxmox_vm_definitions filter."""

    def filters(self) -> dict[str, Any]:
        return {"proxmox_vm_definitions": proxmox_vm_definitions}
