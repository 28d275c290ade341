# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""NUMA-aware CPU pinning for virtual machines.

A vCPU is planned as one physical core: the trading workloads this collection
targets are latency sensitive, so a VM owns whole cores and no other VM's
thread runs on the sibling of one of its cores.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan._common import (
    as_int,
    as_list,
    fail,
    named_items,
    show,
)
from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.cpu import format_cpu_ranges, parse_cpu_ranges
from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.topology import Topology, parse_topology

SIBLING_POLICIES = ("vm", "host")


def gpu_nodes(gpus: Any, path: str = "gpus") -> dict[str, int | None]:
    """Map GPU name -> NUMA node (None when unknown: sysfs reports -1)."""
    result: dict[str, int | None] = {}
    for name, gpu in named_items(gpus or [], path):
        node = gpu.get("numa_node")
        if node is None or node == -1:
            result[name] = None
        else:
            result[name] = as_int(node, f"{path}.{name}.numa_node")
    return result


def _explicit_cores(topo: Topology, spec: Any, path: str, errors: list[str]) -> list[int]:
    cpus = parse_cpu_ranges(spec, path)
    unknown = [c for c in cpus if c not in topo.core_of]
    if unknown:
        errors.append(f"{path}: CPU(s) {format_cpu_ranges(unknown)} are not in numa_nodes")
    return sorted({topo.core_of[c] for c in cpus if c in topo.core_of})


def _take(topo: Topology, free: set[int], count: int, order: list[int]) -> list[int]:
    """Take ``count`` free cores, lowest first, walking nodes in ``order``."""
    taken: list[int] = []
    for node in order:
        for core in topo.cores_by_node[node]:
            if len(taken) == count:
                return taken
            if core in free:
                taken.append(core)
    return taken


def _reserve_host(topo: Topology, free: set[int], count: int) -> list[int]:
    """Spread the host reserve over the nodes (lowest cores first on each).

    Each node then has a core for its own interrupts and kernel threads.
    """
    taken: list[int] = []
    pools = {node: [c for c in cores if c in free] for node, cores in sorted(topo.cores_by_node.items())}
    while len(taken) < count and any(pools.values()):
        for node in sorted(pools):
            if pools[node] and len(taken) < count:
                taken.append(pools[node].pop(0))
    return sorted(taken)


def _nodes(topo: Topology, cores: list[int]) -> Counter[int]:
    return Counter(topo.node_of_core[c] for c in cores)


def plan_numa_pinning(
    vms: Any,
    numa_nodes: Any,
    host_reserve: Any = 0,
    gpus: Any = None,
    sibling_threads: str = "vm",
) -> dict[str, Any]:
    """Place each VM's vCPUs on physical cores and report what is wrong with the plan.

    See docs/planning-filters.md for the rules; plan problems are returned in
    ``errors``/``warnings``, malformed input raises PlanInputError.
    """
    topo = parse_topology(numa_nodes)
    gpu_node = gpu_nodes(gpus)
    if sibling_threads not in SIBLING_POLICIES:
        raise fail("sibling_threads", f"must be one of {', '.join(SIBLING_POLICIES)}, got {show(sibling_threads)}")
    errors: list[str] = []
    warnings: list[str] = []
    vm_list = named_items(vms, "vms")

    wanted: dict[str, int] = {}
    explicit: dict[str, list[int]] = {}
    for name, vm in vm_list:
        if "vcpus" not in vm:
            raise fail(f"vms.{name}.vcpus", "is required")
        wanted[name] = as_int(vm["vcpus"], f"vms.{name}.vcpus", minimum=1)
        if vm.get("cores") not in (None, ""):
            cores = _explicit_cores(topo, vm["cores"], f"vms.{name}.cores", errors)
            explicit[name] = cores
            if len(cores) != wanted[name]:
                errors.append(
                    f"vms.{name}: vcpus is {wanted[name]} but cores {show(vm['cores'])} "
                    f"names {len(cores)} physical cores"
                )

    # Host reserve: a count lets the plan choose, a CPU list pins it.
    if isinstance(host_reserve, str):
        host = _explicit_cores(topo, host_reserve, "host_reserve", errors)
        reserve_count = len(host)
    else:
        reserve_count = as_int(host_reserve if host_reserve is not None else 0, "host_reserve")
        host = []

    requested = sum(wanted.values())
    if requested + reserve_count > topo.total_cores:
        errors.append(
            f"over-subscribed: VMs ask for {requested} cores + host reserve {reserve_count} = "
            f"{requested + reserve_count} > {topo.total_cores} physical cores"
        )

    owner: dict[int, str] = {core: "host" for core in host}
    for name, cores in explicit.items():
        for core in cores:
            if core in owner:
                errors.append(f"vms.{name}: core {core} is already given to {owner[core]}")
            else:
                owner[core] = name
    free = set(topo.node_of_core) - set(owner)

    if not isinstance(host_reserve, str) and reserve_count:
        host = _reserve_host(topo, free, reserve_count)
        free -= set(host)
        if len(host) < reserve_count:
            errors.append(
                f"host_reserve: {reserve_count} cores requested but only {len(host)} remain after explicit VM pinning"
            )

    placed: dict[str, list[int]] = dict(explicit)
    # GPU VMs first so they get the cores next to their GPUs, then the largest.
    auto = [(n, vm) for n, vm in vm_list if n not in explicit]
    auto.sort(key=lambda item: (not item[1].get("gpus"), -wanted[item[0]], item[0]))
    for name, vm in auto:
        local: Counter[int] = Counter()
        for gpu in vm.get("gpus") or []:
            node = gpu_node.get(gpu)
            if node is not None and node in topo.cores_by_node:
                local[node] += 1
        free_per_node = {n: sum(1 for c in cores if c in free) for n, cores in topo.cores_by_node.items()}
        if local:
            first = max(local, key=lambda n: (local[n], -n))
        else:
            # Best fit: the fullest node that still holds the whole VM keeps
            # large blocks free for later VMs; spill over only if none does.
            fits = [n for n in free_per_node if free_per_node[n] >= wanted[name]]
            if fits:
                first = min(fits, key=lambda n: (free_per_node[n], n))
            else:
                first = max(free_per_node, key=lambda n: (free_per_node[n], -n))
        order = [first, *sorted((n for n in topo.cores_by_node if n != first), key=lambda n: -free_per_node[n])]
        if len(free) < wanted[name]:
            errors.append(f"vms.{name}: needs {wanted[name]} cores but only {len(free)} are free")
            placed[name] = []
            continue
        placed[name] = _take(topo, free, wanted[name], order)
        free -= set(placed[name])

    result_vms: dict[str, Any] = {}
    gpu_owner: dict[str, str] = {}
    for name, vm in vm_list:
        cores = placed[name]
        nodes = _nodes(topo, cores)
        if len(nodes) > 1:
            spread = ", ".join(f"node {n}: {nodes[n]}" for n in sorted(nodes))
            warnings.append(f"vms.{name}: cores span NUMA nodes ({spread}); memory access crosses the interconnect")
        for gpu in as_list(vm.get("gpus") or [], f"vms.{name}.gpus"):
            if gpu not in gpu_node:
                errors.append(f"vms.{name}.gpus: GPU {show(gpu)} is not defined in gpus")
                continue
            if gpu in gpu_owner:
                errors.append(f"vms.{name}.gpus: GPU {show(gpu)} is already assigned to {gpu_owner[gpu]}")
            gpu_owner.setdefault(gpu, name)
            node = gpu_node[gpu]
            if node is not None and node not in topo.cores_by_node:
                errors.append(f"gpus.{gpu}: numa_node {node} is not one of the nodes in numa_nodes")
            elif node is None:
                warnings.append(f"gpus.{gpu}: NUMA node unknown; locality of {name} cannot be checked")
            elif cores and node not in nodes:
                where = ", ".join(str(n) for n in sorted(nodes))
                warnings.append(
                    f"vms.{name}: GPU {show(gpu)} hangs off NUMA node {node} but the VM's cores are on node {where}"
                )
        result_vms[name] = {
            "vcpus": wanted[name],
            "cores": format_cpu_ranges(cores),
            "cpus": format_cpu_ranges(topo.threads(cores, sibling_threads == "vm")),
            "nodes": sorted(nodes),
            "explicit": name in explicit,
        }

    host_cpus = set(topo.threads(host, True))
    if sibling_threads == "host":
        # Sibling threads of VM cores run host work (emulator threads, IRQs).
        for cores in placed.values():
            host_cpus |= set(topo.threads(cores, True)) - set(cores)
    return {
        "ok": not errors,
        "errors": errors,
        "warnings": warnings,
        "vms": result_vms,
        "host": {
            "cores": format_cpu_ranges(host),
            "cpus": format_cpu_ranges(sorted(host_cpus)),
        },
        "free_cores": format_cpu_ranges(sorted(free)),
        "total_cores": topo.total_cores,
        "requested_cores": requested + reserve_count,
    }
