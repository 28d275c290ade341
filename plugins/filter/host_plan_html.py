# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja2 filter host_plan_html (documentation in host_plan_html.yml beside this file)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan._common import show, type_name
from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.render_html import render_html


def host_plan_html(report: Any, host: Any = "") -> str:
    """Render a host_plan_report result as a self-contained HTML page with an SVG picture of the host."""
    if not isinstance(report, Mapping):
        raise AnsibleFilterError(
            f"host_plan_html: expected the result of host_plan_report, got {type_name(report)} {show(report)}"
        )
    return render_html(report, str(host or ""))


class FilterModule:
    """The host_plan_html filter."""

    def filters(self) -> dict[str, Any]:
        return {"host_plan_html": host_plan_html}
