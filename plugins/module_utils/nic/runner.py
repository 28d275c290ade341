# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reads a NIC's state with ethtool, ip and udevadm (nothing here changes the system)."""

from __future__ import annotations

from typing import Any

from ansible_collections.onprem.gpu_server.plugins.module_utils.nic import ethtool
from ansible_collections.onprem.gpu_server.plugins.module_utils.tool_runner import CommandFailed, ToolRunner

# ethtool's words when a driver lacks an operation (netlink and ioctl paths).
UNSUPPORTED = ("Operation not supported", "not supported")


class NicRunner:
    """Runs the read-only queries of one NIC and parses them."""

    def __init__(self, module: Any) -> None:
        self.tools = ToolRunner(module, required=("ethtool", "ip"))

    def links(self) -> list[dict[str, Any]]:
        return ethtool.parse_ip_links(self.tools.call(["ip", "-j", "-d", "link", "show"]))

    def _optional(self, argv: list[str]) -> str | None:
        """stdout, or None when the driver does not support the query."""
        rc, out, err = self.tools.execute(argv)
        if rc == 0:
            return out
        if any(word in err or word in out for word in UNSUPPORTED):
            return None
        raise CommandFailed(f"{' '.join(argv)} failed (rc={rc}): {err.strip() or out.strip()}")

    def state(self, link: dict[str, Any]) -> dict[str, Any]:
        """Everything plan_nic needs about ``link`` (an entry of ``links()``)."""
        name = link["ifname"]
        rings = self._optional(["ethtool", "-g", name])
        channels = self._optional(["ethtool", "-l", name])
        coalesce = self._optional(["ethtool", "-c", name])
        return {
            "link": link,
            "driver": ethtool.parse_driver(self.tools.call(["ethtool", "-i", name])),
            "permanent_mac": ethtool.parse_permanent_address(self.tools.call(["ethtool", "-P", name])),
            "rings": ethtool.parse_rings(rings) if rings is not None else None,
            "channels": ethtool.parse_channels(channels) if channels is not None else None,
            "coalesce": ethtool.parse_coalesce(coalesce) if coalesce is not None else None,
            "features": ethtool.parse_features(self.tools.call(["ethtool", "-k", name])),
        }

    def udev_properties(self, name: str) -> dict[str, str]:
        """udev's properties of the interface ({} when udevadm is missing or knows nothing)."""
        if not self.tools.has("udevadm"):
            return {}
        rc, out, _err = self.tools.execute(["udevadm", "info", "--query=property", f"--path=/sys/class/net/{name}"])
        if rc != 0:
            return {}
        props = {}
        for line in out.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                props[key] = value
        return props

    def run(self, argv: list[str]) -> None:
        self.tools.run(argv)
