# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja2 filters cpu_ranges and cpu_ranges_format (documentation in the .yml files beside this one)."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan._common import PlanInputError
from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.cpu import format_cpu_ranges, parse_cpu_ranges


def cpu_ranges(value: Any) -> list[int]:
    """Parse a Linux CPU list such as ``"0-15,32-47"`` into a sorted list of CPU numbers."""
    try:
        return parse_cpu_ranges(value, "cpu_ranges")
    except PlanInputError as exc:
        raise AnsibleFilterError(str(exc)) from None


def cpu_ranges_format(value: Any) -> str:
    """Format a list of CPU numbers as the canonical Linux CPU list string."""
    try:
        return format_cpu_ranges(value, "cpu_ranges_format")
    except PlanInputError as exc:
        raise AnsibleFilterError(str(exc)) from None


class FilterModule:
    """CPU list filters."""

    def filters(self) -> dict[str, Any]:
        return {"cpu_ranges": cpu_ranges, "cpu_ranges_format": cpu_ranges_format}
