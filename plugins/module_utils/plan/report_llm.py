# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""LLM part of the plan report: every deployment's fit, decode-speed bound and load time."""

from __future__ import annotations

import re
from typing import Any

from ansible_collections.onprem.gpu_server.plugins.module_utils.plan import adapter
from ansible_collections.onprem.gpu_server.plugins.module_utils.plan.findings import split_prefix
from ansible_collections.onprem.gpu_server.plugins.module_utils.plan.llm import GIB, plan_llm_fit
from ansible_collections.onprem.gpu_server.plugins.module_utils.plan.pcie import GB_S_PER_LANE

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


def check_llm(ctx: Any) -> None:
    """Run llm_fit for every deployment and compare each claim with the bound."""
    f = ctx.findings
    deployments = adapter.section(ctx.plan, "intent", "llm_deployments") or {}
    owner: dict[str, str] = {}
    for vm in ctx.vms:
        for gpu in vm.get("gpus") or []:
            owner.setdefault(gpu, vm["name"])
    rows = []
    for name, dep in deployments.items():
        path = f"{INTENT}.llm_deployments.{name}"
        _family_check(ctx, path, dep["model"], dep["params_b"])
        gpu = adapter.llm_gpu(ctx.plan, dep["gpus"])
        has_bandwidth = "bandwidth_gb_s" in gpu
        if not has_bandwidth:
            gpu["bandwidth_gb_s"] = 1
            f.note(f"{path}.gpus", "llm_fit", "decode bound not computed: a GPU has no memory_bandwidth_gbs")
        result = plan_llm_fit(
            {"name": dep["model"], "params_b": dep["params_b"]},
            gpu,
            dep["precision"],
            len(dep["gpus"]),
            dep.get("context_tokens", 4096),
            dep.get("concurrency", 1),
            claimed_tokens_per_s=dep.get("claimed_tok_s") if has_bandwidth else None,
            claimed_vram_gb=dep.get("claimed_vram_gb"),
        )
        for kind in ("errors", "warnings"):
            for raw in result[kind]:
                prefix, rest = split_prefix(raw)
                if prefix == "model":
                    f.note(f"{path}.params_b", "llm_fit", rest)
                    continue
                where = {
                    "claimed_vram_gb": f"{path}.claimed_vram_gb",
                    "claimed_tokens_per_s": f"{path}.claimed_tok_s",
                }.get(prefix or "", path)
                message = rest if prefix else raw
                (f.error if kind == "errors" else f.warning)(
                    where, "llm_fit", f"{dep['model']} {dep['precision']}: {message}"
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
        ctx.figures.setdefault("llm", {})[name] = {
            "fits": result["fits"],
            "weights_gb": round(weights_gb, 1),
            "required_gib_per_gpu": round(result["required_bytes_per_gpu"] / GIB, 1),
            "vram_gib_per_gpu": round(result["available_bytes"] / len(dep["gpus"]) / GIB, 1),
            "decode_tok_s_max": round(result["decode_tokens_per_s_max"], 1) if has_bandwidth else None,
            "load_s_min": None if load_s is None else round(load_s, 1),
        }
        fig = ctx.figures["llm"][name]
        rows.append(
            [
                name,
                dep["model"],
                dep["precision"],
                len(dep["gpus"]),
                fig["weights_gb"],
                fig["required_gib_per_gpu"],
                fig["vram_gib_per_gpu"],
                fig["fits"],
                fig["decode_tok_s_max"],
                dep.get("claimed_tok_s"),
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
                "max tok/s",
                "claimed tok/s",
            ],
            rows,
        )
