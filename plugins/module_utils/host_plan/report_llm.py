# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""LLM part of the plan report: every deployment's fit, decode-speed bound and load time."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan import adapter
from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.findings import split_prefix
from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.llm import GIB, plan_llm_fit
from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.pcie import GB_S_PER_LANE

INTENT = adapter.INTENT
# Sizes (billions of parameters) each family was published in (the vendors' model cards).
FAMILIES = {
    "llama 3.1": (8, 70, 405),
    "llama 3.2": (1, 3, 11, 90),
    "llama 3.3": (70,),
    "llama 3": (8, 70),
}
_TRAILING_SIZE = re.compile(r"\s*\d+(\.\d+)?\s*b\b.*$", re.I)


def _family_check(ctx: Any, path: str, model: str, params_b: float) -> None:
    name = _TRAILING_SIZE.sub("", model.lower().replace("-", " ")).strip()
    sizes = FAMILIES.get(name)
    if sizes and not any(abs(params_b - s) / s < 0.15 for s in sizes):
        ctx.findings.warning(
            f"{path}.model",
            "llm_fit",
            f"{model}: {name.title()} was published in {', '.join(f'{s}B' for s in sizes)} only; "
            f"there is no {params_b:g}B model of it",
        )


def _load_bound_gbs(ctx: Any, gpus: list[str]) -> tuple[float | None, str]:
    """Fastest storage read rate in the plan, limited by the GPUs' PCIe links."""
    if "storage" in ctx.skipped and adapter.section(ctx.plan, "intent", "md_arrays"):
        return None, "the md arrays were not checked"
    sources: list[tuple[float, str]] = []
    for name, md in (ctx.figures.get("md") or {}).items():
        if md.get("read_bound_gbs"):
            sources.append((md["read_bound_gbs"], f"md array {name}"))
    for name, disk in (adapter.section(ctx.plan, "hardware", "disks") or {}).items():
        if disk.get("seq_read_mbs"):
            sources.append((disk["seq_read_mbs"] / 1000, f"disk {name}"))
    if not sources:
        return None, "no read rate in the plan"
    rate, source = max(sources)
    table = adapter.section(ctx.plan, "hardware", "gpus")
    links = [GB_S_PER_LANE.get(table[g].get("pcie_gen", 0), 0) * table[g].get("pcie_width", 0) for g in gpus]
    if all(links) and sum(links) < rate:
        return sum(links), "the GPUs' PCIe links"
    return rate, source


def _claim_cell(dep: Mapping[str, Any]) -> str | None:
    if dep.get("claimed_tok_s") is None:
        return None
    kind = dep.get("claimed_tok_s_kind", "per_stream").replace("_", " ")
    return f"{dep['claimed_tok_s']:g} ({kind})"


def _where(path: str, prefix: str | None, message: str) -> str:
    """The plan variable a llm_fit message is about."""
    if prefix == "claimed_vram_gb":
        return f"{path}.claimed_vram_gb"
    if prefix == "claimed_tokens_per_s":
        return f"{path}.claimed_tok_s"
    if prefix == "offload" or message.startswith("fits with CPU offload"):
        return f"{path}.offload"
    return path


def check_llm(ctx: Any) -> None:
    """Run llm_fit for every deployment and compare each claim with the bound of its kind."""
    f = ctx.findings
    deployments = adapter.section(ctx.plan, "intent", "llm_deployments") or {}
    owner: dict[str, str] = {}
    for vm in ctx.vms:
        for gpu in vm.get("gpus") or []:
            owner.setdefault(gpu, vm["name"])
    ram_gbs, ram_basis = adapter.ram_bandwidth_gbs(ctx.plan)
    rows = []
    for name, dep in deployments.items():
        path = f"{INTENT}.llm_deployments.{name}"
        _family_check(ctx, path, dep["model"], dep["params_b"])
        if not dep["gpus"]:
            # Served on the CPU: the llm_serving check weighs it against host memory.
            continue
        # Each replica holds the whole model on its share of the GPUs (tensor parallel within a replica).
        replicas = (dep.get("serve") or {}).get("replicas", 1)
        per_replica = len(dep["gpus"]) // replicas if len(dep["gpus"]) % replicas == 0 else len(dep["gpus"])
        gpu = adapter.llm_gpu(ctx.plan, dep["gpus"])
        has_bandwidth = "bandwidth_gb_s" in gpu
        if not has_bandwidth:
            gpu["bandwidth_gb_s"] = 1
            f.note(f"{path}.gpus", "llm_fit", "decode bound not computed: a GPU has no memory_bandwidth_gbs")
        offload = dep.get("offload", "none")
        result = plan_llm_fit(
            {"name": dep["model"], "params_b": dep["params_b"]},
            gpu,
            dep["precision"],
            per_replica,
            dep.get("context_tokens", 4096),
            -(-dep.get("concurrency", 1) // replicas),
            claimed_tokens_per_s=dep.get("claimed_tok_s") if has_bandwidth else None,
            claimed_vram_gb=dep.get("claimed_vram_gb"),
            claimed_tokens_per_s_kind=dep.get("claimed_tok_s_kind", "per_stream"),
            offload=offload,
            host_memory_bandwidth_gb_s=ram_gbs,
            host_memory_gib=adapter.section(ctx.plan, "hardware", "memory").get("total_gb"),
        )
        if offload == "cpu" and result["fits"]:
            f.note(f"{path}.offload", "llm_fit", "the model fits the GPUs; nothing is offloaded to host RAM")
        ram_assumption = f"host memory bandwidth {ram_gbs:.1f} GB/s: {ram_basis}" if ram_gbs else ram_basis
        fit_errors = False
        for kind in ("errors", "warnings"):
            for raw in result[kind]:
                prefix, rest = split_prefix(raw)
                if prefix == "model":
                    f.note(f"{path}.params_b", "llm_fit", rest)
                    continue
                message = rest if prefix else raw
                fit_errors = fit_errors or (kind == "errors" and "does not fit" in message)
                (f.error if kind == "errors" else f.warning)(
                    _where(path, prefix, message),
                    "llm_fit",
                    f"{dep['model']} {dep['precision']}: {message}",
                    ram_assumption if "offload" in message.lower() else None,
                )
        weights_gb = result["weights_bytes"] / 1e9
        claimed_model = dep.get("claimed_model_gb")
        if claimed_model and abs(claimed_model - weights_gb) / weights_gb > 0.1:
            f.warning(
                f"{path}.claimed_model_gb",
                "llm_fit",
                f"{claimed_model:g} GB claimed; {dep['params_b']:g}B parameters at {result['bits_per_weight']:g} "
                f"bits are {weights_gb:.1f} GB",
            )
        load_s = None
        if dep.get("claimed_load_s"):
            rate, source = _load_bound_gbs(ctx, dep["gpus"])
            if rate is None:
                f.note(f"{path}.claimed_load_s", "llm_fit", f"not checked: {source}")
            else:
                load_s = (claimed_model or weights_gb) / rate
                if dep["claimed_load_s"] < load_s:
                    f.error(
                        f"{path}.claimed_load_s",
                        "llm_fit",
                        f"{dep['claimed_load_s']:g} s is faster than reading {claimed_model or weights_gb:.0f} GB "
                        f"at {rate:.1f} GB/s ({source}): at least {load_s:.1f} s",
                    )
                elif dep["claimed_load_s"] < 1.5 * load_s:
                    f.warning(
                        f"{path}.claimed_load_s",
                        "llm_fit",
                        f"{dep['claimed_load_s']:g} s needs "
                        f"{(claimed_model or weights_gb) / dep['claimed_load_s']:.1f} GB/s sustained, "
                        f"{load_s / dep['claimed_load_s']:.0%} of the {rate:.1f} GB/s of {source}; "
                        "reading, deserialising and copying to the GPUs are not overlapped that well",
                    )
        owners = sorted({owner.get(g, "(host)") for g in dep["gpus"]})
        if ctx.vms and len(owners) > 1:
            f.warning(
                f"{path}.gpus",
                "llm_fit",
                f"its GPUs are passed to different places ({', '.join(owners)}); one inference process cannot use "
                "them together with this VM layout",
            )
        claim = result["claim"] or {}
        offloaded = result["offload"] or {}
        ctx.figures.setdefault("llm", {})[name] = {
            "fits": result["fits"],
            "fits_with_offload": bool(offloaded) and not fit_errors,
            "offload_gb": round(offloaded["bytes"] / 1e9, 1) if offloaded else None,
            "weights_gb": round(weights_gb, 1),
            "required_gib_per_gpu": round(result["required_bytes_per_gpu"] / GIB, 1),
            "vram_gib_per_gpu": round(result["available_bytes"] / per_replica / GIB, 1),
            "decode_tok_s_max": round(result["decode_tokens_per_s_max"], 1) if has_bandwidth else None,
            "claim_kind": claim.get("kind"),
            "claim_streams": claim.get("streams"),
            "claim_bound_tok_s": round(claim["bound"], 1) if claim.get("bound") is not None else None,
            "load_s_min": None if load_s is None else round(load_s, 1),
        }
        fig = ctx.figures["llm"][name]
        fits = "yes" if result["fits"] else "with CPU offload" if fig["fits_with_offload"] else "no"
        bound = fig["claim_bound_tok_s"] if claim.get("kind") == "aggregate" else fig["decode_tok_s_max"]
        rows.append(
            [
                name,
                dep["model"],
                dep["precision"],
                len(dep["gpus"]) if replicas == 1 else f"{replicas} x {per_replica}",
                fig["weights_gb"],
                fig["required_gib_per_gpu"],
                fig["vram_gib_per_gpu"],
                fits,
                _claim_cell(dep),
                bound if has_bandwidth else None,
            ]
        )
    if rows:
        ctx.table(
            "LLM deployments",
            [
                "deployment",
                "model",
                "precision",
                "GPUs",
                "weights GB",
                "needs GiB/GPU",
                "VRAM GiB/GPU",
                "fits",
                "claimed tok/s (kind)",
                "bound of that kind",
            ],
            rows,
        )
