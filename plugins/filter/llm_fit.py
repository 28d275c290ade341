# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja2 filter llm_fit (documentation in llm_fit.yml beside this file)."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan._common import PlanInputError
from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.llm import plan_llm_fit


def llm_fit(
    model: Any,
    gpu: Any,
    precision: Any = "fp16",
    tensor_parallel: Any = 1,
    context: Any = 4096,
    concurrency: Any = 1,
    kv_precision: Any = "fp16",
    overhead_gib_per_gpu: Any = 1.0,
    bits_per_weight: Any = None,
    claimed_tokens_per_s: Any = None,
    claimed_vram_gb: Any = None,
    claimed_tokens_per_s_kind: Any = "per_stream",
    offload: Any = "none",
    host_memory_bandwidth_gb_s: Any = None,
    host_memory_gib: Any = None,
) -> dict[str, Any]:
    """Check whether a model fits the GPUs (or host RAM with CPU offload) and bound its decode speed."""
    try:
        return plan_llm_fit(
            model,
            gpu,
            precision,
            tensor_parallel,
            context,
            concurrency,
            kv_precision,
            overhead_gib_per_gpu,
            bits_per_weight,
            claimed_tokens_per_s,
            claimed_vram_gb,
            claimed_tokens_per_s_kind,
            offload,
            host_memory_bandwidth_gb_s,
            host_memory_gib,
        )
    except PlanInputError as exc:
        raise AnsibleFilterError(f"llm_fit: {exc}") from None


class FilterModule:
    """The llm_fit filter."""

    def filters(self) -> dict[str, Any]:
        return {"llm_fit": llm_fit}
