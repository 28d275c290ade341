# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja2 filter numa_pinning (documentation in numa_pinning.yml beside this file)."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan._common import PlanInputError
from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.numa import plan_numa_pinning


def numa_pinning(
    vms: Any, numa_nodes: Any, host_reserve: Any = 0, gpus: Any = None, sibling_threads: str = "vm"
) -> dict[str, Any]:
    """Pin VM vCPUs to physical cores next to their GPUs and report over-subscription, overlaps and NUMA issues."""
    try:
        return plan_numa_pinning(vms, numa_nodes, host_reserve, gpus, sibling_threads)
    except PlanInputError as exc:
        raise AnsibleFilterError(f"numa_pinning: {exc}") from None


class FilterModule:
    """The numa_pinning filter."""

    def filters(self) -> dict[str, Any]:
        return {"numa_pinning": numa_pinning}
