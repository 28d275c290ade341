# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja2 filter gpu_placement (documentation in gpu_placement.yml beside this file)."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan._common import PlanInputError
from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.gpu import plan_gpu_placement


def gpu_placement(vms: Any, gpus: Any, numa_nodes: Any = None) -> dict[str, Any]:
    """Resolve GPU passthrough per VM and report double use, split devices, IOMMU groups and NUMA distance."""
    try:
        return plan_gpu_placement(vms, gpus, numa_nodes)
    except PlanInputError as exc:
        raise AnsibleFilterError(f"gpu_placement: {exc}") from None


class FilterModule:
    """The gpu_placement filter."""

    def filters(self) -> dict[str, Any]:
        return {"gpu_placement": gpu_placement}
