# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja2 filter memory_budget (documentation in memory_budget.yml beside this file)."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan._common import PlanInputError
from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.memory import plan_memory_budget


def memory_budget(
    memory: Any,
    vms: Any,
    host_reserve_gib: Any = 0,
    zfs_arc_max_gib: Any = 0,
    hugepages_gib: Any = 0,
    hugepage_size_mib: Any = 2,
) -> dict[str, Any]:
    """Compare VM RAM, huge pages, ZFS ARC and host reserve with installed memory; check DIMM population."""
    try:
        return plan_memory_budget(memory, vms, host_reserve_gib, zfs_arc_max_gib, hugepages_gib, hugepage_size_mib)
    except PlanInputError as exc:
        raise AnsibleFilterError(f"memory_budget: {exc}") from None


class FilterModule:
    """The memory_budget filter."""

    def filters(self) -> dict[str, Any]:
        return {"memory_budget": memory_budget}
