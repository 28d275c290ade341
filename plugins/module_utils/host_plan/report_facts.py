# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Compare a plan with what the host reports (Ansible facts plus playbooks/plan.yml's host listing).

``facts`` is a mapping of Ansible facts (``memtotal_mb``, ``processor_vcpus``,
``processor_count``, ``processor_cores``, ``processor_threads_per_core``) with
one more key, ``host_listing``, as playbooks/plan.yml gathers it from sysfs:
``{pci: [{address, class, vendor, device, numa_node, driver}], disks_by_id:
{name: {device, size_bytes}}, nics: [{name, pci, driver, speed_mbps, mac}],
numa_nodes: {id: cpulist}}``. Every key is optional; what is absent is not compared.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan import adapter
from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan._common import show, type_name
from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.cpu import parse_cpu_ranges

HW = adapter.HW
GPU_VENDORS = {"0x10de": "NVIDIA", "0x1002": "AMD"}
# MemTotal is installed memory minus firmware and kernel reservations: a few percent.
MEMTOTAL_MIN_FRACTION = 0.9
SIZE_TOLERANCE = 0.02


def _is_gpu(dev: Mapping[str, Any]) -> bool:
    return str(dev.get("class", "")).startswith("0x03") and dev.get("vendor") in GPU_VENDORS


def _cpu(ctx: Any, facts: Mapping[str, Any], rows: list[list[Any]]) -> None:
    f = ctx.findings
    cpu = adapter.section(ctx.plan, "hardware", "cpu")
    pairs = (
        ("processor_vcpus", f"{HW}.cpu", adapter.logical_cpus(ctx.plan), "logical CPUs"),
        ("processor_count", f"{HW}.cpu.sockets", cpu["sockets"], "sockets"),
        ("processor_cores", f"{HW}.cpu.cores_per_socket", cpu["cores_per_socket"], "cores per socket"),
        ("processor_threads_per_core", f"{HW}.cpu.threads_per_core", cpu["threads_per_core"], "threads per core"),
    )
    for key, path, planned, what in pairs:
        if facts.get(key) is None:
            continue
        reported = int(facts[key])
        rows.append([what, planned, reported, "ok" if reported == planned else "differs"])
        if reported != planned:
            f.error(path, "facts", f"the plan has {planned} {what}, the host reports {reported}")
    listed = (facts.get("host_listing") or {}).get("numa_nodes") or {}
    if listed:
        planned_nodes = {
            n["id"]: parse_cpu_ranges(n["cpus"]) for n in adapter.section(ctx.plan, "hardware", "numa_nodes")
        }
        reported_nodes = {int(k): parse_cpu_ranges(str(v)) for k, v in listed.items()}
        same = planned_nodes == reported_nodes
        rows.append(["NUMA nodes", len(planned_nodes), len(reported_nodes), "ok" if same else "differs"])
        if not same:
            shown = "; ".join(f"node {k}: {v}" for k, v in sorted(listed.items(), key=lambda kv: int(kv[0])))
            f.error(f"{HW}.numa_nodes", "facts", f"the host's NUMA nodes are {shown}")


def _memory(ctx: Any, facts: Mapping[str, Any], rows: list[list[Any]]) -> None:
    if facts.get("memtotal_mb") is None:
        return
    planned = adapter.section(ctx.plan, "hardware", "memory")["total_gb"] * 1024
    reported = int(facts["memtotal_mb"])
    verdict = "ok"
    if reported > planned:
        verdict = "more"
        ctx.findings.error(
            f"{HW}.memory.total_gb", "facts", f"the host reports {reported} MiB, more than the planned {planned:g} MiB"
        )
    elif reported < MEMTOTAL_MIN_FRACTION * planned:
        verdict = "less"
        ctx.findings.error(
            f"{HW}.memory.total_gb",
            "facts",
            f"the host reports {reported} MiB of {planned:g} MiB planned ({reported / planned:.0%}): memory is missing",
        )
    rows.append(["memory MiB (MemTotal)", planned, reported, verdict])


def _gpus(ctx: Any, pci: list[Mapping[str, Any]], rows: list[list[Any]]) -> None:
    f = ctx.findings
    by_address = {str(d.get("address", "")).lower(): d for d in pci}
    planned = adapter.section(ctx.plan, "hardware", "gpus") or {}
    found = [d for d in pci if _is_gpu(d) and str(d.get("address", "")).endswith(".0")]
    rows.append(["GPUs", len(planned), len(found), "ok" if len(found) == len(planned) else "differs"])
    if len(found) != len(planned):
        seen = ", ".join(f"{d['address']} ({GPU_VENDORS[d['vendor']]} {d.get('device')})" for d in found) or "none"
        f.error(f"{HW}.gpus", "facts", f"the plan has {len(planned)} GPU(s), the host shows {len(found)}: {seen}")
    for name, gpu in planned.items():
        path = f"{HW}.gpus.{name}"
        dev = by_address.get(gpu["pci_address"].lower())
        if dev is None:
            f.error(f"{path}.pci_address", "facts", f"no PCI device at {gpu['pci_address']}")
            continue
        if not _is_gpu(dev):
            f.error(
                f"{path}.pci_address",
                "facts",
                f"{gpu['pci_address']} is class {dev.get('class')} vendor {dev.get('vendor')}, not a GPU",
            )
        for function in gpu.get("functions") or []:
            if function.lower() not in by_address:
                f.error(f"{path}.functions", "facts", f"no PCI function at {function}")
        node = dev.get("numa_node")
        if gpu.get("numa_node") is not None and node is not None and int(node) >= 0 and int(node) != gpu["numa_node"]:
            f.error(f"{path}.numa_node", "facts", f"the host puts {gpu['pci_address']} on NUMA node {node}")


def _disks(ctx: Any, by_id: Mapping[str, Any], rows: list[list[Any]]) -> None:
    f = ctx.findings
    planned = adapter.section(ctx.plan, "hardware", "disks") or {}
    present = 0
    for name, disk in planned.items():
        path = f"{HW}.disks.{name}"
        entry = by_id.get(disk["id"])
        if entry is None:
            hint = " (a dual-actuator drive shows one id per LUN)" if disk.get("actuators") == 2 else ""
            f.error(f"{path}.id", "facts", f"/dev/disk/by-id/{disk['id']} does not exist{hint}")
            continue
        present += 1
        size = entry.get("size_bytes")
        if size and abs(size - disk["size_bytes"]) > SIZE_TOLERANCE * disk["size_bytes"]:
            f.error(
                f"{path}.size_bytes",
                "facts",
                f"{disk['id']} ({entry.get('device')}) has {size} bytes, the plan says {disk['size_bytes']}",
            )
    rows.append(["disks present by id", len(planned), present, "ok" if present == len(planned) else "missing"])


def _nics(ctx: Any, nics: list[Mapping[str, Any]], rows: list[list[Any]]) -> None:
    f = ctx.findings
    physical = [n for n in nics if n.get("pci")]
    planned = adapter.section(ctx.plan, "hardware", "nics") or {}
    ports = sum(n.get("ports", 1) for n in planned.values())
    rows.append(["NIC ports", ports, len(physical), "ok" if len(physical) == ports else "differs"])
    if len(physical) < ports:
        f.error(f"{HW}.nics", "facts", f"the plan has {ports} NIC port(s), the host shows {len(physical)}")
    elif len(physical) > ports:
        f.note(f"{HW}.nics", "facts", f"the host shows {len(physical)} NIC port(s), the plan {ports}")
    for name, nic in planned.items():
        if not nic.get("driver"):
            continue
        path = f"{HW}.nics.{name}"
        mine = [n for n in physical if n.get("driver") == nic["driver"]]
        want = nic.get("ports", 1)
        if len(mine) < want:
            f.error(f"{path}.ports", "facts", f"{want} port(s) planned, the host has {len(mine)} on {nic['driver']}")
        for port in mine:
            speed = port.get("speed_mbps")
            if speed is None or speed <= 0:
                continue
            planned_mbps = nic["speed_gbps"] * 1000
            if speed < planned_mbps:
                f.warning(
                    f"{path}.speed_gbps",
                    "facts",
                    f"{port.get('name')} links at {speed} Mb/s, the plan says {nic['speed_gbps']:g} Gb/s",
                )
            elif speed > planned_mbps:
                f.warning(
                    f"{path}.speed_gbps",
                    "facts",
                    f"{port.get('name')} links at {speed} Mb/s, faster than the planned {nic['speed_gbps']:g} Gb/s",
                )


def compare_facts(ctx: Any, facts: Any) -> None:
    """Add findings and a "host vs plan" table for everything ``facts`` reports."""
    if not isinstance(facts, Mapping):
        raise TypeError(f"expected a mapping of facts, got {type_name(facts)} {show(facts)}")
    listing = facts.get("host_listing") or {}
    rows: list[list[Any]] = []
    _cpu(ctx, facts, rows)
    _memory(ctx, facts, rows)
    if "pci" in listing:
        _gpus(ctx, list(listing["pci"]), rows)
    if "disks_by_id" in listing:
        _disks(ctx, listing["disks_by_id"], rows)
    if "nics" in listing:
        _nics(ctx, list(listing["nics"]), rows)
    ctx.figures["facts_compared"] = len(rows)
    ctx.table("Plan vs host", ["item", "planned", "reported", "verdict"], rows)
