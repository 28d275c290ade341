# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja2 filter llm_serving_plan (documentation in llm_serving_plan.yml beside this file)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.report import build_report
from ansible_collections.onprem.gpu_server.plugins.module_utils.llm.engines import serving_plan

SETTINGS = ("store", "state", "python", "gpu_ids", "gpu_access")


def llm_serving_plan(host_plan: Any, settings: Any) -> dict[str, Any]:
    """The replicas, units and load-balanced deployments the host plan's served deployments make."""
    if not isinstance(settings, Mapping) or any(key not in settings for key in SETTINGS):
        raise AnsibleFilterError(f"llm_serving_plan: settings must be a mapping with {', '.join(SETTINGS)}")
    if not isinstance(host_plan, Mapping):
        return {"errors": ["host_plan: expected a mapping"], "deployments": {}, "replicas": []}
    return serving_plan(host_plan, build_report(host_plan), settings)


class FilterModule:
    """The llm_serving_plan filter."""

    def filters(self) -> dict[str, Any]:
        return {"llm_serving_plan": llm_serving_plan}
