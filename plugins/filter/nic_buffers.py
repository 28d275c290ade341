# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja2 filter nic_buffers (documentation in nic_buffers.yml beside this file)."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan._common import PlanInputError
from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.network import plan_nic_buffers


def nic_buffers(bandwidth_bps: Any, rtt_ms: Any, overhead_factor: Any = 2, claimed_bytes: Any = None) -> dict[str, Any]:
    """Size TCP socket buffers from the bandwidth-delay product and judge a claimed buffer size."""
    try:
        return plan_nic_buffers(bandwidth_bps, rtt_ms, overhead_factor, claimed_bytes)
    except PlanInputError as exc:
        raise AnsibleFilterError(f"nic_buffers: {exc}") from None


class FilterModule:
    """The nic_buffers filter."""

    def filters(self) -> dict[str, Any]:
        return {"nic_buffers": nic_buffers}
