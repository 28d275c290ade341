# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The plan report: every planning calculation run over one ``host_plan``.

``build_report(host_plan, facts=None)`` validates the plan's structure first;
a malformed plan gets only those errors. A well-formed plan goes through the
adapter into each calculation (NUMA pinning, memory budget, GPU placement,
storage, network buffers, LLM fit, power, PCIe lanes) and, when ``facts`` are
given, is compared with what the host reports. A plan whose shape is right but
holds a number that is not finite gets that schema error and every check that
does not read the number; the others are named in a note. Pure: no I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan import adapter
from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan._common import PlanInputError, show
from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.cpu import parse_cpu_ranges
from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.findings import (
    Findings,
    locate_common,
    split_prefix,
)
from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.gpu import plan_gpu_placement
from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.memory import plan_memory_budget
from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.network import plan_nic_buffers
from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.numa import plan_numa_pinning
from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.pcie import plan_pcie_lanes
from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.power import (
    HEADROOM_FRACTION,
    plan_power_budget,
)
from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.report_facts import compare_facts
from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.report_llm import check_llm
from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.report_serving import check_serving
from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.report_storage import check_storage
from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.schema import ROOT, problems

HW = adapter.HW
INTENT = adapter.INTENT
REPORT_VERSION = 1


class Context:
    """What every check reads (the plan) and writes (findings, figures, tables, picture)."""

    def __init__(self, plan: Mapping[str, Any]) -> None:
        self.plan = plan
        self.findings = Findings()
        self.figures: dict[str, Any] = {}
        self.tables: list[dict[str, Any]] = []
        self.picture: dict[str, Any] = {"numa_nodes": [], "gpus": [], "vms": [], "storage": [], "host_cores": []}
        self.topology: list[dict[str, Any]] = []
        self.vms: list[dict[str, Any]] = []
        # Checks not run because they read an unusable value; later checks that
        # use their figures say so instead of computing from less.
        self.skipped: set[str] = set()

    def table(self, title: str, columns: list[str], rows: list[list[Any]]) -> None:
        """Add a table; cells are rendered as text."""
        self.tables.append({"title": title, "columns": columns, "rows": [[_cell(c) for c in row] for row in rows]})


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and not math.isfinite(value):
        return show(value)
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) < 1000 else f"{value:.0f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_cell(v) for v in value) or "-"
    return str(value)


def _cpu(ctx: Context) -> None:
    nodes, problems = adapter.numa_nodes(ctx.plan)
    ctx.topology = nodes
    for problem in problems:
        ctx.findings.warning(f"{HW}.numa_nodes", "cpu", problem)
    promised = adapter.logical_cpus(ctx.plan)
    listed = adapter.listed_cpus(ctx.plan)
    if len(set(listed)) != len(listed):
        ctx.findings.error(f"{HW}.numa_nodes", "cpu", "a CPU is listed in more than one NUMA node")
    elif len(listed) != promised:
        cpu = adapter.section(ctx.plan, "hardware", "cpu")
        ctx.findings.error(
            f"{HW}.numa_nodes",
            "cpu",
            f"the NUMA nodes list {len(listed)} CPUs but {cpu['sockets']} socket(s) x {cpu['cores_per_socket']} "
            f"cores x {cpu['threads_per_core']} threads = {promised}",
        )
    ctx.figures["cpu"] = {"logical_cpus": promised, "physical_cores": promised // max(1, _threads(ctx.plan))}
    for node in nodes:
        ctx.picture["numa_nodes"].append(
            {
                "id": node["id"],
                "cores": parse_cpu_ranges(node["cores"]),
                "siblings": parse_cpu_ranges(node.get("siblings", "")),
            }
        )
    if _threads(ctx.plan) == 2:
        ctx.findings.note(
            f"{HW}.numa_nodes",
            "cpu",
            "sibling threads taken as the upper half of each node's CPU list (Linux's usual numbering)",
        )


def _threads(plan: Mapping[str, Any]) -> int:
    return int(adapter.section(plan, "hardware", "cpu").get("threads_per_core", 1))


def _numa(ctx: Context) -> None:
    ctx.vms = adapter.vms(ctx.plan)
    reserve = adapter.section(ctx.plan, "intent", "host_reserve").get("cores", 0)
    # A host without VMs still has its reserve placed, so the picture shows it.
    if not ctx.vms and not reserve:
        return
    result = plan_numa_pinning(ctx.vms, ctx.topology, reserve, adapter.gpus(ctx.plan), "vm")
    ctx.findings.absorb(result, "numa_pinning", locate_common(f"{INTENT}.vms"))
    ctx.figures["numa_pinning"] = {
        "physical_cores": result["total_cores"],
        "requested_cores": result["requested_cores"],
        "host_reserve_cores": result["host"]["cores"],
        "free_cores": result["free_cores"],
        "vms": result["vms"],
    }
    ctx.picture["host_cores"] = parse_cpu_ranges(result["host"]["cores"])
    ctx.picture["unplaced"] = _unplaced(ctx, reserve, result)
    rows = []
    plan_vms = adapter.section(ctx.plan, "intent", "vms")
    for vm in ctx.vms:
        placed = result["vms"][vm["name"]]
        rows.append([vm["name"], vm["vcpus"], placed["cores"], placed["nodes"], vm["memory_gib"], vm.get("gpus") or []])
        ctx.picture["vms"].append(
            {
                "name": vm["name"],
                "cores": parse_cpu_ranges(placed["cores"]),
                "nodes": placed["nodes"],
                "gpus": vm.get("gpus") or [],
                "memory_gb": vm["memory_gib"],
                "disks": plan_vms[vm["name"]].get("disks") or [],
            }
        )
    if rows:
        ctx.table("VMs and CPU pinning", ["vm", "vcpus", "physical cores", "NUMA nodes", "memory GiB", "GPUs"], rows)


def _unplaced(ctx: Context, reserve: int, result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Cores the plan asks for that the host does not have: the picture draws them outside the nodes.

    Explicit VM cores beyond the NUMA nodes keep their numbers; a host reserve
    or an automatically placed VM that found no free cores is a count.
    """
    known = set(adapter.listed_cpus(ctx.plan))
    missing: list[dict[str, Any]] = []
    placed_host = len(parse_cpu_ranges(result["host"]["cores"]))
    if reserve > placed_host:
        missing.append({"owner": "host", "count": reserve - placed_host, "cpus": []})
    for vm in ctx.vms:
        if vm.get("cores"):
            beyond = [c for c in parse_cpu_ranges(vm["cores"]) if c not in known]
            if beyond:
                missing.append({"owner": vm["name"], "count": len(beyond), "cpus": beyond})
            continue
        short = vm["vcpus"] - len(parse_cpu_ranges(result["vms"][vm["name"]]["cores"]))
        if short > 0:
            missing.append({"owner": vm["name"], "count": short, "cpus": []})
    return missing


def _memory(ctx: Context) -> None:
    mem = adapter.section(ctx.plan, "hardware", "memory")
    cpu = adapter.section(ctx.plan, "hardware", "cpu")
    intent = adapter.section(ctx.plan, "intent")
    for vm in ctx.vms:
        huge = adapter.section(intent, "vms", vm["name"]).get("hugepages_gb")
        if huge and huge > vm["memory_gib"]:
            ctx.findings.error(
                f"{INTENT}.vms.{vm['name']}.hugepages_gb",
                "memory_budget",
                f"{huge} GiB of huge pages for a VM of {vm['memory_gib']} GiB",
            )
        elif huge and not vm.get("hugepages"):
            ctx.findings.warning(
                f"{INTENT}.vms.{vm['name']}.hugepages_gb",
                "memory_budget",
                "Proxmox backs a VM with huge pages whole or not at all; a partial figure is not applied",
            )
    result = plan_memory_budget(
        adapter.memory(ctx.plan),
        ctx.vms,
        adapter.section(intent, "host_reserve").get("memory_gb", 0),
        adapter.section(intent, "zfs").get("arc_max_gb", 0) or 0,
        intent.get("hugepages_gb", 0) or 0,
    )
    ctx.findings.absorb(result, "memory_budget", locate_common(f"{HW}.memory"))
    figures: dict[str, Any] = {
        "installed_gib": result["installed_gib"],
        "demand_gib": result["demand_gib"],
        "free_gib": result["free_gib"],
        "breakdown_gib": result["breakdown_gib"],
        "dimm_count": result["dimms"]["count"],
        "hugepages": result["hugepages"],
    }
    if cpu.get("memory_channels_per_socket") and mem.get("speed_mts"):
        channels = cpu["sockets"] * cpu["memory_channels_per_socket"]
        peak = channels * mem["speed_mts"] * 8 / 1000
        figures["peak_bandwidth_gbs"] = round(peak, 1)
        claim = mem.get("claimed_bandwidth_gbs")
        if claim and claim > peak * 1.005:
            ctx.findings.error(
                f"{HW}.memory.claimed_bandwidth_gbs",
                "memory_budget",
                f"{claim:g} GB/s is more than {channels} channels x {mem['speed_mts']} MT/s x 8 B = {peak:.1f} GB/s",
            )
    ctx.figures["memory"] = figures
    b = result["breakdown_gib"]
    parts = [{"label": vm["name"], "gib": vm["memory_gib"], "vm": vm["name"]} for vm in ctx.vms]
    for label, key in (("huge pages", "hugepages"), ("host reserve", "host_reserve"), ("ZFS ARC max", "zfs_arc_max")):
        if b[key]:
            parts.append({"label": label, "gib": b[key]})
    ctx.picture["memory"] = {"installed_gib": result["installed_gib"], "parts": parts}
    ctx.table(
        "Memory budget (GiB)",
        ["VMs", "huge pages", "host reserve", "ZFS ARC max", "demand", "installed", "free"],
        [
            [
                b["vms"],
                b["hugepages"],
                b["host_reserve"],
                b["zfs_arc_max"],
                result["demand_gib"],
                result["installed_gib"],
                result["free_gib"],
            ]
        ],
    )


def _memory_layout(ctx: Context) -> None:
    """The DIMM checks alone, for a plan whose memory demand cannot be summed (a VM's size is not finite)."""
    result = plan_memory_budget(adapter.memory(ctx.plan), [], 0, 0, 0)
    ctx.findings.absorb(result, "memory_budget", locate_common(f"{HW}.memory"))


def _gpus(ctx: Context) -> None:
    table = adapter.section(ctx.plan, "hardware", "gpus")
    if not table:
        return
    owner: dict[str, str] = {}
    if ctx.vms:
        result = plan_gpu_placement(ctx.vms, adapter.gpus(ctx.plan), ctx.topology)
        # GPU/VM locality is numa_pinning's finding already; keep one of each.
        result = dict(result, warnings=[w for w in result["warnings"] if "the VM runs on node(s)" not in w])
        ctx.findings.absorb(result, "gpu_placement", locate_common(f"{HW}.gpus"))
        for vm_name, entries in result["vms"].items():
            for entry in entries:
                owner.setdefault(entry["gpu"], vm_name)
        ctx.figures["gpu_placement"] = {"hostpci": result["hostpci"], "unassigned": result["unassigned"]}
        if ctx.plan.get("profile") == "trading_server":
            for name in result["unassigned"]:
                ctx.findings.note(f"{HW}.gpus.{name}", "gpu_placement", "not passed through to any VM")
    rows = []
    for name, gpu in table.items():
        rows.append(
            [name, gpu["model"], gpu["vram_gb"], gpu["pci_address"], gpu.get("numa_node"), owner.get(name, "-")]
        )
        ctx.picture["gpus"].append(
            {
                "name": name,
                "model": gpu["model"],
                "vram_gb": gpu["vram_gb"],
                "pci": gpu["pci_address"],
                "node": gpu.get("numa_node"),
                "vm": owner.get(name),
            }
        )
    ctx.figures["gpus"] = {
        "count": len(table),
        "vram_gb_total": sum(g["vram_gb"] for g in table.values()),
    }
    ctx.table("GPUs", ["gpu", "model", "VRAM GB", "PCI", "NUMA node", "VM"], rows)


def _network(ctx: Context) -> None:
    net = adapter.section(ctx.plan, "intent", "network")
    nics = adapter.section(ctx.plan, "hardware", "nics")
    if net.get("roce") and not any(n.get("rdma") for n in nics.values()):
        ctx.findings.error(f"{INTENT}.network.roce", "nic_buffers", "RoCE is planned but no NIC has rdma: true")
    if not net.get("tcp_buffer_max_bytes"):
        return
    link = net.get("link_gbps") or max((n["speed_gbps"] for n in nics.values()), default=None)
    if not link or net.get("rtt_ms") is None:
        ctx.findings.note(
            f"{INTENT}.network", "nic_buffers", "tcp_buffer_max_bytes not checked: link_gbps and rtt_ms are needed"
        )
        return
    result = plan_nic_buffers(link * 1e9, net["rtt_ms"], 2, net["tcp_buffer_max_bytes"])

    def locate(prefix: str | None, rest: str) -> tuple[str, str]:
        if prefix == "claimed_bytes":
            return f"{INTENT}.network.tcp_buffer_max_bytes", rest
        return f"{INTENT}.network", rest if prefix is None else f"{prefix}: {rest}"

    ctx.findings.absorb(result, "nic_buffers", locate)
    ctx.figures["nic_buffers"] = {
        "link_gbps": link,
        "rtt_ms": net["rtt_ms"],
        "bdp_bytes": result["bdp_bytes"],
        "needed_bytes": result["needed_bytes"],
        "claim": result.get("claim"),
        "sysctl": result["sysctl"],
    }
    ctx.table(
        "TCP buffers",
        ["link Gbit/s", "RTT ms", "BDP bytes", "needed bytes", "planned bytes", "verdict"],
        [
            [
                link,
                net["rtt_ms"],
                result["bdp_bytes"],
                result["needed_bytes"],
                net["tcp_buffer_max_bytes"],
                (result.get("claim") or {}).get("verdict"),
            ]
        ],
    )


def _bar(label: str, value: float, limit: float, limit_label: str, warn_at: float) -> dict[str, Any]:
    """One budget bar of the picture: a value against its limit, orange from ``warn_at`` of it."""
    return {"label": label, "value": value, "limit": limit, "limit_label": limit_label, "warn_at": warn_at}


def _power(ctx: Context) -> None:
    if not adapter.section(ctx.plan, "hardware", "power").get("psus"):
        return
    data, assumptions = adapter.power(ctx.plan)
    result = plan_power_budget(data)
    ctx.findings.absorb(result, "power_budget", locate_common(f"{HW}.power"), "; ".join(assumptions) or None)
    ctx.figures["power"] = {k: result[k] for k in ("components_w", "peak_wall_w", "continuous_wall_w", "psu")}
    for key in ("ups", "circuit"):
        if key in result:
            ctx.figures["power"][key] = result[key]
    psu = result["psu"]
    bars = [_bar("PSUs: peak DC load" + (" (one PSU failed)" if psu["redundant"] else ""),
                 psu["peak_dc_w"], psu["usable_w"], "usable", HEADROOM_FRACTION)]
    if "ups" in result:
        bars.append(_bar("UPS: peak at the wall", result["peak_wall_w"], result["ups"]["watts"], "rating",
                         HEADROOM_FRACTION))
    if "circuit" in result:
        bars.append(_bar("circuit: continuous load", result["continuous_wall_w"], result["circuit"]["continuous_w"],
                         "80 % of the breaker", 1.0))
    ctx.picture["power"] = bars
    rows = [
        ["CPU + GPU TDP (DC)", result["components_w"], "-"],
        ["peak at the wall", result["peak_wall_w"], "-"],
        ["continuous at the wall", result["continuous_wall_w"], "-"],
        ["PSUs usable", result["psu"]["usable_w"], f"{result['psu']['peak_dc_w'] / result['psu']['usable_w']:.0%}"],
    ]
    if "ups" in result:
        rows.append(["UPS", result["ups"]["watts"], f"{result['ups']['load_fraction']:.0%}"])
    if "circuit" in result:
        rows.append(
            [
                "circuit (80 % continuous)",
                result["circuit"]["continuous_w"],
                f"{result['circuit']['load_fraction']:.0%}",
            ]
        )
    ctx.table("Power (W)", ["item", "watts", "load"], rows)


_DEVICE = re.compile(r"^devices\[(\d+)\] \([^)]*\): (.*)$", re.S)


def _pcie(ctx: Context) -> None:
    platform, devices, paths, unknown = adapter.pcie(ctx.plan)
    if platform is None:
        ctx.findings.note(
            f"{HW}.cpu", "pcie_lanes", "lane budget not checked: cpu.pcie_lanes_per_socket and cpu.pcie_gen are needed"
        )
        return
    result = plan_pcie_lanes(platform, devices)

    def locate(prefix: str | None, rest: str) -> tuple[str, str]:
        match = _DEVICE.match(f"{prefix}: {rest}" if prefix else rest)
        if match:
            return f"{paths[int(match.group(1))]}.pcie_gen", match.group(2)
        return f"{HW}.cpu.pcie_lanes_per_socket", rest

    ctx.findings.absorb(result, "pcie_lanes", locate)
    for path in unknown:
        ctx.findings.note(path, "pcie_lanes", "no pcie_width: its lanes are not counted")
    ctx.figures["pcie"] = {
        "lanes_used": result["lanes_used"],
        "lanes_available": result["lanes_available"],
        "lanes_by_socket": result["lanes_by_socket"],
    }
    rows = [
        [link["name"], f"x{link['lanes']}", link["gen"], round(link["gb_s_per_direction"], 1)]
        for link in result["links"]
    ]
    rows.append(["total", f"{result['lanes_used']} of {result['lanes_available']}", platform["gen"], "-"])
    ctx.table("PCIe links", ["device", "lanes", "link gen", "GB/s per direction"], rows)


# What each check reads, as plan paths below host_plan ("*" is any one name,
# list indexes are dropped). A value the schema found unusable (not finite)
# skips exactly the checks that read it; the others still report. A check that
# builds on another's result (pinning on the CPU topology) lists its inputs too.
_TOPOLOGY = (
    "hardware.cpu.sockets",
    "hardware.cpu.cores_per_socket",
    "hardware.cpu.threads_per_core",
    "hardware.numa_nodes",
)
READS: dict[str, tuple[str, ...]] = {
    "cpu": _TOPOLOGY,
    "numa_pinning": (
        *_TOPOLOGY,
        "intent.vms.*.vcpus",
        "intent.vms.*.cores",
        "intent.vms.*.gpus",
        "intent.host_reserve.cores",
        "hardware.gpus.*.numa_node",
    ),
    "memory_layout": ("hardware.memory", "hardware.cpu.sockets", "hardware.cpu.memory_channels_per_socket"),
    "memory_budget": (
        "hardware.memory",
        "hardware.cpu.sockets",
        "hardware.cpu.memory_channels_per_socket",
        "intent.vms.*.memory_gb",
        "intent.vms.*.hugepages_gb",
        "intent.host_reserve.memory_gb",
        "intent.zfs.arc_max_gb",
        "intent.hugepages_gb",
    ),
    "gpu_placement": (*_TOPOLOGY, "hardware.gpus.*.vram_gb", "hardware.gpus.*.numa_node", "intent.vms.*.gpus"),
    "storage": (
        "hardware.disks",
        "intent.zfs.pools",
        "intent.md_arrays",
        "intent.landing_zone",
        "intent.vms.*.disks",
    ),
    "nic_buffers": ("intent.network", "hardware.nics.*.speed_gbps"),
    "llm_fit": (
        "intent.llm_deployments",
        "hardware.gpus.*.vram_gb",
        "hardware.gpus.*.memory_bandwidth_gbs",
        "hardware.gpus.*.pcie_gen",
        "hardware.gpus.*.pcie_width",
        "hardware.disks.*.seq_read_mbs",
        "hardware.memory.total_gb",
        "hardware.memory.speed_mts",
        "hardware.memory.claimed_bandwidth_gbs",
        "hardware.cpu.sockets",
        "hardware.cpu.memory_channels_per_socket",
    ),
    "llm_serving": ("intent.llm_deployments", "intent.vms.*.gpus"),
    "power_budget": ("hardware.power", "hardware.cpu.tdp_w", "hardware.cpu.sockets", "hardware.gpus.*.tdp_w"),
    "pcie_lanes": (
        "hardware.cpu.sockets",
        "hardware.cpu.pcie_lanes_per_socket",
        "hardware.cpu.pcie_gen",
        "hardware.numa_nodes",
        "hardware.gpus.*.pcie_gen",
        "hardware.gpus.*.pcie_width",
        "hardware.gpus.*.numa_node",
        "hardware.disks.*.pcie_gen",
        "hardware.disks.*.pcie_width",
        "hardware.nics.*.pcie_gen",
        "hardware.nics.*.pcie_width",
    ),
    "facts": (*_TOPOLOGY, "hardware.memory.total_gb", "hardware.gpus", "hardware.disks", "hardware.nics"),
}
_INDEX = re.compile(r"\[\d+\]")


def _reads(check: str, path: str) -> bool:
    """Does ``check`` read the value at plan ``path`` (``host_plan.intent.vms.a.memory_gb``)?"""
    parts = _INDEX.sub("", path).split(".")[1:]
    for pattern in READS[check]:
        want = pattern.split(".")
        if len(want) <= len(parts) and all(w in ("*", p) for w, p in zip(want, parts[: len(want)], strict=True)):
            return True
    return False


def _skipped(check: str, path: str, unusable: list[str], findings: Findings) -> bool:
    """Note and skip ``check`` when it reads a value the schema found unusable."""
    bad = [p for p in unusable if _reads(check, p)]
    if bad:
        what = "which is not a finite number" if len(bad) == 1 else "which are not finite numbers"
        findings.note(path, check, f"not checked: it reads {', '.join(bad)}, {what}")
    return bool(bad)


CHECKS: tuple[tuple[str, str, Callable[[Context], None]], ...] = (
    ("cpu", f"{HW}.numa_nodes", _cpu),
    ("numa_pinning", f"{INTENT}.vms", _numa),
    ("memory_budget", f"{HW}.memory", _memory),
    ("gpu_placement", f"{HW}.gpus", _gpus),
    ("storage", f"{INTENT}", check_storage),
    ("nic_buffers", f"{INTENT}.network", _network),
    ("llm_fit", f"{INTENT}.llm_deployments", check_llm),
    ("llm_serving", f"{INTENT}.llm_deployments", check_serving),
    ("power_budget", f"{HW}.power", _power),
    ("pcie_lanes", f"{HW}.cpu", _pcie),
)


PARTS: dict[str, tuple[str, Callable[[Context], None]]] = {"memory_budget": ("memory_layout", _memory_layout)}


def _result(ctx: Context | None, findings: Findings) -> dict[str, Any]:
    return {
        "version": REPORT_VERSION,
        "ok": not findings.errors,
        "errors": findings.errors,
        "warnings": findings.warnings,
        "notes": findings.notes,
        "profile": ctx.plan.get("profile") if ctx else None,
        "figures": ctx.figures if ctx else {},
        "tables": ctx.tables if ctx else [],
        "picture": ctx.picture if ctx else {},
    }


def build_report(host_plan: Any, facts: Any = None) -> dict[str, Any]:
    """Check ``host_plan`` (and compare it with ``facts`` when given); see docs/host-plan.md.

    Returns ``{ok, errors, warnings, notes, profile, figures, tables, picture}``;
    each finding is ``{path, check, message[, assumption]}`` with ``path`` the
    plan variable it is about. A structurally invalid plan returns only the
    schema errors.
    """
    found = problems(host_plan)
    if any(p.blocking for p in found):
        findings = Findings()
        for problem in found:
            findings.error(problem.path, "schema", problem.message)
        return _result(None, findings)
    ctx = Context(host_plan)
    unusable = [p.path for p in found]
    for problem in found:
        ctx.findings.error(problem.path, "schema", problem.message)
    # Every check that takes the VM list reads it from here, so skipping the
    # pinning check does not hide the VMs from the memory budget.
    ctx.vms = adapter.vms(host_plan)
    for name, path, check in CHECKS:
        if _skipped(name, path, unusable, ctx.findings):
            ctx.skipped.add(name)
            part = PARTS.get(name)
            # What of a skipped check does not read the unusable value still runs.
            if part and not any(_reads(part[0], p) for p in unusable):
                part[1](ctx)
            continue
        try:
            check(ctx)
        except PlanInputError as exc:
            prefix, rest = split_prefix(str(exc))
            ctx.findings.error(path, name, f"{prefix}: {rest}" if prefix else rest)
    if facts is not None and not _skipped("facts", ROOT, unusable, ctx.findings):
        try:
            compare_facts(ctx, facts)
        except (PlanInputError, KeyError, TypeError, ValueError) as exc:
            ctx.findings.error(ROOT, "facts", f"the host facts could not be read: {exc}")
    return _result(ctx, ctx.findings)
