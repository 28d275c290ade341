# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What differs between the running interfaces and what a role wrote: one line each, nothing when they agree.

The networks and netplan roles run this file, unchanged, on the host with
``/usr/bin/python3 -I - EXPECTED_JSON`` (the program on stdin, so nothing is installed and check mode
can run it), once to decide whether to apply and once to verify afterwards. EXPECTED_JSON is::

    {"macs":       [{"name": "eno1", "mac": "aa:bb:cc:dd:ee:ff"}],   # a matched NIC carries its MAC
     "interfaces": ["eno1", "bond0"],                                # each exists
     "bridges":    [{"name": "vmbr1", "ports": ["eno1"], "vids": [10, 20]}],
     "addresses":  [["vmbr1.10", "10.0.10.2/24"]]}                   # each is on its interface

Every key is optional; the lines come out in that order. A bridge must exist with VLAN filtering on,
each listed port must be enslaved to it and carry each VLAN. Ports the role does not list (Proxmox
guests' tap/veth/fwpr devices) are not a difference.

Only the standard library: it runs on the host, where the collection is not installed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # a type alias only: subscripted builtins need Python 3.9+ at run time
    # argv -> the tool's stdout; empty when it fails or is missing, as a shell pipe would see it.
    Runner = Callable[[list[str]], str]

_NUMBER = re.compile(r"^[0-9]+$")


def run_tool(argv: list[str]) -> str:
    """Run iproute2's ``ip`` or ``bridge`` with C locale; its stdout whatever its exit status."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, env={**os.environ, "LC_ALL": "C"})
    except OSError:
        return ""
    return proc.stdout


def _read(path: str) -> str | None:
    """A sysfs value without its trailing newline, or None when it cannot be read."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read().rstrip("\n")
    except OSError:
        return None


def port_vids(bridge_vlan_show: str) -> set[str]:
    """The VLAN IDs in ``bridge vlan show dev PORT`` output (every number after the header line)."""
    return {token for line in bridge_vlan_show.splitlines()[1:] for token in line.split() if _NUMBER.match(token)}


def mac_drift(sysfs: str, name: str, mac: str) -> list[str]:
    """A present NIC with another MAC; a bond member shows the bond's MAC, so its permanent one is read."""
    net = os.path.join(sysfs, "class", "net", name)
    if not os.path.exists(net):
        return []
    have = _read(os.path.join(net, "bonding_slave", "perm_hwaddr"))
    if have is None:
        have = _read(os.path.join(net, "address")) or ""
    return [] if have == mac else [f"{name}: has MAC {have}, not {mac}"]


def bridge_drift(sysfs: str, bridge: Mapping[str, Any], run: Runner) -> list[str]:
    """The bridge, its VLAN filtering, and each listed port's master and VLANs."""
    name = str(bridge["name"])
    net = os.path.join(sysfs, "class", "net")
    if not os.path.isdir(os.path.join(net, name, "bridge")):
        return [f"{name}: no such bridge"]
    lines = []
    if _read(os.path.join(net, name, "bridge", "vlan_filtering")) != "1":
        lines.append(f"{name}: VLAN filtering off")
    for port in bridge.get("ports", []):
        try:
            master = os.path.basename(os.readlink(os.path.join(net, port, "master")))
        except OSError:
            master = ""
        if master != name:
            lines.append(f"{port}: not a port of {name}")
        vids = port_vids(run(["bridge", "vlan", "show", "dev", port]))
        lines.extend(f"{port}: VLAN {vid} not allowed" for vid in bridge.get("vids", []) if str(vid) not in vids)
    return lines


def address_drift(name: str, address: str, run: Runner) -> list[str]:
    """An address missing from its interface (``ip -o`` prints it between spaces)."""
    if f" {address} " in run(["ip", "-o", "addr", "show", "dev", name]):
        return []
    return [f"{name}: address {address} missing"]


def drift(expected: Mapping[str, Any], sysfs: str = "/sys", run: Runner = run_tool) -> list[str]:
    """Every difference between the host and ``expected`` (see the module docstring), in a stable order."""
    lines: list[str] = []
    for entry in expected.get("macs", []):
        lines.extend(mac_drift(sysfs, str(entry["name"]), str(entry["mac"])))
    for name in expected.get("interfaces", []):
        if not os.path.exists(os.path.join(sysfs, "class", "net", name)):
            lines.append(f"{name}: no such interface")
    for bridge in expected.get("bridges", []):
        lines.extend(bridge_drift(sysfs, bridge, run))
    for name, address in expected.get("addresses", []):
        lines.extend(address_drift(str(name), str(address), run))
    return lines


def main(argv: list[str]) -> int:
    """``drift.py EXPECTED_JSON``: print the differences; exit 0 whether or not there are any."""
    if len(argv) != 1:
        sys.stderr.write("usage: drift.py EXPECTED_JSON\n")
        return 2
    lines = drift(json.loads(argv[0]))
    sys.stdout.write("".join(line + "\n" for line in lines))
    return 0


if __name__ == "__main__":
    # SystemExit rather than sys.exit: ansible-test's pylint bans sys.exit calls below plugins/module_utils.
    raise SystemExit(main(sys.argv[1:]))
