"""The command lines the llm_serving role gives vLLM, TGI and Ollama, checked against each engine's recorded
interface (tests/unit/fixtures/llm, SOURCES.md there: vLLM 0.34.0's `vllm serve` options read from its PyPI
source distribution, TGI 3.3.7's launcher options from its source and recorded --help, Ollama 0.32.15's
environment variables from its source). No engine runs here: these say that every option the role writes exists
in that release, takes a value of the kind written, and is one of its choices where it has any."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.report import build_report
from ansible_collections.onprem.gpu_server.plugins.module_utils.llm.engines import CONTAINER_MODELS, serving_plan

REPO = Path(__file__).resolve().parents[5]
FIXTURES = REPO / "tests/unit/fixtures/llm"
VLLM = json.loads((FIXTURES / "vllm-0.34.0-serve-options.json").read_text())
TGI = json.loads((FIXTURES / "tgi-3.3.7-launcher-options.json").read_text())
OLLAMA = json.loads((FIXTURES / "ollama-0.32.15-env.json").read_text())
PLAN = yaml.safe_load((REPO / "inventories/examples/rtx4090/host_vars/rtx4090/host_plan.yml").read_text())["host_plan"]
SETTINGS = {"store": "/srv/models", "state": "/var/lib/onprem/llm", "python": "/opt/llm/bin/python",
            "gpu_ids": {f"gpu{i}": f"GPU-{i}" for i in range(1, 5)}, "gpu_access": "cdi"}
DIGEST = "@sha256:" + "ab" * 32


def replicas(engine: str, precision: str, gpus: list[str], replicas_n: int = 1,
             settings: dict[str, Any] | None = None, **extra: Any) -> list[dict[str, Any]]:
    plan = copy.deepcopy(PLAN)
    plan["intent"]["llm_deployments"] = {
        "chat": {
            "model": "Llama 3.1 8B", "params_b": 8, "precision": precision, "gpus": gpus, "context_tokens": 8192,
            "concurrency": 4,
            "serve": {"engine": engine, "image": f"docker.io/example/{engine}{DIGEST}", "source": "llama-3.1-8b",
                      "sha256": "c" * 64, "port": 8000, "replicas": replicas_n, **extra},
        }
    }
    result = serving_plan(plan, build_report(plan), settings or SETTINGS)
    assert result["errors"] == []
    return result["replicas"]


def engine_args(replica: dict[str, Any]) -> list[str]:
    """What follows the image in `docker run ... IMAGE ARGS`."""
    argv = replica["argv"]
    return argv[next(i for i, a in enumerate(argv) if DIGEST in a) + 1:]


def check_against(args: list[str], options: dict[str, Any], positionals: int) -> None:
    seen_positionals = 0
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--"):
            seen_positionals += 1
            i += 1
            continue
        assert arg in options, f"{arg} is not an option of this release"
        spec = options[arg]
        assert not spec.get("deprecated"), f"{arg} is deprecated in this release"
        if spec["takes_value"]:
            value = args[i + 1]
            if spec.get("type") == "int":
                int(value)
            elif spec.get("type") == "float":
                float(value)
            if spec.get("choices"):
                assert value in spec["choices"], f"{arg} {value}: not one of {spec['choices']}"
            if spec.get("known_values"):
                assert value in spec["known_values"], f"{arg} {value}: not a method this release knows"
            i += 2
        else:
            i += 1
    assert seen_positionals == positionals


@pytest.mark.parametrize("precision", ["fp16", "bf16", "fp8", "int4"])
@pytest.mark.parametrize(("gpus", "n"), [(["gpu1"], 1), (["gpu1", "gpu2", "gpu3", "gpu4"], 2)])
def test_vllm_serve_accepts_what_the_role_writes(precision: str, gpus: list[str], n: int) -> None:
    for replica in replicas("vllm", precision, gpus, n):
        args = engine_args(replica)
        assert args[0] == f"{CONTAINER_MODELS}/llama-3.1-8b", "the model is vllm serve's positional argument"
        check_against(args, VLLM["options"], positionals=1)
        assert args[args.index("--tensor-parallel-size") + 1] == str(len(gpus) // n)
        assert replica["health"] == "/health"


@pytest.mark.parametrize("precision", ["fp16", "bf16", "fp8", "int4"])
@pytest.mark.parametrize(("gpus", "n"), [(["gpu1"], 1), (["gpu1", "gpu2", "gpu3", "gpu4"], 1)])
def test_tgi_launcher_accepts_what_the_role_writes(precision: str, gpus: list[str], n: int) -> None:
    for replica in replicas("tgi", precision, gpus, n):
        args = engine_args(replica)
        check_against(args, TGI["options"], positionals=0)
        total = int(args[args.index("--max-total-tokens") + 1])
        assert int(args[args.index("--max-input-tokens") + 1]) < total, "TGI needs input < total tokens"
        assert args[args.index("--num-shard") + 1] == str(len(gpus) // n)


def test_ollama_reads_the_variables_the_role_sets() -> None:
    (replica,) = replicas("ollama", "int4", ["gpu1"])
    argv = replica["argv"]
    env = dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "--env")
    for key in env:
        assert key in OLLAMA["env"], f"{key} is not read by this Ollama release"
    assert env["OLLAMA_HOST"] == "127.0.0.1:8001"
    assert int(env["OLLAMA_CONTEXT_LENGTH"]) == 8192
    assert engine_args(replica) == ["serve"]
    assert replica["post_start"][-1].endswith("ollama create chat -f /tmp/Modelfile")


def test_gpus_through_the_nvidia_runtime_instead_of_cdi() -> None:
    (replica,) = replicas("vllm", "fp16", ["gpu1", "gpu2"])
    assert replica["argv"].count("--device") == 2
    (replica,) = replicas("vllm", "fp16", ["gpu1", "gpu2"], settings={**SETTINGS, "gpu_access": "runtime"})
    argv = replica["argv"]
    assert argv[argv.index("--gpus") + 1] == '"device=GPU-1,GPU-2"'
    assert "--device" not in argv
