# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja2 filter host_plan_report (documentation in host_plan_report.yml beside this file)."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan._common import PlanInputError
from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.report import build_report


def host_plan_report(host_plan: Any, facts: Any = None) -> dict[str, Any]:
    """Validate a host plan, run every planning calculation over it and compare it with host facts."""
    try:
        return build_report(host_plan, facts)
    except PlanInputError as exc:
        raise AnsibleFilterError(f"host_plan_report: {exc}") from None


class FilterModule:
    """The host_plan_report filter."""

    def filters(self) -> dict[str, Any]:
        return {"host_plan_report": host_plan_report}
