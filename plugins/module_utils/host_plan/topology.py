# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""CPU/NUMA topology described as data.

Linux numbers logical CPUs per machine, not per rule: on a dual Xeon 8270 it is
usually 0-25 node 0, 26-51 node 1, 52-77 the node-0 hyper-threads, 78-103 the
node-1 hyper-threads, but other boards interleave nodes or put siblings next to
each other. So the layout is an input: each node lists its physical cores (the
first thread of each core) and, in the same order, the sibling threads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan._common import (
    as_int,
    as_list,
    as_mapping,
    check_keys,
    fail,
)
from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.cpu import parse_cpu_ranges


@dataclass
class Topology:
    """Physical cores per node plus the maps needed to resolve any logical CPU."""

    cores_by_node: dict[int, list[int]] = field(default_factory=dict)
    sibling_of: dict[int, int] = field(default_factory=dict)
    core_of: dict[int, int] = field(default_factory=dict)
    node_of_core: dict[int, int] = field(default_factory=dict)

    @property
    def total_cores(self) -> int:
        """Number of physical cores on all nodes."""
        return len(self.node_of_core)

    def threads(self, cores: list[int], with_siblings: bool) -> list[int]:
        """Logical CPUs for ``cores``, adding their sibling threads when asked."""
        cpus = set(cores)
        if with_siblings:
            cpus |= {self.sibling_of[c] for c in cores if c in self.sibling_of}
        return sorted(cpus)


def parse_topology(numa_nodes: Any, path: str = "numa_nodes") -> Topology:
    """Read ``[{id: 0, cores: '0-25', siblings: '52-77'}, ...]`` into a Topology."""
    topo = Topology()
    nodes = as_list(numa_nodes, path)
    if not nodes:
        raise fail(path, "at least one NUMA node is required")
    for index, raw in enumerate(nodes):
        where = f"{path}[{index}]"
        node = as_mapping(raw, where)
        check_keys(node, {"id", "cores", "siblings"}, where)
        if "id" not in node or "cores" not in node:
            raise fail(where, "'id' and 'cores' are required")
        node_id = as_int(node["id"], f"{where}.id")
        if node_id in topo.cores_by_node:
            raise fail(f"{where}.id", f"node {node_id} is listed twice")
        cores = parse_cpu_ranges(node["cores"], f"{where}.cores")
        siblings = parse_cpu_ranges(node.get("siblings", ""), f"{where}.siblings")
        if not cores:
            raise fail(f"{where}.cores", "a node needs at least one core")
        if siblings and len(siblings) != len(cores):
            raise fail(
                f"{where}.siblings",
                f"{len(siblings)} sibling threads for {len(cores)} cores; list one per core or none",
            )
        both = set(cores) & set(siblings)
        if both:
            raise fail(where, f"CPU(s) {sorted(both)} are listed as both cores and siblings")
        for cpu in cores + siblings:
            if cpu in topo.core_of:
                raise fail(where, f"CPU {cpu} already belongs to another node or core")
        for position, core in enumerate(cores):
            topo.core_of[core] = core
            topo.node_of_core[core] = node_id
            if siblings:
                topo.sibling_of[core] = siblings[position]
                topo.core_of[siblings[position]] = core
        topo.cores_by_node[node_id] = cores
    return topo
