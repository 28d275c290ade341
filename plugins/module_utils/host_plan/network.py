# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""TCP buffer sizes from the bandwidth-delay product."""

from __future__ import annotations

import math
from typing import Any

from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan._common import as_number

MIB = 1 << 20
# Linux defaults (net.ipv4.tcp_rmem / tcp_wmem); the plan never goes below them.
TCP_RMEM_DEFAULT = (4096, 131072, 6291456)
TCP_WMEM_DEFAULT = (4096, 16384, 4194304)
# Beyond this the claim is called oversized: more than 4x the need only adds
# memory per socket and queueing delay.
OVERSIZE_FACTOR = 4


def plan_nic_buffers(
    bandwidth_bps: Any,
    rtt_ms: Any,
    overhead_factor: Any = 2,
    claimed_bytes: Any = None,
) -> dict[str, Any]:
    """Size rmem/wmem so one TCP flow can fill ``bandwidth_bps`` at ``rtt_ms``.

    ``overhead_factor`` accounts for the part of the socket buffer Linux spends
    on skb metadata rather than window (about half with the default
    tcp_adv_win_scale=1).
    """
    bandwidth = as_number(bandwidth_bps, "bandwidth_bps", minimum=0, allow_equal=False)
    rtt = as_number(rtt_ms, "rtt_ms", minimum=0, allow_equal=False)
    factor = as_number(overhead_factor, "overhead_factor", minimum=1)
    bdp = bandwidth / 8 * rtt / 1000
    needed = math.ceil(bdp * factor / MIB) * MIB
    rmem = max(needed, TCP_RMEM_DEFAULT[2])
    wmem = max(needed, TCP_WMEM_DEFAULT[2])
    result: dict[str, Any] = {
        "bdp_bytes": math.ceil(bdp),
        "needed_bytes": needed,
        "rmem_max": rmem,
        "wmem_max": wmem,
        "tcp_rmem": [TCP_RMEM_DEFAULT[0], TCP_RMEM_DEFAULT[1], rmem],
        "tcp_wmem": [TCP_WMEM_DEFAULT[0], TCP_WMEM_DEFAULT[1], wmem],
        "sysctl": {
            "net.core.rmem_max": rmem,
            "net.core.wmem_max": wmem,
            "net.ipv4.tcp_rmem": f"{TCP_RMEM_DEFAULT[0]} {TCP_RMEM_DEFAULT[1]} {rmem}",
            "net.ipv4.tcp_wmem": f"{TCP_WMEM_DEFAULT[0]} {TCP_WMEM_DEFAULT[1]} {wmem}",
        },
        "warnings": [],
    }
    if claimed_bytes is not None:
        claimed = as_number(claimed_bytes, "claimed_bytes", minimum=0, allow_equal=False)
        # RTT at which the claimed buffer is exactly what one flow needs.
        rtt_for_claim = claimed / factor / (bandwidth / 8) * 1000
        ceiling_bps = claimed / factor * 8 / (rtt / 1000)
        if claimed < needed:
            verdict = "too_small"
            result["warnings"].append(
                f"claimed_bytes: {claimed:.0f} B caps one flow at {ceiling_bps / 1e9:.2f} Gbit/s at {rtt:g} ms RTT; "
                f"{needed} B are needed"
            )
        elif claimed > OVERSIZE_FACTOR * max(needed, TCP_RMEM_DEFAULT[2]):
            verdict = "oversized"
            result["warnings"].append(
                f"claimed_bytes: {claimed:.0f} B is {claimed / needed:.0f}x what {bandwidth / 1e9:g} Gbit/s at "
                f"{rtt:g} ms RTT needs; it is only justified from {rtt_for_claim:.1f} ms RTT"
            )
        else:
            verdict = "justified"
        result["claim"] = {"bytes": claimed, "verdict": verdict, "justified_from_rtt_ms": rtt_for_claim}
    return result
