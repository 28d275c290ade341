# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja2 filter power_budget (documentation in power_budget.yml beside this file)."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan._common import PlanInputError
from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.power import plan_power_budget


def power_budget(power: Any) -> dict[str, Any]:
    """Check component and claimed loads against PSUs (with redundancy), the UPS and the branch circuit."""
    try:
        return plan_power_budget(power)
    except PlanInputError as exc:
        raise AnsibleFilterError(f"power_budget: {exc}") from None


class FilterModule:
    """The power_budget filter."""

    def filters(self) -> dict[str, Any]:
        return {"power_budget": power_budget}
