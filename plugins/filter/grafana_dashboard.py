# Copyright: onprem.gpu_server maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja2 filter grafana_dashboard (documentation in grafana_dashboard.yml beside this file)."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.onprem.gpu_server.plugins.module_utils.grafana.dashboard import DashboardError, build


def grafana_dashboard(description: Any, datasource_uid: str = "onprem-prometheus") -> dict[str, Any]:
    """A Grafana dashboard JSON model from the collection's compact description."""
    try:
        return build(description, datasource_uid)
    except DashboardError as exc:
        raise AnsibleFilterError(f"grafana_dashboard: {exc}") from None


class FilterModule:
    """Grafana dashboards as code."""

    def filters(self) -> dict[str, Any]:
        return {"grafana_dashboard": grafana_dashboard}
