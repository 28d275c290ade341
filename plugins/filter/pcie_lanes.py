# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja2 filter pcie_lanes (documentation in pcie_lanes.yml beside this file)."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan._common import PlanInputError
from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.pcie import plan_pcie_lanes


def pcie_lanes(platform: Any, devices: Any) -> dict[str, Any]:
    """Sum PCIe lanes per socket against the CPUs and report links slower than the device supports."""
    try:
        return plan_pcie_lanes(platform, devices)
    except PlanInputError as exc:
        raise AnsibleFilterError(f"pcie_lanes: {exc}") from None


class FilterModule:
    """The pcie_lanes filter."""

    def filters(self) -> dict[str, Any]:
        return {"pcie_lanes": pcie_lanes}
