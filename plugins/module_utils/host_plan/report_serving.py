# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Serving part of the plan report: how each served deployment's replicas take GPUs, ports and memory.

A deployment with a ``serve`` section is one the llm_serving role deploys; this check makes sure the role
can: every GPU serves one deployment on the host (not two, not one a VM owns), the GPUs split evenly into
replicas, the ports are free of each other and of the services the collection runs, and the engine can run
what the plan asks (no GPU: only llama.cpp and Ollama run on the CPU). Its figures are what the role passes
to the engines (tensor-parallel size, GPU memory fraction, context, concurrency per replica).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan import adapter
from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.llm import bits_for

INTENT = adapter.INTENT
CONTAINER_ENGINES = ("vllm", "tgi", "ollama")
# Ports the collection's own services listen on (their roles' defaults), and the hypervisor's.
SERVICE_PORTS = {
    22: "sshd",
    111: "rpcbind (Proxmox)",
    3000: "Grafana",
    3128: "the Proxmox SPICE proxy",
    3493: "NUT's upsd",
    8006: "the Proxmox web interface",
    8404: "the HAProxy statistics page",
    9090: "Prometheus",
    9093: "Alertmanager",
    9094: "Alertmanager's cluster port",
    9100: "node_exporter",
    9400: "the DCGM exporter",
}
# The most of a GPU's memory an engine is told it may take: the rest is the CUDA context of other
# processes and fragmentation (vLLM's own default is 0.9).
MAX_GPU_MEMORY_FRACTION = 0.95


def replica_ports(serve: Mapping[str, Any]) -> list[int]:
    """The loopback ports of the replicas: ``replica_port`` (default: the frontend port + 1) upwards."""
    first = serve.get("replica_port", serve["port"] + 1)
    return list(range(first, first + serve.get("replicas", 1)))


def _gpu_split(ctx: Any, path: str, name: str, dep: Mapping[str, Any], serve: Mapping[str, Any]) -> list[list[str]]:
    gpus, replicas = list(dep["gpus"]), serve.get("replicas", 1)
    if not gpus:
        # Only an engine that runs on the CPU gets here (the schema refuses the others).
        return [[] for replica in range(replicas)]
    if len(gpus) % replicas:
        ctx.findings.error(
            f"{path}.serve.replicas",
            "llm_serving",
            f"{name}: {len(gpus)} GPUs do not split evenly into {replicas} replicas",
        )
        return []
    size = len(gpus) // replicas
    return [gpus[i * size:(i + 1) * size] for i in range(replicas)]


def _cpu_memory(ctx: Any, path: str, name: str, dep: Mapping[str, Any], serve: Mapping[str, Any]) -> float:
    """Bytes of host memory one CPU replica holds (weights; the KV cache is small beside them)."""
    weights = dep["params_b"] * 1e9 * bits_for(dep["precision"]) / 8
    total_gb = adapter.section(ctx.plan, "hardware", "memory").get("total_gb")
    need = weights * serve.get("replicas", 1)
    if total_gb and need > total_gb * 1e9 * 0.8:
        ctx.findings.error(
            f"{path}.params_b",
            "llm_serving",
            f"{name}: {serve.get('replicas', 1)} CPU replica(s) of {weights / 1e9:.1f} GB of weights need "
            f"{need / 1e9:.1f} GB, more than 80% of the host's {total_gb:g} GB",
        )
    return weights


def _gpu_fraction(ctx: Any, path: str, name: str, fig: Mapping[str, Any] | None) -> float | None:
    if not fig or not fig.get("fits") or not fig.get("vram_gib_per_gpu"):
        return None
    fraction = math.ceil(fig["required_gib_per_gpu"] / fig["vram_gib_per_gpu"] * 100) / 100
    if fraction > MAX_GPU_MEMORY_FRACTION:
        ctx.findings.error(
            f"{path}.context_tokens",
            "llm_serving",
            f"{name}: a replica needs {fig['required_gib_per_gpu']:g} GiB of each GPU's "
            f"{fig['vram_gib_per_gpu']:g} GiB ({fraction:.0%}); leave {1 - MAX_GPU_MEMORY_FRACTION:.0%} free "
            "(a shorter context, fewer concurrent requests, or more GPUs per replica)",
        )
    return min(fraction, MAX_GPU_MEMORY_FRACTION)


def _ports(ctx: Any, served: dict[str, dict[str, Any]]) -> None:
    owners: dict[int, str] = {port: f"{what}'s port" for port, what in SERVICE_PORTS.items()}
    for name, item in served.items():
        path = f"{INTENT}.llm_deployments.{name}.serve"
        serve = item["serve"]
        for where, port in [("port", serve["port"])] + [("replica_port", p) for p in replica_ports(serve)]:
            if port > 65535:
                ctx.findings.error(f"{path}.{where}", "llm_serving", f"{name}: replica port {port} is beyond 65535")
                continue
            what = "its frontend" if where == "port" else "a replica"
            if port in owners:
                ctx.findings.error(
                    f"{path}.{where}",
                    "llm_serving",
                    f"{name}: {what} would listen on {port}, which is {owners[port]}",
                )
                continue
            owners[port] = f"{name}'s {'frontend' if where == 'port' else 'replica'} port"


def check_serving(ctx: Any) -> None:
    """Check every served deployment and compute what its engine is told."""
    deployments = adapter.section(ctx.plan, "intent", "llm_deployments") or {}
    served = {n: d for n, d in deployments.items() if d.get("serve")}
    if not served:
        return
    vm_gpus = {g: vm["name"] for vm in ctx.vms for g in vm.get("gpus") or []}
    gpu_owner: dict[str, str] = {}
    rows, figures = [], ctx.figures.setdefault("llm_serving", {})
    for name, dep in served.items():
        path = f"{INTENT}.llm_deployments.{name}"
        serve = dep["serve"]
        engine = serve["engine"]
        if engine in CONTAINER_ENGINES and not serve.get("image"):
            ctx.findings.error(f"{path}.serve.image", "llm_serving",
                               f"{name}: {engine} runs as a container; name its image pinned by digest")
        if engine not in CONTAINER_ENGINES and serve.get("image"):
            ctx.findings.warning(f"{path}.serve.image", "llm_serving",
                                 f"{name}: {engine} runs natively; the image is not used")
        for gpu in dep["gpus"]:
            if gpu in vm_gpus:
                ctx.findings.error(
                    f"{path}.gpus", "llm_serving",
                    f"{name}: {gpu} is passed through to VM {vm_gpus[gpu]}; a host service cannot use it",
                )
            elif gpu in gpu_owner:
                ctx.findings.error(f"{path}.gpus", "llm_serving",
                                   f"{name}: {gpu} already serves deployment {gpu_owner[gpu]}")
            else:
                gpu_owner[gpu] = name
        split = _gpu_split(ctx, path, name, dep, serve)
        fig = (ctx.figures.get("llm") or {}).get(name)
        if dep["gpus"] and fig and not fig.get("fits") and not fig.get("fits_with_offload"):
            ctx.findings.error(path, "llm_serving", f"{name}: not served: a replica does not fit its GPUs (llm_fit)")
        fraction = _gpu_fraction(ctx, path, name, fig) if dep["gpus"] else None
        weights = None if dep["gpus"] else _cpu_memory(ctx, path, name, dep, serve)
        replicas = serve.get("replicas", 1)
        figures[name] = {
            "engine": engine,
            "replicas": replicas,
            "gpus_by_replica": split,
            "tensor_parallel": len(split[0]) if split and split[0] else 0,
            "port": serve["port"],
            "replica_ports": replica_ports(serve),
            "gpu_memory_fraction": fraction,
            "context_tokens": dep.get("context_tokens", 4096),
            "concurrency_per_replica": -(-dep.get("concurrency", 1) // replicas),
            "cpu_weights_gb": None if weights is None else round(weights / 1e9, 2),
        }
        rows.append([name, engine, replicas, [" + ".join(r) or "CPU" for r in split], serve["port"],
                     figures[name]["replica_ports"], fraction, serve["source"]])
    _ports(ctx, served)
    ctx.table(
        "LLM serving",
        ["deployment", "engine", "replicas", "GPUs by replica", "port", "replica ports", "GPU memory fraction",
         "model source"],
        rows,
    )
