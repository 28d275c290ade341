# Copyright: onprem.gpu_server maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which of the ports the LLM deployments need are held by programs other than the llm_serving role's own.

The role runs this file on the host before any change, read-only (``/usr/bin/python3 - PORTS < listeners.py``,
PORTS a JSON object {port: what it is for}); it prints a JSON list of refusals, one sentence per port another
program holds, empty when every port is free or already the role's.

A holder is the role's own when its cgroup is a replica's unit (``onprem-llm-*.service``), HAProxy's, or a
container's scope (an engine run by Docker). ``ss`` names no process when it may not read the holder's
descriptors (a container without CAP_SYS_PTRACE): such a port counts as the role's own when its HAProxy
configuration or a replica's unit already uses it.
"""

from __future__ import annotations

import glob
import json
import re
import subprocess
import sys
from pathlib import Path

OWN_CGROUP = re.compile(r"onprem-llm-[^/]*[.]service|haproxy[.]service|docker-[0-9a-f]+[.]scope")
OWN_FILES = ("/etc/haproxy/haproxy.cfg", "/etc/systemd/system/onprem-llm-*.service")
HOLDER = re.compile(r'users:\(\("([^"]+)",pid=(\d+)')


def listeners(listing: str) -> dict[int, tuple[str, int | None]]:
    """``ss -Hltnp``'s lines as {port: (program, pid)}, the first holder of each port ("?" and None when ss
    names none)."""
    out: dict[int, tuple[str, int | None]] = {}
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        port = int(fields[3].rsplit(":", 1)[1])
        if port in out:
            continue
        found = HOLDER.search(line)
        out[port] = (found.group(1), int(found.group(2))) if found else ("?", None)
    return out


def cgroup_path(text: str) -> str:
    """The unified hierarchy's path in a ``/proc/<pid>/cgroup``, or systemd's own on a host with cgroup v1."""
    for line in text.splitlines():
        if line.startswith("0::") or ":name=systemd:" in line:
            return line.split(":", 2)[2]
    return ""


def uses_port(config: str, port: int) -> bool:
    """Whether the role's own configuration (HAProxy's binds and servers, the replicas' command lines) names port."""
    return re.search(rf"(:|--port ){port}\b", config) is not None


def refusals(ports: dict[int, str], listing: str, cgroups: dict[int, str], own_config: str) -> list[str]:
    """One sentence per planned port that another program holds. cgroups: {pid: cgroup path} of the holders."""
    out = []
    for port, (who, pid) in sorted(listeners(listing).items()):
        if port not in ports:
            continue
        cgroup = cgroups.get(pid, "") if pid is not None else ""
        if OWN_CGROUP.search(cgroup) or (pid is None and uses_port(own_config, port)):
            continue
        out.append(f"{port} ({ports[port]}) is held by {who} ({cgroup})")
    return out


def _read(path: str) -> str:
    """A file's text, empty when it cannot be read (a process gone, a file absent). The file runs alone on the
    host, so it imports nothing from the collection."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError:
        return ""


def main(argv: list[str]) -> int:
    ports = {int(port): purpose for port, purpose in json.loads(argv[0]).items()}
    listing = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=True).stdout
    holders = listeners(listing)
    pids = [pid for _who, pid in holders.values() if pid is not None]
    cgroups = {pid: cgroup_path(_read(f"/proc/{pid}/cgroup")) for pid in pids}
    own = "".join(_read(path) for pattern in OWN_FILES for path in sorted(glob.glob(pattern)))
    sys.stdout.write(json.dumps(refusals(ports, listing, cgroups, own)) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
