# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PCIe lane budget and link speeds."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan._common import (
    as_int,
    as_list,
    as_mapping,
    check_keys,
    fail,
)

# Usable GB/s per lane and direction after line coding (8b/10b to gen 2, 128b/130b from gen 3).
GB_S_PER_LANE = {1: 0.25, 2: 0.5, 3: 8 * 128 / 130 / 8, 4: 16 * 128 / 130 / 8, 5: 32 * 128 / 130 / 8}
WIDTHS = (1, 2, 4, 8, 16)


def _gen(value: Any, path: str) -> int:
    gen = as_int(value, path, minimum=1)
    if gen not in GB_S_PER_LANE:
        raise fail(path, f"PCIe generation must be 1-5, got {gen}")
    return gen


def plan_pcie_lanes(platform: Any, devices: Any) -> dict[str, Any]:
    """Sum device lanes per socket against CPU lanes; report links that train below the device's generation."""
    platform = as_mapping(platform, "platform")
    check_keys(platform, {"name", "sockets", "lanes_per_socket", "gen", "reserved_lanes"}, "platform")
    sockets = as_int(platform.get("sockets", 1), "platform.sockets", minimum=1)
    per_socket = as_int(platform.get("lanes_per_socket"), "platform.lanes_per_socket", minimum=1)
    reserved = as_int(platform.get("reserved_lanes", 0), "platform.reserved_lanes")
    platform_gen = _gen(platform.get("gen"), "platform.gen")
    total = sockets * per_socket - reserved
    errors: list[str] = []
    warnings: list[str] = []
    used = 0
    by_socket: dict[int, int] = defaultdict(int)
    links = []
    for index, raw in enumerate(as_list(devices, "devices")):
        where = f"devices[{index}]"
        dev = as_mapping(raw, where)
        check_keys(dev, {"name", "lanes", "count", "gen", "socket"}, where)
        name = str(dev.get("name", where))
        lanes = as_int(dev.get("lanes"), f"{where}.lanes", minimum=1)
        if lanes not in WIDTHS:
            raise fail(f"{where}.lanes", f"link width must be one of {WIDTHS}, got {lanes}")
        count = as_int(dev.get("count", 1), f"{where}.count", minimum=1)
        gen = _gen(dev.get("gen", platform_gen), f"{where}.gen")
        used += lanes * count
        if dev.get("socket") is not None:
            socket = as_int(dev["socket"], f"{where}.socket")
            if socket >= sockets:
                raise fail(f"{where}.socket", f"platform has sockets 0-{sockets - 1}, got {socket}")
            by_socket[socket] += lanes * count
        link_gen = min(gen, platform_gen)
        if gen > platform_gen:
            warnings.append(
                f"{where} ({name}): a gen {gen} device links at gen {platform_gen}: x{lanes} gives "
                f"{GB_S_PER_LANE[link_gen] * lanes:.1f} GB/s per direction, not {GB_S_PER_LANE[gen] * lanes:.1f}"
            )
        links.append(
            {
                "name": name,
                "count": count,
                "lanes": lanes,
                "gen": link_gen,
                "gb_s_per_direction": GB_S_PER_LANE[link_gen] * lanes,
            }
        )
    if used > total:
        errors.append(f"devices: need {used} lanes but the platform offers {total}")
    for socket, lanes in sorted(by_socket.items()):
        if lanes > per_socket:
            errors.append(f"devices: socket {socket} needs {lanes} lanes but has {per_socket}")
    return {
        "ok": not errors,
        "errors": errors,
        "warnings": warnings,
        "lanes_used": used,
        "lanes_available": total,
        "lanes_by_socket": dict(sorted(by_socket.items())),
        "links": links,
    }
