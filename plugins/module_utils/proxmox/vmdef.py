# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Proxmox VE VM definitions from a host plan (``host_plan.intent.vms``).

Each definition carries the parameters ``POST /nodes/{node}/qemu`` takes. CPU
pinning comes from numa_pinning and the GPU assignment from gpu_placement, so
the VMs get exactly what the plan report shows; a plan those checks reject
produces no definitions but one error naming every offending variable.
Everything the plan does not say has a default listed in DEFAULTS and repeated
in each definition's ``notes`` (docs/proxmox-guests.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan import adapter
from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan._common import PlanInputError, as_int, fail
from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.cpu import format_cpu_ranges, parse_cpu_ranges
from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.findings import locate_common, split_prefix
from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.gpu import plan_gpu_placement
from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.numa import plan_numa_pinning
from ansible_collections.onprem.gpu_server.plugins.module_utils.proxmox.propstring import render

VMS = "host_plan.intent.vms"

# Values the design does not give; every one is reported in the definitions' notes.
DEFAULTS: dict[str, Any] = {
    "vmid_base": 100,
    "bridge": "vmbr0",
    "storage": {},
    "ostype": "l26",
    "scsihw": "virtio-scsi-single",
    "disk_options": {"iothread": 1, "discard": "on", "ssd": 1},
    "efitype": "4m",
    "efi_storage": None,
    "sibling_threads": "vm",
}

MIB_PER_GIB = 1024
# BARs other than the VRAM aperture (registers, I/O) per GPU; NVIDIA parts use 16-32 MiB.
OTHER_BARS_MIB = 256


class ProxmoxPlanError(PlanInputError):
    """The plan cannot be turned into VM definitions; the message names the variables."""


def _pow2_at_least(value: int) -> int:
    size = 1
    while size < value:
        size *= 2
    return size


def mmio64_mib(vram_gib: list[float]) -> int:
    """Size of the 64-bit PCI MMIO window OVMF must offer for GPUs with ``vram_gib``.

    A BAR is a power of two, so a GPU that maps its whole memory (resizable BAR)
    needs the next power of two above its VRAM, plus room for its small BARs.
    The window itself is rounded up to a power of two so the largest BAR can
    be aligned inside it.
    """
    need = sum(_pow2_at_least(int(vram * MIB_PER_GIB)) + OTHER_BARS_MIB for vram in vram_gib)
    return _pow2_at_least(need)


def _split_memory(total_mib: int, shares: list[int]) -> list[int]:
    """Split ``total_mib`` in proportion to ``shares``; the parts add up exactly."""
    whole = sum(shares)
    parts = [total_mib * share // whole for share in shares]
    parts[-1] += total_mib - sum(parts)
    return parts


def _raise_findings(messages: list[str]) -> None:
    if not messages:
        return
    locate = locate_common(VMS)
    lines = []
    for raw in messages:
        path, rest = locate(*split_prefix(raw))
        lines.append(f"{path}: {rest}")
    raise ProxmoxPlanError("; ".join(dict.fromkeys(lines)))


def _reserve_findings(pinning: Mapping[str, Any]) -> list[str]:
    """Pinning errors that only say the host reserve does not fit next to the VMs.

    They do not change any VM's parameters (the reserve is kept by pinning host
    work, not by VM options) and the plan report already fails on them, so the
    definitions carry them as warnings instead of refusing to exist.
    """
    vms_alone = sum(vm["vcpus"] for vm in pinning["vms"].values()) <= pinning["total_cores"]
    found = []
    for message in pinning["errors"]:
        if message.startswith("host_reserve:") or (message.startswith("over-subscribed:") and vms_alone):
            found.append(message)
    return found


def _vmids(names: list[str], base: int, explicit: Mapping[str, Any]) -> dict[str, int]:
    unknown = sorted(set(explicit) - set(names))
    if unknown:
        raise fail("proxmox_guests_vmids", f"names VMs that are not in {VMS}: {', '.join(unknown)}")
    ids: dict[str, int] = {}
    for position, name in enumerate(names, start=1):
        if name in explicit:
            ids[name] = as_int(explicit[name], f"proxmox_guests_vmids.{name}", minimum=100)
        else:
            ids[name] = as_int(base, "proxmox_guests_vmid_base", minimum=0) + position
            if ids[name] < 100:
                raise fail("proxmox_guests_vmid_base", f"gives {name} vmid {ids[name]}; Proxmox starts at 100")
    seen: dict[int, str] = {}
    for name, vmid in ids.items():
        if vmid in seen:
            raise fail("proxmox_guests_vmids", f"vmid {vmid} is given to both {seen[vmid]} and {name}")
        seen[vmid] = name
    return ids


def _numa_entries(
    vcpus: int, memory_mib: int, cores: list[int], node_of_core: Mapping[int, int], params: dict[str, Any]
) -> None:
    """Guest NUMA nodes mirroring the host nodes the VM's cores sit on, memory bound to them."""
    per_node: dict[int, int] = {}
    for core in cores:
        node = node_of_core[core]
        per_node[node] = per_node.get(node, 0) + 1
    nodes = sorted(per_node)
    memory = _split_memory(memory_mib, [per_node[n] for n in nodes])
    first = 0
    for index, node in enumerate(nodes):
        last = first + per_node[node] - 1
        cpus = str(first) if first == last else f"{first}-{last}"
        params[f"numa{index}"] = render(
            "numa", {"cpus": cpus, "hostnodes": str(node), "memory": str(memory[index]), "policy": "bind"}
        )
        first = last + 1
    params["numa"] = 1
    params["sockets"] = 1
    params["cores"] = vcpus


def _disks(
    name: str, vm: Mapping[str, Any], plan: Mapping[str, Any], opts: Mapping[str, Any], notes: list[str]
) -> tuple[dict[str, str], str | None]:
    """scsi[n] entries and the storage that holds the EFI vars (the first tier disk's)."""
    storage_map = opts["storage"]
    disk_table = adapter.section(plan, "hardware", "disks")
    result: dict[str, str] = {}
    efi_storage: str | None = None
    slot = 0
    for index, disk in enumerate(vm.get("disks") or []):
        where = f"{VMS}.{name}.disks[{index}]"
        if "tier" in disk:
            storage = storage_map.get(disk["tier"], disk["tier"])
            if disk["tier"] not in storage_map:
                notes.append(
                    f"{where}: Proxmox storage {storage!r} assumed for tier {disk['tier']!r} (not in the design)"
                )
            size = disk["size_gb"]
            if size != int(size):
                raise fail(f"{where}.size_gb", f"Proxmox allocates whole GiB, got {size}")
            fields: dict[str, Any] = {"file": f"{storage}:{int(size)}", **opts["disk_options"]}
            efi_storage = efi_storage or storage
        elif "passthrough" in disk:
            device = disk_table.get(disk["passthrough"]) or {}
            if not device.get("id"):
                raise fail(
                    f"{where}.passthrough", f"disk {disk['passthrough']!r} has no id in host_plan.hardware.disks"
                )
            fields = {"file": f"/dev/disk/by-id/{device['id']}", "backup": 0, **opts["disk_options"]}
        else:
            notes.append(
                f"{where}: dataset {disk.get('dataset')!r} is not a VM disk; it reaches the guest over the network "
                "(NFS/SMB) or virtiofs, which this role does not configure"
            )
            continue
        result[f"scsi{slot}"] = render("scsi", fields)
        slot += 1
    return result, efi_storage


def _options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    opts = dict(DEFAULTS)
    for key, value in (options or {}).items():
        if key not in DEFAULTS and key != "vmids":
            raise fail(f"proxmox_guests options.{key}", f"unknown option; known: {', '.join(sorted(DEFAULTS))}, vmids")
        if value is not None:
            opts[key] = value
    opts.setdefault("vmids", {})
    return opts


def vm_definitions(host_plan: Any, options: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """One ``{name, vmid, params, notes, warnings}`` per VM of ``host_plan.intent.vms``, in plan order.

    ``params`` holds what ``POST /nodes/{node}/qemu`` takes. ``options`` may set
    the keys of DEFAULTS and ``vmids`` (VM name -> vmid). Raises
    ProxmoxPlanError when pinning or GPU placement report errors.
    """
    if not isinstance(host_plan, Mapping):
        raise fail("host_plan", f"expected a mapping, got {type(host_plan).__name__}")
    opts = _options(options)
    plan_vms = adapter.section(host_plan, "intent", "vms") or {}
    if not plan_vms:
        return []
    vms = adapter.vms(host_plan)
    gpus = adapter.gpus(host_plan)
    topology, problems = adapter.numa_nodes(host_plan)
    if problems:
        raise ProxmoxPlanError("; ".join(f"host_plan.hardware.numa_nodes: {p}" for p in problems))
    reserve = adapter.section(host_plan, "intent", "host_reserve").get("cores", 0)
    pinning = plan_numa_pinning(vms, topology, reserve, gpus, opts["sibling_threads"])
    placement = plan_gpu_placement(vms, gpus, topology)
    reserve_errors = _reserve_findings(pinning)
    _raise_findings([e for e in pinning["errors"] if e not in reserve_errors] + placement["errors"])
    reserve_only = [f"host_plan.intent.host_reserve.cores: {e.split(': ', 1)[-1]}" for e in reserve_errors]

    node_of_core: dict[int, int] = {}
    for node in topology:
        for core in parse_cpu_ranges(node["cores"]):
            node_of_core[core] = node["id"]
    gpu_table = adapter.section(host_plan, "hardware", "gpus")
    networks = adapter.section(host_plan, "intent", "networks")
    ids = _vmids([vm["name"] for vm in vms], opts["vmid_base"], opts["vmids"])
    common_notes = [
        f"{key} {opts[key]!r} (not in the design)"
        for key in ("bridge", "ostype", "scsihw", "efitype", "sibling_threads")
    ]
    if not opts["vmids"] and opts["vmid_base"] == DEFAULTS["vmid_base"]:
        common_notes.append("vmids numbered from 101 in plan order (not in the design)")

    fallback_efi = None
    for plan_vm in plan_vms.values():
        tiers = [d["tier"] for d in plan_vm.get("disks") or [] if "tier" in d]
        if tiers:
            fallback_efi = opts["storage"].get(tiers[0], tiers[0])
            break

    definitions = []
    for vm in vms:
        name = vm["name"]
        plan_vm = plan_vms[name]
        placed = pinning["vms"][name]
        notes = list(common_notes)
        warnings = [w for w in pinning["warnings"] + placement["warnings"] if w.startswith(f"vms.{name}")]
        warnings = [f"host_plan.intent.{w}" for w in warnings] + reserve_only
        memory_mib = int(vm["memory_gib"] * MIB_PER_GIB)
        params: dict[str, Any] = {
            "vmid": ids[name],
            "name": name,
            "ostype": opts["ostype"],
            "machine": "q35",
            "bios": "ovmf",
            "cpu": "host",
            "memory": str(memory_mib),
            "affinity": placed["cpus"],
            "scsihw": opts["scsihw"],
        }
        _numa_entries(vm["vcpus"], memory_mib, parse_cpu_ranges(placed["cores"]), node_of_core, params)
        if vm.get("hugepages"):
            params["hugepages"] = "1024"
        elif plan_vm.get("hugepages_gb"):
            notes.append(f"hugepages_gb {plan_vm['hugepages_gb']} < memory_gb: Proxmox backs a VM whole or not at all")
        devices = placement["hostpci"][name]
        if devices or vm.get("hugepages"):
            # vfio pins all guest memory and huge pages cannot be returned: a balloon would only mislead.
            params["balloon"] = 0
        for index, device in enumerate(devices):
            params[f"hostpci{index}"] = render("hostpci", {"host": device, "pcie": 1})
        if len(devices) > 1:
            window = mmio64_mib([gpu_table[g]["vram_gb"] for g in vm.get("gpus") or []])
            params["args"] = f"-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string={window}"
        disks, efi_storage = _disks(name, plan_vm, host_plan, opts, notes)
        params.update(disks)
        if opts["efi_storage"]:
            efi_storage = opts["efi_storage"]
        elif efi_storage is None:
            efi_storage = fallback_efi
            if efi_storage is None:
                raise fail(
                    "proxmox_guests_efi_storage", f"{name} has no tier disk to hold its EFI variables; name a storage"
                )
            notes.append(
                f"EFI variables on {efi_storage!r}, the storage of the plan's first tier disk (not in the design)"
            )
        if disks and "tier" not in (plan_vm.get("disks") or [{}])[0]:
            notes.append("the first disk is not a tier disk: the VM boots from it; no OS disk in the design")
        params["efidisk0"] = render(
            "efidisk", {"file": f"{efi_storage}:1", "efitype": opts["efitype"], "pre-enrolled-keys": 0}
        )
        if disks:
            params["boot"] = "order=scsi0"
        if plan_vm.get("network"):
            vlan = networks[plan_vm["network"]]["vlan"]
            params["net0"] = render("net", {"model": "virtio", "bridge": opts["bridge"], "tag": vlan})
        definitions.append(
            {
                "name": name,
                "vmid": ids[name],
                "params": params,
                "cores": placed["cores"],
                "notes": notes,
                "warnings": warnings,
            }
        )
    return definitions


__all__ = ["DEFAULTS", "ProxmoxPlanError", "format_cpu_ranges", "mmio64_mib", "vm_definitions"]
