# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one place where a ``host_plan`` (inventory units) becomes planning-filter input.

The inventory speaks the language of the design documents (GB of VRAM, GB/s,
NUMA nodes as CPU lists); the calculations speak the language of the kernel
(MiB, bytes, physical cores and their sibling threads). Every unit conversion
and every assumption made while converting lives here, so the report can name
it and a reader can find it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.cpu import format_cpu_ranges, parse_cpu_ranges

HW = "host_plan.hardware"
INTENT = "host_plan.intent"
# GPU vendors print "20GB" for 20 GiB parts (nvidia-smi: 20475 MiB on an RTX 4000 Ada).
MIB_PER_GB_VRAM = 1024
DEFAULT_PSU_EFFICIENCY = 0.9


def section(plan: Mapping[str, Any], *keys: str) -> Any:
    """``plan[k1][k2]...`` or an empty mapping when a level is missing."""
    node: Any = plan
    for key in keys:
        if not isinstance(node, Mapping):
            return {}
        node = node.get(key)
    return node if node is not None else {}


def numa_nodes(plan: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """``[{id, cpus}]`` -> ``[{id, cores, siblings}]`` plus the problems found while splitting.

    A node's CPU list holds the first thread of every core and the sibling
    threads; Linux numbers all first threads before the siblings (0-25 then
    52-77 on a dual 26-core Xeon, 0-31 then 32-63 on a 32-core Threadripper),
    so the lower half of each node's list is taken as its cores, in order.
    """
    threads = section(plan, "hardware", "cpu").get("threads_per_core", 1)
    nodes: list[dict[str, Any]] = []
    problems: list[str] = []
    for node in section(plan, "hardware", "numa_nodes") or []:
        cpus = parse_cpu_ranges(node["cpus"], f"{HW}.numa_nodes")
        if threads == 2 and len(cpus) % 2 == 0:
            half = len(cpus) // 2
            nodes.append(
                {"id": node["id"], "cores": format_cpu_ranges(cpus[:half]), "siblings": format_cpu_ranges(cpus[half:])}
            )
        else:
            if threads not in (1, 2):
                problems.append(f"threads_per_core {threads}: sibling threads are not modelled, every CPU is a core")
            elif threads == 2:
                problems.append(f"node {node['id']}: {len(cpus)} CPUs cannot be split into pairs of sibling threads")
            nodes.append({"id": node["id"], "cores": format_cpu_ranges(cpus)})
    return nodes, problems


def vms(plan: Mapping[str, Any]) -> list[dict[str, Any]]:
    """VMs in plan order, one mapping that numa_pinning, gpu_placement and memory_budget all read."""
    result = []
    for name, vm in (section(plan, "intent", "vms") or {}).items():
        entry: dict[str, Any] = {"name": name, "vcpus": vm["vcpus"], "memory_gib": vm["memory_gb"]}
        if vm.get("cores"):
            entry["cores"] = vm["cores"]
        if vm.get("gpus"):
            entry["gpus"] = list(vm["gpus"])
        # Proxmox backs a VM with huge pages whole or not at all; a partial figure is reported, not modelled.
        if vm.get("hugepages_gb") and vm["hugepages_gb"] >= vm["memory_gb"]:
            entry["hugepages"] = True
        result.append(entry)
    return result


def gpus(plan: Mapping[str, Any]) -> list[dict[str, Any]]:
    """GPUs as numa_pinning / gpu_placement read them."""
    result = []
    for name, gpu in (section(plan, "hardware", "gpus") or {}).items():
        entry: dict[str, Any] = {"name": name, "pci": gpu["pci_address"], "functions": list(gpu.get("functions") or [])}
        if gpu.get("numa_node") is not None:
            entry["numa_node"] = gpu["numa_node"]
        result.append(entry)
    return result


def llm_gpu(plan: Mapping[str, Any], names: list[str]) -> dict[str, Any]:
    """The weakest of ``names`` as llm_fit's single GPU: tensor parallelism runs at the slowest member's pace."""
    table = section(plan, "hardware", "gpus")
    chosen = [table[n] for n in names if n in table]
    entry: dict[str, Any] = {
        "name": "/".join(sorted({g["model"] for g in chosen})),
        "vram_mib": min(g["vram_gb"] for g in chosen) * MIB_PER_GB_VRAM,
    }
    bandwidths = [g.get("memory_bandwidth_gbs") for g in chosen]
    if all(b for b in bandwidths):
        entry["bandwidth_gb_s"] = min(bandwidths)
    return entry


def ram_bandwidth_gbs(plan: Mapping[str, Any]) -> tuple[float | None, str]:
    """Peak host memory bandwidth in GB/s and where the figure comes from.

    Channels x MT/s x 8 bytes is what the memory can do at most; the design's
    own claimed figure is used only when the channels or the speed are missing.
    """
    mem = section(plan, "hardware", "memory")
    cpu = section(plan, "hardware", "cpu")
    if cpu.get("memory_channels_per_socket") and mem.get("speed_mts"):
        channels = cpu["sockets"] * cpu["memory_channels_per_socket"]
        peak = channels * mem["speed_mts"] * 8 / 1000
        return peak, f"{channels} channels x {mem['speed_mts']} MT/s x 8 B"
    if mem.get("claimed_bandwidth_gbs"):
        return float(mem["claimed_bandwidth_gbs"]), "hardware.memory.claimed_bandwidth_gbs"
    return None, "no memory channels, speed_mts or claimed_bandwidth_gbs in hardware"


def memory(plan: Mapping[str, Any]) -> dict[str, Any]:
    """hardware.memory + cpu -> memory_budget's memory mapping (DIMM "GB" are GiB)."""
    mem = section(plan, "hardware", "memory")
    cpu = section(plan, "hardware", "cpu")
    result: dict[str, Any] = {"installed_gib": mem["total_gb"]}
    if mem.get("dimms"):
        result["dimms"] = [{"size_gib": d["size_gb"], "count": d["count"]} for d in mem["dimms"]]
    if mem.get("dimms_populated") is not None:
        result["populated_dimms"] = mem["dimms_populated"]
    if cpu.get("memory_channels_per_socket"):
        channels = cpu["sockets"] * cpu["memory_channels_per_socket"]
        result["sockets"] = cpu["sockets"]
        result["channels_per_socket"] = cpu["memory_channels_per_socket"]
        slots = mem.get("dimm_slots")
        result["slots_per_channel"] = max(1, slots // channels) if slots else 1
    return result


def power(plan: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """hardware.power -> power_budget input; CPU and GPU TDPs are the known components."""
    hw = section(plan, "hardware")
    pw = section(plan, "hardware", "power")
    psus: list[float] = []
    for group in pw.get("psus") or []:
        psus += [group["watts"]] * group["count"]
    result: dict[str, Any] = {"psus": psus, "redundant": bool(pw.get("psu_redundancy", False))}
    assumptions = []
    if pw.get("efficiency") is None:
        assumptions.append(f"PSU efficiency {DEFAULT_PSU_EFFICIENCY:.0%} (hardware.power.efficiency not given)")
    result["efficiency"] = pw.get("efficiency", DEFAULT_PSU_EFFICIENCY)
    components = []
    cpu = hw.get("cpu") or {}
    if cpu.get("tdp_w"):
        components.append({"name": "cpu", "watts": cpu["tdp_w"], "count": cpu["sockets"]})
    for name, gpu in (hw.get("gpus") or {}).items():
        if gpu.get("tdp_w"):
            components.append({"name": name, "watts": gpu["tdp_w"], "count": 1})
    result["components"] = components
    load = pw.get("estimated_load_w") or {}
    if load.get("typical_max") is not None:
        result["typical_w"] = load["typical_max"]
    if load.get("peak") is not None:
        result["peak_w"] = load["peak"]
    if pw.get("ups"):
        result["ups"] = {"watts": pw["ups"]["watts"]}
    if pw.get("circuit"):
        result["circuit"] = {"volts": pw["circuit"]["volts"], "amps": pw["circuit"]["amps"]}
    return result, assumptions


def pcie(plan: Mapping[str, Any]) -> tuple[dict[str, Any] | None, list[dict[str, Any]], list[str], list[str]]:
    """-> (platform, devices, plan path of each device, devices whose lane count is unknown)."""
    hw = section(plan, "hardware")
    cpu = hw.get("cpu") or {}
    if not cpu.get("pcie_lanes_per_socket") or not cpu.get("pcie_gen"):
        return None, [], [], []
    platform = {
        "name": cpu["model"],
        "sockets": cpu["sockets"],
        "lanes_per_socket": cpu["pcie_lanes_per_socket"],
        "gen": cpu["pcie_gen"],
    }
    # With one NUMA node per socket (no sub-NUMA clustering) a device's node is its socket.
    per_socket = cpu["sockets"] > 1 and len(hw.get("numa_nodes") or []) == cpu["sockets"]
    devices: list[dict[str, Any]] = []
    paths: list[str] = []
    unknown: list[str] = []
    for kind in ("gpus", "disks", "nics"):
        for name, dev in (hw.get(kind) or {}).items():
            path = f"{HW}.{kind}.{name}"
            if kind == "disks" and dev.get("kind") != "nvme":
                continue
            if not dev.get("pcie_width"):
                unknown.append(path)
                continue
            entry: dict[str, Any] = {"name": name, "lanes": dev["pcie_width"]}
            if dev.get("pcie_gen"):
                entry["gen"] = dev["pcie_gen"]
            if per_socket and dev.get("numa_node") is not None and dev["numa_node"] < cpu["sockets"]:
                entry["socket"] = dev["numa_node"]
            devices.append(entry)
            paths.append(path)
    return platform, devices, paths, unknown


def logical_cpus(plan: Mapping[str, Any]) -> int:
    """Logical CPUs the cpu section promises (sockets x cores x threads)."""
    cpu = section(plan, "hardware", "cpu")
    return int(cpu["sockets"] * cpu["cores_per_socket"] * cpu["threads_per_core"])


def listed_cpus(plan: Mapping[str, Any]) -> list[int]:
    """Every logical CPU the NUMA nodes list."""
    cpus: list[int] = []
    for node in section(plan, "hardware", "numa_nodes") or []:
        cpus += parse_cpu_ranges(node["cpus"], f"{HW}.numa_nodes")
    return sorted(cpus)
