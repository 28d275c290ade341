"""llm_fit against both specs' model claims."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from hypothesis import given, settings
from hypothesis import strategies as st
from plan_specs import LLAMA31_70B, LLAMA31_405B, MISTRAL_7B, RTX4000ADA, RTX4090

from ansible_collections.onprem.gpu_server.plugins.filter.llm_fit import llm_fit
from ansible_collections.onprem.gpu_server.plugins.module_utils.plan.llm import BITS_PER_WEIGHT


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
