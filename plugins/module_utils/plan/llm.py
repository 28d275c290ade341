# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Does a language model fit in GPU memory, and how fast can it decode at most?"""

from __future__ import annotations

from typing import Any

from ansible_collections.onprem.gpu_server.plugins.module_utils.plan._common import (
    as_int,
    as_mapping,
    as_number,
    check_keys,
    fail,
)

MIB, GIB = 1 << 20, 1 << 30

BITS_PER_WEIGHT = {
    "fp32": 32,
    "fp16": 16,
    "bf16": 16,
    "fp8": 8,
    "int8": 8,
    "int4": 4,
    "fp4": 4,
    "int3": 3,
    "int2": 2,
    "4bit": 4,
    "3bit": 3,
    "2bit": 2,
}
_MODEL_KEYS = {"name", "params_b", "active_params_b", "layers", "kv_heads", "head_dim"}
_GPU_KEYS = {"name", "vram_mib", "vram_gib", "bandwidth_gb_s"}
# Architecture assumed when a model gives none: grouped-query attention with
# 8 KV heads of dimension 128 (Llama 3, Mistral, Qwen2 families) and a layer
# count fitted to Llama 3 (8B: 32, 70B: 80, 405B: 126 layers).
EST_KV_HEADS, EST_HEAD_DIM, EST_LAYER_COEFF = 8, 128, 17


def bits_for(precision: Any, path: str = "precision") -> float:
    """Bits per weight for a precision name (fp16, int4, 3bit, ...)."""
    if not isinstance(precision, str) or precision.lower() not in BITS_PER_WEIGHT:
        raise fail(path, f"unknown precision {precision!r}; use one of {', '.join(BITS_PER_WEIGHT)}")
    return BITS_PER_WEIGHT[precision.lower()]


def _vram_bytes(gpu: Any) -> int:
    if "vram_mib" in gpu:
        return int(as_number(gpu["vram_mib"], "gpu.vram_mib", minimum=0, allow_equal=False) * MIB)
    if "vram_gib" in gpu:
        return int(as_number(gpu["vram_gib"], "gpu.vram_gib", minimum=0, allow_equal=False) * GIB)
    raise fail("gpu", "give vram_mib (as nvidia-smi reports it) or vram_gib")


def plan_llm_fit(
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
) -> dict[str, Any]:
    """Memory needed (weights + KV cache + overhead) against VRAM, and the decode speed bound."""
    model = as_mapping(model, "model")
    check_keys(model, _MODEL_KEYS, "model")
    gpu = as_mapping(gpu, "gpu")
    check_keys(gpu, _GPU_KEYS, "gpu")
    if "params_b" not in model:
        raise fail("model.params_b", "is required (parameters in billions)")
    params = as_number(model["params_b"], "model.params_b", minimum=0, allow_equal=False) * 1e9
    active = as_number(model.get("active_params_b", params / 1e9), "model.active_params_b", 0, False) * 1e9
    if active > params:
        raise fail("model.active_params_b", "cannot exceed params_b")
    if bits_per_weight is not None:
        bits = as_number(bits_per_weight, "bits_per_weight", minimum=0, allow_equal=False)
    else:
        bits = bits_for(precision)
    kv_bytes = bits_for(kv_precision, "kv_precision") / 8
    tp = as_int(tensor_parallel, "tensor_parallel", minimum=1)
    ctx = as_int(context, "context", minimum=0)
    batch = as_int(concurrency, "concurrency", minimum=1)
    overhead_gpu = as_number(overhead_gib_per_gpu, "overhead_gib_per_gpu") * GIB
    vram = _vram_bytes(gpu)
    bandwidth = as_number(gpu.get("bandwidth_gb_s"), "gpu.bandwidth_gb_s", minimum=0, allow_equal=False) * 1e9

    arch = [model.get(k) for k in ("layers", "kv_heads", "head_dim")]
    estimated = any(v is None for v in arch)
    if estimated:
        layers = round(EST_LAYER_COEFF * (params / 1e9) ** (1 / 3))
        kv_heads, head_dim = EST_KV_HEADS, EST_HEAD_DIM
    else:
        layers = as_int(arch[0], "model.layers", minimum=1)
        kv_heads = as_int(arch[1], "model.kv_heads", minimum=1)
        head_dim = as_int(arch[2], "model.head_dim", minimum=1)

    weights = params * bits / 8
    kv_per_token = 2 * layers * kv_heads * head_dim * kv_bytes
    kv_per_seq = kv_per_token * ctx
    kv_total = kv_per_seq * batch
    per_gpu = (weights + kv_total) / tp + overhead_gpu
    fits = per_gpu <= vram

    # Each decode step streams every active weight once for the whole batch and
    # each sequence's KV cache; nothing can beat memory bandwidth.
    aggregate_bw = bandwidth * tp
    step_bytes = active * bits / 8 + kv_per_seq * batch
    stream_max = aggregate_bw / step_bytes
    errors: list[str] = []
    warnings: list[str] = []
    if not fits:
        errors.append(
            f"does not fit: needs {per_gpu / GIB:.1f} GiB per GPU (weights {weights / 1e9:.1f} GB, KV cache "
            f"{kv_total / 1e9:.1f} GB over {tp} GPU(s), {overhead_gpu / GIB:g} GiB overhead) but a GPU has "
            f"{vram / GIB:.1f} GiB"
        )
    if estimated:
        warnings.append(
            f"model: no layers/kv_heads/head_dim given; KV cache estimated with {layers} layers, 8x128 heads"
        )
    if claimed_vram_gb is not None:
        claimed = as_number(claimed_vram_gb, "claimed_vram_gb") * 1e9
        if claimed < weights:
            errors.append(
                f"claimed_vram_gb: {claimed / 1e9:g} GB is less than the weights alone ({weights / 1e9:.1f} GB)"
            )
    if claimed_tokens_per_s is not None:
        claimed_tps = as_number(claimed_tokens_per_s, "claimed_tokens_per_s")
        if claimed_tps > stream_max:
            errors.append(
                f"claimed_tokens_per_s: {claimed_tps:g} tok/s per stream exceeds the memory-bandwidth bound of "
                f"{stream_max:.1f} tok/s ({aggregate_bw / 1e9:g} GB/s / {step_bytes / 1e9:.2f} GB per step)"
            )
    return {
        "ok": not errors,
        "fits": fits,
        "errors": errors,
        "warnings": warnings,
        "bits_per_weight": bits,
        "weights_bytes": round(weights),
        "kv_cache_bytes": round(kv_total),
        "kv_bytes_per_token": round(kv_per_token),
        "kv_estimated": estimated,
        "overhead_bytes": round(overhead_gpu * tp),
        "required_bytes": round(weights + kv_total + overhead_gpu * tp),
        "required_bytes_per_gpu": round(per_gpu),
        "available_bytes": vram * tp,
        "decode_tokens_per_s_max": stream_max,
        "aggregate_tokens_per_s_max": stream_max * batch,
    }
