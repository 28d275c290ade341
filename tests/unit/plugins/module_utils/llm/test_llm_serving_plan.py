"""The plan gate for served LLM deployments and what the engines are told, on the workstation example's
hardware (4 x RTX 4090, 24 GB): a GPU named twice, passed to a VM, a model that does not fit, replicas that do
not split the GPUs, a port another service owns - each an error naming the deployment; the figures an engine
gets (tensor-parallel size, GPU memory fraction, context, concurrency per replica) come from the plan."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.report import build_report
from ansible_collections.onprem.gpu_server.plugins.module_utils.llm.engines import serving_plan, systemd_quote

REPO = Path(__file__).resolve().parents[5]
PLAN = yaml.safe_load((REPO / "inventories/examples/rtx4090/host_vars/rtx4090/host_plan.yml").read_text())["host_plan"]
IMAGE = "docker.io/vllm/vllm-openai:v0.11.0@sha256:" + "ab" * 32
SETTINGS = {"store": "/srv/models", "state": "/var/lib/onprem/llm", "python": "/opt/llm/bin/python",
            "gpu_ids": {f"gpu{i}": f"GPU-{i}" for i in range(1, 5)}, "gpu_access": "cdi"}


def deployment(**serve: Any) -> dict[str, Any]:
    base = {"engine": "vllm", "image": IMAGE, "source": "llama-3.1-8b", "sha256": "c" * 64, "port": 8000}
    return {"model": "Llama 3.1 8B", "params_b": 8, "precision": "fp16", "gpus": ["gpu1"], "context_tokens": 8192,
            "concurrency": 4, "serve": {**base, **serve}}


def plan_with(**deployments: dict[str, Any]) -> dict[str, Any]:
    plan = copy.deepcopy(PLAN)
    plan["intent"]["llm_deployments"] = deployments
    return plan


def serving_errors(plan: dict[str, Any]) -> list[str]:
    return serving_plan(plan, build_report(plan), SETTINGS)["errors"]


def test_four_replicas_on_four_gpus_behind_one_port() -> None:
    dep = deployment(replicas=4, port=8000)
    dep["gpus"] = ["gpu1", "gpu2", "gpu3", "gpu4"]
    result = serving_plan(plan_with(chat=dep), build_report(plan_with(chat=dep)), SETTINGS)
    assert result["errors"] == []
    assert [r["port"] for r in result["replicas"]] == [8001, 8002, 8003, 8004]
    assert [r["gpu_ids"] for r in result["replicas"]] == [["GPU-1"], ["GPU-2"], ["GPU-3"], ["GPU-4"]]
    argv = result["replicas"][0]["argv"]
    assert argv[argv.index("--tensor-parallel-size") + 1] == "1"
    assert argv[argv.index("--max-model-len") + 1] == "8192"
    assert argv[argv.index("--max-num-seqs") + 1] == "1"  # 4 concurrent requests over 4 replicas
    # 8B fp16 is 16 GB of weights; with the KV cache and overhead about 0.8 of a 24 GB card.
    fraction = float(argv[argv.index("--gpu-memory-utilization") + 1])
    assert 0.7 < fraction < 0.95
    assert argv[argv.index("--device"):argv.index("--device") + 2] == ["--device", "nvidia.com/gpu=GPU-1"]
    assert IMAGE in argv


def test_tensor_parallel_from_the_gpus_per_replica() -> None:
    dep = deployment(replicas=2, engine="tgi")
    dep.update(model="Llama 3.1 70B", params_b=70, precision="int4", gpus=["gpu1", "gpu2", "gpu3", "gpu4"],
               context_tokens=4096)
    plan = plan_with(big=dep)
    result = serving_plan(plan, build_report(plan), SETTINGS)
    assert result["errors"] == []
    argv = result["replicas"][1]["argv"]
    assert argv[argv.index("--num-shard") + 1] == "2"
    assert result["replicas"][1]["gpu_ids"] == ["GPU-3", "GPU-4"]
    assert "--ipc" in argv


@pytest.mark.parametrize(
    ("deployments", "path", "words"),
    [
        pytest.param({"a": deployment(), "b": deployment(port=8100)}, "b.gpus",
                     ["b:", "gpu1 already serves deployment a"], id="gpu-named-twice"),
        pytest.param({"big": {**deployment(), "model": "Llama 3.1 70B", "params_b": 70}}, "big",
                     ["big:", "does not fit"], id="exceeds-vram"),
        pytest.param({"a": deployment(port=9090)}, "a.serve.port", ["a:", "9090", "Prometheus"], id="port-prometheus"),
        pytest.param({"a": deployment(replica_port=9100)}, "a.serve.replica_port", ["a:", "node_exporter"],
                     id="replica-port-node-exporter"),
        pytest.param({"a": deployment(port=8000), "b": {**deployment(port=8100, replica_port=8001), "gpus": ["gpu2"]}},
                     "b.serve.replica_port", ["b:", "8001", "a's replica port"], id="port-of-another-deployment"),
        pytest.param({"a": {**deployment(replicas=3), "gpus": ["gpu1", "gpu2"]}}, "a.serve.replicas",
                     ["a:", "2 GPUs do not split evenly into 3 replicas"], id="uneven-replicas"),
        pytest.param({"a": deployment(image=None)}, "a.serve.image", ["a:", "pinned by digest"], id="no-image"),
        pytest.param({"a": {**deployment(), "context_tokens": 131072, "concurrency": 4}}, "a",
                     ["a:"], id="context-too-long"),
    ],
)
def test_the_plan_gate_names_the_deployment(deployments: dict[str, Any], path: str, words: list[str]) -> None:
    for dep in deployments.values():
        if dep["serve"].get("image", "") is None:
            del dep["serve"]["image"]
    errors = serving_errors(plan_with(**deployments))
    full = f"host_plan.intent.llm_deployments.{path}: "
    assert any(e.startswith(full) and all(w in e for w in words) for e in errors), errors


def test_a_gpu_passed_to_a_vm_cannot_serve_on_the_host() -> None:
    plan = plan_with(a=deployment())
    plan["intent"]["vms"] = {"guest": {"vcpus": 2, "memory_gb": 8, "gpus": ["gpu1"]}}
    errors = serving_errors(plan)
    assert any("a: gpu1 is passed through to VM guest" in e for e in errors), errors


def test_schema_refuses_a_tag_without_digest_and_a_path_out_of_the_dataset() -> None:
    errors = serving_errors(plan_with(a=deployment(image="docker.io/vllm/vllm-openai:latest", source="../etc")))
    assert any(e.startswith("host_plan.intent.llm_deployments.a.serve.image:") for e in errors), errors
    assert any(e.startswith("host_plan.intent.llm_deployments.a.serve.source:") for e in errors), errors


def test_only_cpu_engines_run_without_gpus() -> None:
    errors = serving_errors(plan_with(a={**deployment(), "gpus": []}))
    assert any(e.startswith("host_plan.intent.llm_deployments.a.gpus:") and "llamacpp" in e for e in errors), errors
    cpu = {**deployment(engine="llamacpp", image=None), "gpus": [], "params_b": 1, "precision": "int4"}
    del cpu["serve"]["image"]
    result = serving_plan(plan_with(a=cpu), build_report(plan_with(a=cpu)), SETTINGS)
    assert result["errors"] == []
    assert result["replicas"][0]["argv"][:3] == ["/opt/llm/bin/python", "-m", "llama_cpp.server"]
    assert result["replicas"][0]["env"] == {"CUDA_VISIBLE_DEVICES": ""}


def test_a_gpu_the_host_does_not_report_is_an_error() -> None:
    plan = plan_with(a=deployment())
    result = serving_plan(plan, build_report(plan), {**SETTINGS, "gpu_ids": {}})
    assert result["errors"] == ["a: replica 0 needs gpu1, which this host does not report (GPUs seen: none)"]


def test_cpus_near_the_gpus() -> None:
    plan = plan_with(a=deployment())
    replica = serving_plan(plan, build_report(plan), SETTINGS)["replicas"][0]
    node = next(n for n in PLAN["hardware"]["numa_nodes"] if n["id"] == PLAN["hardware"]["gpus"]["gpu1"]["numa_node"])
    assert replica["cpus"] == node["cpus"]
    assert ["--cpuset-cpus", node["cpus"]] == replica["argv"][replica["argv"].index("--cpuset-cpus"):][:2]


def test_systemd_quoting() -> None:
    assert systemd_quote(["/bin/x", "--gpus", '"device=a,b"', "50%", "$HOME", "a b"]) == (
        '/bin/x --gpus "\\"device=a,b\\"" 50%% "$$HOME" "a b"'
    )
