# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host memory budget and DIMM population checks. All sizes are GiB (JEDEC "GB")."""

from __future__ import annotations

import math
from typing import Any

from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan._common import (
    as_int,
    as_list,
    as_mapping,
    as_number,
    check_keys,
    fail,
    named_items,
)

_MEMORY_KEYS = {"installed_gib", "dimms", "populated_dimms", "sockets", "channels_per_socket", "slots_per_channel"}


def _vm_gib(vm: Any, name: str) -> float:
    has_gib, has_mib = "memory_gib" in vm, "memory_mib" in vm
    if has_gib == has_mib:
        raise fail(f"vms.{name}", "give exactly one of memory_gib or memory_mib")
    if has_gib:
        return as_number(vm["memory_gib"], f"vms.{name}.memory_gib")
    return as_number(vm["memory_mib"], f"vms.{name}.memory_mib") / 1024


def _dimm_checks(memory: Any, errors: list[str], warnings: list[str]) -> dict[str, Any]:
    sizes: list[float] = []
    count = 0
    for index, raw in enumerate(as_list(memory.get("dimms") or [], "memory.dimms")):
        where = f"memory.dimms[{index}]"
        group = as_mapping(raw, where)
        check_keys(group, {"size_gib", "count"}, where)
        size = as_number(group.get("size_gib"), f"{where}.size_gib", minimum=0, allow_equal=False)
        number = as_int(group.get("count"), f"{where}.count", minimum=1)
        sizes += [size] * number
        count += number
    sockets = as_int(memory.get("sockets", 1), "memory.sockets", minimum=1)
    channels = sockets * as_int(memory.get("channels_per_socket", 1), "memory.channels_per_socket", minimum=1)
    slots = channels * as_int(memory.get("slots_per_channel", 1), "memory.slots_per_channel", minimum=1)
    info: dict[str, Any] = {"count": count, "total_gib": sum(sizes), "channels": channels, "slots": slots}
    if not count:
        return info
    claimed = memory.get("populated_dimms")
    if claimed is not None and as_int(claimed, "memory.populated_dimms") != count:
        errors.append(
            f"memory: the DIMM list adds up to {count} modules but populated_dimms says {claimed}; one of them is wrong"
        )
    if count > slots:
        errors.append(f"memory: {count} DIMMs do not fit in {slots} slots")
    elif count < channels:
        warnings.append(f"memory: {channels - count} of {channels} channels are empty; bandwidth is reduced")
    elif count % channels:
        double = count - channels * (count // channels)
        warnings.append(
            f"memory: {count} DIMMs on {channels} channels cannot be one per channel: {double} channels carry "
            f"{count // channels + 1} DIMMs, the rest {count // channels}; interleaving is uneven"
        )
    if count % sockets:
        warnings.append(f"memory: {count} DIMMs cannot be split evenly over {sockets} sockets")
    distinct = sorted(set(sizes))
    if len(distinct) > 1:
        warnings.append(
            f"memory: mixed DIMM sizes {', '.join(f'{s:g} GiB' for s in distinct)}; channels differ in capacity "
            "so part of the memory is not interleaved across all channels"
        )
    info["per_channel"] = count / channels
    info["sizes_gib"] = distinct
    return info


def plan_memory_budget(
    memory: Any,
    vms: Any,
    host_reserve_gib: Any = 0,
    zfs_arc_max_gib: Any = 0,
    hugepages_gib: Any = 0,
    hugepage_size_mib: Any = 2,
) -> dict[str, Any]:
    """Compare what the plan reserves with the memory installed; see docs/planning-filters.md."""
    memory = as_mapping(memory, "memory")
    check_keys(memory, _MEMORY_KEYS, "memory")
    errors: list[str] = []
    warnings: list[str] = []
    dimms = _dimm_checks(memory, errors, warnings)

    if memory.get("installed_gib") is not None:
        installed = as_number(memory["installed_gib"], "memory.installed_gib")
        if dimms["count"] and not math.isclose(installed, dimms["total_gib"]):
            errors.append(f"memory: installed_gib is {installed:g} but the DIMMs add up to {dimms['total_gib']:g} GiB")
    elif dimms["count"]:
        installed = dimms["total_gib"]
    else:
        raise fail("memory", "give installed_gib or dimms")

    page_mib = as_number(hugepage_size_mib, "hugepage_size_mib", minimum=0, allow_equal=False)
    vm_total = 0.0
    vm_huge = 0.0
    for name, vm in named_items(vms, "vms"):
        size = _vm_gib(vm, name)
        vm_total += size
        if vm.get("hugepages"):
            vm_huge += size
            if (size * 1024) % page_mib:
                errors.append(f"vms.{name}: {size:g} GiB is not a whole number of {page_mib:g} MiB huge pages")
    extra_huge = as_number(hugepages_gib, "hugepages_gib")
    host = as_number(host_reserve_gib, "host_reserve_gib")
    arc = as_number(zfs_arc_max_gib, "zfs_arc_max_gib")
    # ARC max counts in full: under memory pressure ARC shrinks, but only down to
    # arc_min and only as fast as it can evict; a plan that needs ARC to shrink
    # to fit the VMs is a plan that swaps or invokes the OOM killer.
    demand = vm_total + extra_huge + host + arc
    if demand > installed:
        errors.append(
            f"memory: over budget by {demand - installed:g} GiB: VMs {vm_total:g} + hugepages {extra_huge:g} + "
            f"host reserve {host:g} + ZFS ARC max {arc:g} = {demand:g} GiB > {installed:g} GiB installed"
        )
    huge_total = vm_huge + extra_huge
    return {
        "ok": not errors,
        "errors": errors,
        "warnings": warnings,
        "installed_gib": installed,
        "demand_gib": demand,
        "free_gib": installed - demand,
        "breakdown_gib": {"vms": vm_total, "hugepages": extra_huge, "host_reserve": host, "zfs_arc_max": arc},
        "hugepages": {"size_mib": page_mib, "count": math.ceil(huge_total * 1024 / page_mib)},
        "dimms": dimms,
    }
