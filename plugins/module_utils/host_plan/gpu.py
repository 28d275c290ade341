# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""GPU to VM assignment checks for PCI passthrough."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan._common import (
    as_int,
    as_list,
    fail,
    named_items,
    show,
    type_name,
)
from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.cpu import parse_cpu_ranges
from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.topology import parse_topology
from ansible_collections.onprem.gpu_server.plugins.module_utils.pci import address as pci_address


def parse_pci(value: Any, path: str) -> tuple[str, str | None]:
    """Split a PCI address into (device ``DDDD:BB:DD``, function or None), domain defaulting to 0000."""
    if not isinstance(value, str):
        raise fail(path, f"expected a PCI address such as '0000:3b:00.0', got {type_name(value)} {show(value)}")
    try:
        parsed = pci_address.parse(value)
    except pci_address.AddressError:
        raise fail(path, f"{show(value)} is not a PCI address (DDDD:BB:DD.F)") from None
    return parsed.device, None if parsed.function is None else str(parsed.function)


def _gpu_table(gpus: Any, errors: list[str]) -> dict[str, dict[str, Any]]:
    table: dict[str, dict[str, Any]] = {}
    owner_of_device: dict[str, str] = {}
    for name, gpu in named_items(gpus, "gpus"):
        if "pci" not in gpu:
            raise fail(f"gpus.{name}.pci", "is required")
        device, func = parse_pci(gpu["pci"], f"gpus.{name}.pci")
        functions = {func or "0"}
        for index, raw in enumerate(as_list(gpu.get("functions") or [], f"gpus.{name}.functions")):
            fdev, ffunc = parse_pci(raw, f"gpus.{name}.functions[{index}]")
            if fdev != device or ffunc is None:
                errors.append(f"gpus.{name}.functions: {raw} is not a function of device {device}")
                continue
            functions.add(ffunc)
        if device in owner_of_device:
            errors.append(f"gpus.{name}: device {device} is also declared as {owner_of_device[device]}")
        owner_of_device[device] = name
        node = gpu.get("numa_node")
        group = gpu.get("iommu_group")
        table[name] = {
            "device": device,
            "functions": sorted(functions),
            "numa_node": None if node in (None, -1) else as_int(node, f"gpus.{name}.numa_node"),
            "iommu_group": None if group is None else as_int(group, f"gpus.{name}.iommu_group"),
        }
    return table


def _vm_nodes(vm: Any, name: str, topo: Any) -> set[int] | None:
    if vm.get("numa_node") is not None:
        return {as_int(vm["numa_node"], f"vms.{name}.numa_node")}
    if topo is not None and vm.get("cores") not in (None, ""):
        cpus = parse_cpu_ranges(vm["cores"], f"vms.{name}.cores")
        return {topo.node_of_core[topo.core_of[c]] for c in cpus if c in topo.core_of}
    return None


def plan_gpu_placement(vms: Any, gpus: Any, numa_nodes: Any = None) -> dict[str, Any]:
    """Resolve each VM's GPU references and report double use, split devices and NUMA distance."""
    errors: list[str] = []
    warnings: list[str] = []
    table = _gpu_table(gpus, errors)
    by_device = {entry["device"]: name for name, entry in table.items()}
    topo = parse_topology(numa_nodes) if numa_nodes is not None else None

    taken: dict[str, str] = {}
    result: dict[str, list[dict[str, Any]]] = {}
    hostpci: dict[str, list[str]] = {}
    for vm_name, vm in named_items(vms, "vms"):
        wanted: dict[str, set[str]] = defaultdict(set)
        for index, ref in enumerate(as_list(vm.get("gpus") or [], f"vms.{vm_name}.gpus")):
            where = f"vms.{vm_name}.gpus[{index}]"
            if isinstance(ref, str) and ref in table:
                wanted[ref] |= set(table[ref]["functions"])
                continue
            device, func = parse_pci(ref, where)
            if device not in by_device:
                errors.append(f"{where}: {show(ref)} is neither a GPU name nor the address of a GPU in gpus")
                continue
            gpu_name = by_device[device]
            wanted[gpu_name] |= set(table[gpu_name]["functions"]) if func is None else {func}

        entries = []
        for gpu_name in sorted(wanted):
            info = table[gpu_name]
            missing = sorted(set(info["functions"]) - wanted[gpu_name])
            if missing:
                errors.append(
                    f"vms.{vm_name}.gpus: passes only part of device {info['device']} ({gpu_name}); "
                    f"function(s) {', '.join('.' + f for f in missing)} must travel with it"
                )
            if gpu_name in taken and taken[gpu_name] != vm_name:
                errors.append(
                    f"vms.{vm_name}.gpus: GPU {gpu_name} ({info['device']}) is already assigned to {taken[gpu_name]}"
                )
            taken.setdefault(gpu_name, vm_name)
            entries.append({"gpu": gpu_name, **info})
        result[vm_name] = entries
        # Proxmox passes every function of a device when the function is omitted.
        hostpci[vm_name] = [e["device"] for e in entries]

        gpu_nodes = {e["numa_node"] for e in entries if e["numa_node"] is not None}
        if len(gpu_nodes) > 1:
            warnings.append(f"vms.{vm_name}: its GPUs hang off different NUMA nodes {sorted(gpu_nodes)}")
        vm_nodes = _vm_nodes(vm, vm_name, topo)
        for entry in entries:
            if vm_nodes and entry["numa_node"] is not None and entry["numa_node"] not in vm_nodes:
                warnings.append(
                    f"vms.{vm_name}: GPU {entry['gpu']} is on NUMA node {entry['numa_node']}, "
                    f"the VM runs on node(s) {sorted(vm_nodes)}"
                )

    groups: dict[int, set[str]] = defaultdict(set)
    for gpu_name, info in table.items():
        if info["iommu_group"] is not None:
            groups[info["iommu_group"]].add(taken.get(gpu_name, "(unassigned)"))
    for group, owners in sorted(groups.items()):
        if len(owners) > 1:
            errors.append(
                f"gpus: IOMMU group {group} is split between {', '.join(sorted(owners))}; "
                "vfio can only hand a whole group to one VM"
            )

    return {
        "ok": not errors,
        "errors": errors,
        "warnings": warnings,
        "vms": result,
        "hostpci": hostpci,
        "unassigned": sorted(set(table) - set(taken)),
    }
