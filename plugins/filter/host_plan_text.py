# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja2 filter host_plan_text (documentation in host_plan_text.yml beside this file)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan._common import show, type_name
from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.render_text import render_text


def host_plan_text(report: Any, host: Any = "") -> str:
    """Render a host_plan_report result as console text: findings, then tables."""
    if not isinstance(report, Mapping):
        raise AnsibleFilterError(
            f"host_plan_text: expected the result of host_plan_report, got {type_name(report)} {show(report)}"
        )
    return render_text(report, str(host or ""))


class FilterModule:
    """The host_plan_text filter."""

    def filters(self) -> dict[str, Any]:
        return {"host_plan_text": host_plan_text}
