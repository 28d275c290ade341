# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What runs for each replica of a served LLM deployment: the engine's command line, its environment, the
GPUs and CPUs it gets, and the endpoint a load balancer checks.

Everything is computed from the host plan and its report's ``llm_serving`` figures (tensor-parallel size,
GPU memory fraction, context, concurrency): nothing is typed twice. Container engines (vLLM, TGI, Ollama) run
with ``docker run`` on the host network, bound to loopback (HAProxy is the only way in); llama.cpp runs
natively from a virtualenv. Options are the engines' own (checked against their recorded interfaces in
tests/unit/fixtures/llm).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from typing import Any

# Where a container sees the model store.
CONTAINER_MODELS = "/models"
# The endpoint each engine answers 200 on once its model is loaded. llama.cpp's server loads the model before it
# listens, and its model list waits for a running generation (a busy replica would look dead): its API page.
# Ollama answers before it has imported the model: its model list, which must name the deployment.
HEALTH = {"vllm": "/health", "tgi": "/health", "ollama": "/v1/models", "llamacpp": "/docs"}
HEALTH_NAMES_MODEL = ("ollama",)
# llama.cpp's server runs one request at a time (the others wait on a lock inside it): HAProxy keeps the queue,
# so that least-connections sends a request to a replica that is free.
MAXCONN = {"llamacpp": 1}
# Ollama keeps its own copy of a model (made from the staged GGUF when the replica starts) here.
OLLAMA_HOME = "/root/.ollama"
DTYPES = {"fp16": "float16", "bf16": "bfloat16", "fp32": "float32"}


class ServingError(Exception):
    """A plan the role cannot turn into services (the message names the deployment)."""


def model_path(store: str, name: str, source: str) -> str:
    """The staged copy of a deployment's model: <store>/<deployment>/<last part of the source>."""
    return posixpath.join(store, name, posixpath.basename(source.rstrip("/")))


def _cpus_near(plan: Mapping[str, Any], gpus: list[str]) -> str | None:
    """The CPUs of the NUMA nodes the GPUs hang off (None: no GPU or no NUMA node in the plan)."""
    table = plan["hardware"].get("gpus") or {}
    nodes = {table[g].get("numa_node") for g in gpus if g in table}
    if not gpus or None in nodes:
        return None
    cpus = [n["cpus"] for n in plan["hardware"].get("numa_nodes") or [] if n["id"] in nodes]
    return ",".join(cpus) or None


def _vllm(dep: Mapping[str, Any], fig: Mapping[str, Any], name: str, model: str, port: int) -> list[str]:
    # The image's entrypoint is `vllm serve`, which takes the model as its argument (--model is deprecated there).
    argv = [
        model, "--served-model-name", name, "--host", "127.0.0.1", "--port", str(port),
        "--tensor-parallel-size", str(fig["tensor_parallel"]),
        "--max-model-len", str(fig["context_tokens"]),
        "--max-num-seqs", str(fig["concurrency_per_replica"]),
    ]
    if fig.get("gpu_memory_fraction"):
        argv += ["--gpu-memory-utilization", f"{fig['gpu_memory_fraction']:.2f}"]
    precision = dep["precision"]
    if precision in DTYPES:
        argv += ["--dtype", DTYPES[precision]]
    elif precision == "fp8":
        argv += ["--quantization", "fp8"]
    return argv


def _tgi(dep: Mapping[str, Any], fig: Mapping[str, Any], name: str, model: str, port: int) -> list[str]:
    context = fig["context_tokens"]
    argv = [
        "--model-id", model, "--hostname", "127.0.0.1", "--port", str(port),
        "--num-shard", str(fig["tensor_parallel"]),
        "--max-total-tokens", str(context),
        # The prompt may take all but the last quarter of the context (TGI needs input < total).
        "--max-input-tokens", str(max(1, context - max(1, context // 4))),
        "--max-concurrent-requests", str(max(1, fig["concurrency_per_replica"])),
    ]
    if fig.get("gpu_memory_fraction"):
        argv += ["--cuda-memory-fraction", f"{fig['gpu_memory_fraction']:.2f}"]
    precision = dep["precision"]
    if precision in ("fp16", "bf16"):
        argv += ["--dtype", DTYPES[precision]]
    elif precision == "fp8":
        argv += ["--quantize", "fp8"]
    return argv


def _ollama_env(fig: Mapping[str, Any], port: int) -> dict[str, str]:
    return {
        "OLLAMA_HOST": f"127.0.0.1:{port}",
        "OLLAMA_MODELS": f"{OLLAMA_HOME}/models",
        "OLLAMA_CONTEXT_LENGTH": str(fig["context_tokens"]),
        "OLLAMA_NUM_PARALLEL": str(fig["concurrency_per_replica"]),
        "OLLAMA_MAX_LOADED_MODELS": "1",
        # Keep the model loaded: a replica that unloads it answers its next request after a reload.
        "OLLAMA_KEEP_ALIVE": "-1",
    }


def _llamacpp(fig: Mapping[str, Any], name: str, model: str, port: int, gpus: list[str],
              threads: int | None) -> list[str]:
    argv = [
        "-m", "llama_cpp.server", "--model", model, "--model_alias", name,
        "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", str(fig["context_tokens"]),
        "--n_gpu_layers", "-1" if gpus else "0",
        # A new request must not cut off a running stream; no load log on every start; the service's memory
        # limit, not mlock, keeps the weights resident.
        "--interrupt_requests", "false", "--verbose", "false", "--use_mlock", "false",
    ]
    if threads:
        argv += ["--n_threads", str(threads)]
    return argv


def _docker(unit: str, image: str, volumes: list[str], gpu_ids: list[str], gpu_access: str, cpus: str | None,
            memory_gb: float | None, env: Mapping[str, str], tp: int) -> list[str]:
    argv = ["/usr/bin/docker", "run", "--rm", "--name", unit, "--network", "host", "--pull", "never"]
    for volume in volumes:
        argv += ["--volume", volume]
    if gpu_ids:
        if gpu_access == "cdi":
            for gpu in gpu_ids:
                argv += ["--device", f"nvidia.com/gpu={gpu}"]
        else:
            argv += ["--runtime", "nvidia", "--gpus", f"\"device={','.join(gpu_ids)}\""]
    if tp > 1:
        # NCCL between the shards of one replica talks through shared memory.
        argv += ["--ipc", "host"]
    if cpus:
        argv += ["--cpuset-cpus", cpus]
    if memory_gb:
        argv += ["--memory", f"{int(memory_gb * 1024)}m"]
    for key in sorted(env):
        argv += ["--env", f"{key}={env[key]}"]
    return [*argv, image]


def replicas(plan: Mapping[str, Any], figures: Mapping[str, Any], settings: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One entry per replica of every served deployment, in plan order.

    ``settings``: ``store`` (the model store directory), ``state`` (per-replica writable state),
    ``python`` (llama.cpp's virtualenv Python),
    ``gpu_ids`` ({plan GPU name: UUID}), ``gpu_access`` (``cdi`` or ``runtime``).
    """
    out = []
    deployments = plan["intent"].get("llm_deployments") or {}
    for name, fig in figures.items():
        dep = deployments[name]
        serve = dep["serve"]
        engine = serve["engine"]
        staged = model_path(settings["store"], name, serve["source"])
        for index, gpus in enumerate(fig["gpus_by_replica"]):
            port = fig["replica_ports"][index]
            unit = f"onprem-llm-{name}-{index}"
            missing = [g for g in gpus if g not in settings["gpu_ids"]]
            if missing:
                raise ServingError(
                    f"{name}: replica {index} needs {', '.join(missing)}, which this host does not report "
                    f"(GPUs seen: {', '.join(sorted(settings['gpu_ids'])) or 'none'})"
                )
            gpu_ids = [settings["gpu_ids"][g] for g in gpus]
            cpus = _cpus_near(plan, gpus)
            entry: dict[str, Any] = {
                "unit": unit,
                "deployment": name,
                "replica": index,
                "engine": engine,
                "port": port,
                "gpus": gpus,
                "gpu_ids": gpu_ids,
                "cpus": cpus,
                "memory_gb": serve.get("memory_gb"),
                "health": HEALTH[engine],
                "health_expect": name if engine in HEALTH_NAMES_MODEL else None,
                "post_start": [],
                "model": staged,
                "container": engine != "llamacpp",
                "env": {},
            }
            if engine == "llamacpp":
                args = _llamacpp(fig, name, staged, port, gpus, serve.get("cpu_threads"))
                entry["argv"] = [settings["python"], *args]
                entry["env"] = {"CUDA_VISIBLE_DEVICES": ",".join(gpu_ids)}
            else:
                inside = posixpath.join(CONTAINER_MODELS, posixpath.basename(serve["source"].rstrip("/")))
                volumes = [f"{posixpath.join(settings['store'], name)}:{CONTAINER_MODELS}:ro"]
                if engine == "vllm":
                    args = _vllm(dep, fig, name, inside, port)
                    env: dict[str, str] = {"HF_HUB_OFFLINE": "1"}
                elif engine == "tgi":
                    args = _tgi(dep, fig, name, inside, port)
                    env = {"HF_HUB_OFFLINE": "1"}
                else:
                    args, env = ["serve"], _ollama_env(fig, port)
                    volumes.append(f"{posixpath.join(settings['state'], unit)}:{OLLAMA_HOME}")
                    # Ollama serves only what it has imported: the staged GGUF, under the deployment's name.
                    entry["post_start"] = [
                        "/usr/bin/docker", "exec", unit, "/bin/sh", "-c",
                        f"printf 'FROM {inside}\\n' > /tmp/Modelfile && ollama create {name} -f /tmp/Modelfile",
                    ]
                entry["argv"] = _docker(unit, serve["image"], volumes, gpu_ids,
                                        settings.get("gpu_access", "cdi"), cpus, serve.get("memory_gb"), env,
                                        fig["tensor_parallel"]) + args
            out.append(entry)
    return out


_PLAIN = re.compile(r"^[A-Za-z0-9_@%+=:,./-]+$")


def systemd_quote(argv: list[str]) -> str:
    """A command line as systemd reads it in ExecStart= (specifiers and variables escaped, words quoted)."""
    words = []
    for arg in argv:
        arg = arg.replace("%", "%%").replace("$", "$$")
        words.append(arg if _PLAIN.match(arg) else '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return " ".join(words)


def serving_plan(plan: Mapping[str, Any], report: Mapping[str, Any], settings: Mapping[str, Any]) -> dict[str, Any]:
    """What the llm_serving role deploys: ``{errors, deployments, replicas}``.

    ``errors``: the report's errors about the served deployments (the schema's, llm_fit's and llm_serving's),
    each ``path: message``; with any, nothing else is computed. ``replicas``: see replicas(), each with its
    ExecStart line (``exec``). ``deployments``: {name: {engine, port, health, health_expect, sha256, source,
    dest, units}}.
    """
    deployments = plan.get("intent", {}).get("llm_deployments") or {}
    served = {n for n, d in deployments.items() if isinstance(d, Mapping) and d.get("serve")}

    def about_served(path: str) -> bool:
        return any(path == f"{prefix}{n}" or path.startswith(f"{prefix}{n}.") for n in served)

    prefix = "host_plan.intent.llm_deployments."
    errors = [
        f"{e['path']}: {e['message']}"
        for e in report.get("errors", [])
        if e.get("check") in ("schema", "llm_fit", "llm_serving") and about_served(e["path"])
    ]
    figures = report.get("figures", {}).get("llm_serving") or {}
    if served - set(figures) and not errors:
        # The report stopped before the serving check (a plan whose shape is broken): its errors say why.
        errors = [f"{e['path']}: {e['message']}" for e in report.get("errors", [])] or [
            f"host_plan: no serving figures for {', '.join(sorted(served - set(figures)))}"
        ]
    if errors or not served:
        return {"errors": errors, "deployments": {}, "replicas": []}
    try:
        units = replicas(plan, figures, settings)
    except ServingError as exc:
        return {"errors": [str(exc)], "deployments": {}, "replicas": []}
    for unit in units:
        unit["exec"] = systemd_quote(unit["argv"])
        unit["exec_post"] = systemd_quote(unit["post_start"]) if unit["post_start"] else ""
    out = {}
    for name in figures:
        serve = deployments[name]["serve"]
        mine = [u for u in units if u["deployment"] == name]
        out[name] = {
            "engine": serve["engine"],
            "port": serve["port"],
            "health": HEALTH[serve["engine"]],
            "health_expect": mine[0]["health_expect"],
            "maxconn": MAXCONN.get(serve["engine"]),
            "sha256": serve["sha256"],
            "source": serve["source"],
            "dest": posixpath.join(settings["store"], name),
            "units": [u["unit"] for u in mine],
        }
    return {"errors": [], "deployments": out, "replicas": units}
