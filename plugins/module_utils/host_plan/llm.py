# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Does a language model fit in GPU memory, and how fast can it decode at most?"""

from __future__ import annotations

from typing import Any

from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan._common import (
    as_int,
    as_mapping,
    as_number,
    check_keys,
    fail,
    show,
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
        raise fail(path, f"unknown precision {show(precision)}; use one of {', '.join(BITS_PER_WEIGHT)}")
    return BITS_PER_WEIGHT[precision.lower()]


def _vram_bytes(gpu: Any) -> int:
    if "vram_mib" in gpu:
        return int(as_number(gpu["vram_mib"], "gpu.vram_mib", minimum=0, allow_equal=False) * MIB)
    if "vram_gib" in gpu:
        return int(as_number(gpu["vram_gib"], "gpu.vram_gib", minimum=0, allow_equal=False) * GIB)
    raise fail("gpu", "give vram_mib (as nvidia-smi reports it) or vram_gib")


CLAIM_KINDS = ("per_stream", "aggregate")
OFFLOAD_MODES = ("none", "cpu")


def _choice(value: Any, choices: tuple[str, ...], path: str, default: str) -> str:
    if value is None:
        return default
    if not isinstance(value, str) or value not in choices:
        raise fail(path, f"must be one of {', '.join(choices)}, got {show(value)}")
    return str(value)


class _Decode:
    """Memory traffic of one decode step for a batch of streams, and the speed it allows.

    Every step reads each active weight once for the whole batch and each
    stream's KV cache; what does not fit the GPUs (CPU offload) is read from
    host RAM, so that part is bounded by RAM bandwidth instead.
    """

    def __init__(self, fit: dict[str, float], streams: int) -> None:
        self.streams = streams
        kv = fit["kv_per_seq"] * streams
        self.needed = fit["weights"] + kv
        self.step_bytes = fit["active_weights"] + kv
        self.gpu_bound = fit["gpu_bandwidth"] / self.step_bytes
        self.offloaded = 0.0
        self.ram_read = 0.0
        self.ram_bound: float | None = None
        if fit["offload"] and self.needed > fit["gpu_capacity"]:
            self.offloaded = self.needed - fit["gpu_capacity"]
            # The offloaded layers carry their share of the step's reads (all of
            # it for a dense model; the active share for a mixture of experts).
            self.ram_read = self.offloaded * self.step_bytes / self.needed
            if fit["ram_bandwidth"]:
                self.ram_bound = fit["ram_bandwidth"] / self.ram_read

    @property
    def per_stream(self) -> float:
        """Tokens per second one stream of the batch can reach at most."""
        return self.gpu_bound if self.ram_bound is None else min(self.gpu_bound, self.ram_bound)

    @property
    def aggregate(self) -> float:
        """Tokens per second of the whole batch at most."""
        return self.per_stream * self.streams

    def why(self, fit: dict[str, float]) -> tuple[str, str]:
        """Which bound applies and the arithmetic behind it, in the units a design uses."""
        if self.ram_bound is not None and self.ram_bound < self.gpu_bound:
            return "CPU-offload bound", (
                f"{fit['ram_bandwidth'] / 1e9:g} GB/s of host RAM / {self.ram_read / 1e9:.2f} GB of offloaded "
                "layers read per step"
            )
        detail = f"{fit['gpu_bandwidth'] / 1e9:g} GB/s / {self.step_bytes / 1e9:.2f} GB per step"
        return "memory-bandwidth bound", detail


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
    claimed_tokens_per_s_kind: Any = "per_stream",
    offload: Any = "none",
    host_memory_bandwidth_gb_s: Any = None,
    host_memory_gib: Any = None,
) -> dict[str, Any]:
    """Memory needed (weights + KV cache + overhead) against VRAM, and the decode speed bound.

    A per-stream claim is checked against one stream's bound (every token reads
    every active weight); an aggregate claim against the batch's bound (the
    streams share one weight read per step). With ``offload="cpu"`` a model too
    large for the GPUs is a warning that states the host-RAM bound, not an error.
    """
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
    claim_kind = _choice(claimed_tokens_per_s_kind, CLAIM_KINDS, "claimed_tokens_per_s_kind", "per_stream")
    offload_cpu = _choice(offload, OFFLOAD_MODES, "offload", "none") == "cpu"
    ram_bandwidth = 0.0
    if host_memory_bandwidth_gb_s is not None:
        ram_bandwidth = as_number(host_memory_bandwidth_gb_s, "host_memory_bandwidth_gb_s", 0, False) * 1e9
    ram = None if host_memory_gib is None else as_number(host_memory_gib, "host_memory_gib") * GIB

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
    gpu_capacity = tp * (vram - overhead_gpu)
    fit = {
        "weights": weights,
        "active_weights": active * bits / 8,
        "kv_per_seq": kv_per_seq,
        "gpu_bandwidth": bandwidth * tp,
        "gpu_capacity": gpu_capacity,
        "ram_bandwidth": ram_bandwidth,
        "offload": 1.0 if offload_cpu else 0.0,
    }
    # The most streams whose KV cache fits beside the weights: what batching
    # can reach on these GPUs at this context length.
    room = gpu_capacity - weights
    batch_max = None if kv_per_seq == 0 else max(1, int(room // kv_per_seq)) if room > 0 else 1
    decode = _Decode(fit, batch)

    errors: list[str] = []
    warnings: list[str] = []
    short = (
        f"needs {per_gpu / GIB:.1f} GiB per GPU (weights {weights / 1e9:.1f} GB, KV cache "
        f"{kv_total / 1e9:.1f} GB over {tp} GPU(s), {overhead_gpu / GIB:g} GiB overhead) but a GPU has "
        f"{vram / GIB:.1f} GiB"
    )
    if not fits and not offload_cpu:
        errors.append(f"does not fit in VRAM: {short}")
    elif not fits and ram is not None and decode.offloaded > ram:
        errors.append(
            f"offload: does not fit even with CPU offload: {decode.offloaded / 1e9:.1f} GB would have to stay in "
            f"host RAM of {ram / GIB:g} GiB"
        )
    elif not fits:
        bound = (
            f"decode is bounded by RAM bandwidth / offloaded bytes read per token = {ram_bandwidth / 1e9:g} GB/s / "
            f"{decode.ram_read / 1e9:.1f} GB = {decode.ram_bound:.1f} tok/s per stream"
            if decode.ram_bound is not None
            else "the bound this sets is not computed: the host memory bandwidth is not known"
        )
        warnings.append(
            f"fits with CPU offload only: {short}, so {decode.offloaded / 1e9:.1f} GB of layers stay in host RAM "
            f"and are read from there for every token: {bound}"
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
    claim: dict[str, Any] | None = None
    if claimed_tokens_per_s is not None:
        claimed_tps = as_number(claimed_tokens_per_s, "claimed_tokens_per_s")
        claim = _check_claim(claimed_tps, claim_kind, fit, decode, batch, batch_max, ctx, errors)
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
        "decode_tokens_per_s_max": decode.per_stream,
        "aggregate_tokens_per_s_max": decode.aggregate,
        "batch_max": batch_max,
        "offload": {
            "bytes": round(decode.offloaded),
            "read_bytes_per_step": round(decode.ram_read),
            "tokens_per_s_max": decode.ram_bound,
        }
        if decode.offloaded
        else None,
        "claim": claim,
    }


def _check_claim(
    claimed: float,
    kind: str,
    fit: dict[str, float],
    decode: _Decode,
    batch: int,
    batch_max: int | None,
    context: int,
    errors: list[str],
) -> dict[str, Any]:
    """Compare a tokens-per-second claim with the bound of its own kind; say which kind was checked."""
    if kind == "per_stream":
        who = f"{batch} streams decoding together" if batch > 1 else "one stream"
        name, detail = decode.why(fit)
        if claimed > decode.per_stream:
            errors.append(
                f"claimed_tokens_per_s: {claimed:g} tok/s per stream exceeds the {name} of "
                f"{decode.per_stream:.1f} tok/s ({detail}); checked as a per-stream claim ({who}): each token "
                "reads every active weight once"
            )
        return {"kind": kind, "tokens_per_s": claimed, "bound": decode.per_stream, "streams": batch}
    if batch > 1:
        streams, reason = batch, f"{batch} streams (concurrency)"
    elif batch_max is None:
        # Without a context no KV cache limits the batch: the claim has no memory bound.
        return {"kind": kind, "tokens_per_s": claimed, "bound": None, "streams": None}
    elif batch_max > 1:
        streams = batch_max
        reason = f"{batch_max} streams (the most whose KV cache at {context} tokens fits beside the weights)"
    else:
        streams = 1
        reason = f"1 stream (the weights leave no room for a second KV cache of {context} tokens)"
    batched = _Decode(fit, streams)
    if claimed > batched.aggregate:
        name, detail = batched.why(fit)
        errors.append(
            f"claimed_tokens_per_s: {claimed:g} tok/s in aggregate exceeds the batched bound of "
            f"{batched.aggregate:.1f} tok/s: {reason} sharing one read of the weights per step, each at most "
            f"{batched.per_stream:.1f} tok/s by the {name} ({detail}); checked as an aggregate claim over many "
            "streams, not per stream"
        )
    return {"kind": kind, "tokens_per_s": claimed, "bound": batched.aggregate, "streams": streams}
