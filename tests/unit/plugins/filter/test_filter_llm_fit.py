"""llm_fit against both specs' model claims."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from hypothesis import given, settings
from hypothesis import strategies as st
from plan_specs import LLAMA31_70B, LLAMA31_405B, MISTRAL_7B, RTX4000ADA, RTX4090

from ansible_collections.onprem.gpu_server.plugins.filter.llm_fit import llm_fit
from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.llm import BITS_PER_WEIGHT


def test_xc740xd_70b_fp16_on_4_gpus_does_not_fit_75gb():
    result = llm_fit(LLAMA31_70B, RTX4000ADA, "fp16", tensor_parallel=4, claimed_vram_gb=75, claimed_tokens_per_s=20)
    assert result["weights_bytes"] == 141_200_000_000  # 70.6e9 x 2 bytes
    assert not result["fits"]
    assert result["available_bytes"] == 4 * 20475 * 2**20
    assert any(
        e.startswith("claimed_vram_gb: 75 GB is less than the weights alone (141.2 GB)") for e in result["errors"]
    )
    # 4 x 360 GB/s over ~142.5 GB per token: about 10 tok/s, not 20-30.
    assert 9.9 < result["decode_tokens_per_s_max"] < 10.2
    assert any(e.startswith("claimed_tokens_per_s: 20 tok/s") for e in result["errors"])


def test_xc740xd_405b_2bit_does_not_fit_80gb():
    result = llm_fit(LLAMA31_405B, RTX4000ADA, "2bit", tensor_parallel=4, claimed_vram_gb=80)
    assert result["weights_bytes"] == round(405.9e9 * 0.25)
    assert not result["fits"]
    assert any("claimed_vram_gb: 80 GB is less than the weights alone" in e for e in result["errors"])


def test_xc740xd_mistral_7b_200_tok_s_exceeds_bandwidth_bound():
    result = llm_fit(MISTRAL_7B, RTX4000ADA, "fp16", context=0, claimed_tokens_per_s=200)
    assert result["fits"]
    # 7.24e9 x 2 = 14.48 GB per token; 360 / 14.48 = 24.9 tok/s.
    assert result["decode_tokens_per_s_max"] == pytest.approx(360 / 14.48)
    assert not result["ok"]
    assert "exceeds the memory-bandwidth bound of 24.9 tok/s" in result["errors"][0]


def test_xc740xd_mistral_replicas_aggregate():
    # Batching is how the spec's "150-300 tok/s per GPU" can be reached in aggregate.
    result = llm_fit(MISTRAL_7B, RTX4000ADA, "fp16", context=2048, concurrency=16)
    assert result["fits"]
    assert result["aggregate_tokens_per_s_max"] > 200
    assert result["decode_tokens_per_s_max"] < 25


def test_workstation_70b_fp16_on_4x4090():
    result = llm_fit(LLAMA31_70B, RTX4090, "fp16", tensor_parallel=4, claimed_tokens_per_s=40)
    assert not result["fits"]  # 141 GB of weights, 96 GB of VRAM
    assert 28 < result["decode_tokens_per_s_max"] < 28.7  # 4 x 1008 GB/s / 142.5 GB
    assert any(e.startswith("claimed_tokens_per_s: 40 tok/s") for e in result["errors"])


def test_workstation_70b_int4_fits():
    result = llm_fit(LLAMA31_70B, RTX4090, "int4", tensor_parallel=4, context=8192, concurrency=4)
    assert result["ok"], result["errors"]
    assert result["kv_bytes_per_token"] == 2 * 80 * 8 * 128 * 2
    assert result["kv_cache_bytes"] == 327680 * 8192 * 4


def test_architecture_estimate_is_flagged():
    result = llm_fit({"params_b": 70}, RTX4090, "int4", tensor_parallel=4)
    assert result["kv_estimated"]
    assert result["kv_bytes_per_token"] == 2 * 70 * 8 * 128 * 2  # round(17 x 70^(1/3)) = 70 layers
    assert "KV cache estimated with 70 layers" in result["warnings"][0]


def test_moe_active_params_and_bits_override():
    dense = llm_fit({"params_b": 46.7}, RTX4090, bits_per_weight=4.85, tensor_parallel=2, context=0)
    moe = llm_fit(
        {"params_b": 46.7, "active_params_b": 12.9}, RTX4090, bits_per_weight=4.85, tensor_parallel=2, context=0
    )
    assert dense["weights_bytes"] == moe["weights_bytes"] == round(46.7e9 * 4.85 / 8)
    assert moe["decode_tokens_per_s_max"] == pytest.approx(dense["decode_tokens_per_s_max"] * 46.7 / 12.9)


@pytest.mark.parametrize(
    ("model", "gpu", "kwargs", "message"),
    [
        ({}, RTX4090, {}, "model.params_b: is required"),
        ({"params_b": 0}, RTX4090, {}, "model.params_b: must be > 0"),
        ({"params_b": 7, "experts": 8}, RTX4090, {}, "model: unknown key(s) experts"),
        ({"params_b": 7, "active_params_b": 8}, RTX4090, {}, "model.active_params_b: cannot exceed params_b"),
        ({"params_b": 7, "layers": 0, "kv_heads": 8, "head_dim": 128}, RTX4090, {}, "model.layers: must be >= 1"),
        ({"params_b": 7}, {"bandwidth_gb_s": 1}, {}, "gpu: give vram_mib"),
        ({"params_b": 7}, {"vram_mib": 1}, {}, "gpu.bandwidth_gb_s: expected a number"),
        ({"params_b": 7}, RTX4090, {"precision": "fp12"}, "precision: unknown precision 'fp12'"),
        ({"params_b": 7}, RTX4090, {"kv_precision": "int1"}, "kv_precision: unknown precision"),
        ({"params_b": 7}, RTX4090, {"tensor_parallel": 0}, "tensor_parallel: must be >= 1"),
        ({"params_b": 7}, RTX4090, {"context": -1}, "context: must be >= 0"),
        ({"params_b": 7}, RTX4090, {"bits_per_weight": 0}, "bits_per_weight: must be > 0"),
        ({"params_b": 7}, RTX4090, {"claimed_tokens_per_s": "fast"}, "claimed_tokens_per_s: expected a number"),
    ],
)
def test_malformed_input(model, gpu, kwargs, message):
    with pytest.raises(AnsibleFilterError) as err:
        llm_fit(model, gpu, **kwargs)
    assert str(err.value).startswith("llm_fit: ")
    assert message in str(err.value)


precisions = sorted(BITS_PER_WEIGHT, key=BITS_PER_WEIGHT.__getitem__)


@settings(max_examples=150, deadline=None)
@given(
    st.floats(min_value=0.1, max_value=1000),
    st.sampled_from(precisions),
    st.sampled_from(precisions),
    st.integers(min_value=1, max_value=8),
)
def test_more_bits_need_more_memory_and_decode_slower(params_b, low, high, tp):
    if BITS_PER_WEIGHT[low] > BITS_PER_WEIGHT[high]:
        low, high = high, low
    a = llm_fit({"params_b": params_b}, RTX4090, low, tensor_parallel=tp)
    b = llm_fit({"params_b": params_b}, RTX4090, high, tensor_parallel=tp)
    assert a["weights_bytes"] <= b["weights_bytes"]
    assert a["required_bytes_per_gpu"] <= b["required_bytes_per_gpu"]
    assert a["decode_tokens_per_s_max"] >= b["decode_tokens_per_s_max"]
    if b["fits"]:
        assert a["fits"]


def test_per_stream_claim_says_which_kind_was_checked():
    result = llm_fit(MISTRAL_7B, RTX4000ADA, "fp16", context=0, claimed_tokens_per_s=200)
    assert result["claim"] == {"kind": "per_stream", "tokens_per_s": 200, "bound": result["decode_tokens_per_s_max"],
                               "streams": 1}
    assert "checked as a per-stream claim (one stream)" in result["errors"][0]


def test_aggregate_claim_is_checked_against_the_batched_bound():
    # "Concurrent Users: 10-20+ per GPU (with batching)": 16 streams of 2048 tokens share one weight read per step.
    ok = llm_fit(
        MISTRAL_7B, RTX4000ADA, "fp16", context=2048, concurrency=16, claimed_tokens_per_s=200,
        claimed_tokens_per_s_kind="aggregate",
    )
    assert ok["ok"], ok["errors"]
    assert ok["claim"]["kind"] == "aggregate" and ok["claim"]["streams"] == 16
    assert ok["claim"]["bound"] == pytest.approx(ok["aggregate_tokens_per_s_max"])
    # The same number for one stream is beyond the memory-bandwidth bound.
    per_stream = llm_fit(MISTRAL_7B, RTX4000ADA, "fp16", context=2048, concurrency=16, claimed_tokens_per_s=200)
    assert not per_stream["ok"]
    assert "checked as a per-stream claim (16 streams decoding together)" in per_stream["errors"][0]


def test_aggregate_claim_without_concurrency_uses_the_most_streams_that_fit():
    result = llm_fit(
        MISTRAL_7B, RTX4000ADA, "fp16", context=4096, claimed_tokens_per_s=800, claimed_tokens_per_s_kind="aggregate"
    )
    # 20475 MiB - 1 GiB overhead = 20.40 GB; less 14.48 GB of weights leaves 5.92 GB for KV caches of
    # 32 layers x 8 heads x 128 x 2 x 2 B x 4096 tokens = 0.537 GB: 11 streams.
    assert result["batch_max"] == 11
    message = result["errors"][0]
    assert message.startswith("claimed_tokens_per_s: 800 tok/s in aggregate exceeds the batched bound of")
    assert "11 streams (the most whose KV cache at 4096 tokens fits beside the weights)" in message
    assert message.endswith("checked as an aggregate claim over many streams, not per stream")


def test_aggregate_claim_without_context_has_no_memory_bound():
    result = llm_fit(
        MISTRAL_7B, RTX4000ADA, "fp16", context=0, claimed_tokens_per_s=10_000, claimed_tokens_per_s_kind="aggregate"
    )
    assert result["ok"] and result["claim"]["bound"] is None and result["batch_max"] is None


def test_offload_turns_does_not_fit_into_a_warning_with_the_ram_bound():
    strict = llm_fit(LLAMA31_70B, RTX4090, "fp16", tensor_parallel=4)
    assert any(e.startswith("does not fit in VRAM: needs") for e in strict["errors"])
    result = llm_fit(
        LLAMA31_70B, RTX4090, "fp16", tensor_parallel=4, offload="cpu", host_memory_bandwidth_gb_s=358.4,
        host_memory_gib=512,
    )
    assert result["ok"] and not result["fits"]
    offloaded = result["offload"]["bytes"]
    # Weights and KV cache beyond 4 x (24564 MiB - 1 GiB) stay in RAM and are read once per token.
    assert offloaded == pytest.approx(141.2e9 + result["kv_cache_bytes"] - 4 * (24564 * 2**20 - 2**30), rel=1e-6)
    assert result["offload"]["tokens_per_s_max"] == pytest.approx(358.4e9 / offloaded)
    assert result["decode_tokens_per_s_max"] == pytest.approx(358.4e9 / offloaded)
    warning = next(w for w in result["warnings"] if w.startswith("fits with CPU offload only"))
    assert f"= {358.4e9 / offloaded:.1f} tok/s per stream" in warning
    assert "RAM bandwidth / offloaded bytes read per token" in warning


def test_offload_claim_checked_against_the_ram_bound():
    result = llm_fit(
        LLAMA31_70B, RTX4090, "fp16", tensor_parallel=4, offload="cpu", host_memory_bandwidth_gb_s=358.4,
        claimed_tokens_per_s=40,
    )
    (error,) = result["errors"]
    assert error.startswith("claimed_tokens_per_s: 40 tok/s per stream exceeds the CPU-offload bound of")
    assert "358.4 GB/s of host RAM" in error


def test_offload_beyond_host_memory_is_an_error():
    result = llm_fit(
        LLAMA31_405B, RTX4090, "int4", tensor_parallel=4, offload="cpu", host_memory_bandwidth_gb_s=358.4,
        host_memory_gib=64,
    )
    assert any(e.startswith("offload: does not fit even with CPU offload") for e in result["errors"])


def test_offload_without_ram_bandwidth_says_the_bound_is_unknown():
    result = llm_fit(LLAMA31_70B, RTX4090, "fp16", tensor_parallel=4, offload="cpu")
    assert result["offload"]["tokens_per_s_max"] is None
    assert any("not computed: the host memory bandwidth is not known" in w for w in result["warnings"])


def test_offload_of_a_model_that_fits_changes_nothing():
    plain = llm_fit(LLAMA31_70B, RTX4090, "int4", tensor_parallel=4)
    offload = llm_fit(LLAMA31_70B, RTX4090, "int4", tensor_parallel=4, offload="cpu", host_memory_bandwidth_gb_s=100)
    assert offload["offload"] is None
    assert offload["decode_tokens_per_s_max"] == plain["decode_tokens_per_s_max"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"claimed_tokens_per_s_kind": "batched"}, "claimed_tokens_per_s_kind: must be one of per_stream, aggregate"),
        ({"offload": "disk"}, "offload: must be one of none, cpu, got 'disk'"),
        ({"offload": "cpu", "host_memory_bandwidth_gb_s": 0}, "host_memory_bandwidth_gb_s: must be > 0"),
    ],
)
def test_malformed_claim_kind_and_offload(kwargs, message):
    with pytest.raises(AnsibleFilterError, match=message):
        llm_fit(MISTRAL_7B, RTX4090, **kwargs)
