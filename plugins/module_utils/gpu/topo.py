# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure parser for ``nvidia-smi topo -m``: the link matrix, CPU/NUMA affinity and the NIC legend.

nvidia-smi separates columns with tabs and underlines the header row with ANSI escapes when it
writes to a terminal or a file; outputs pasted into issues often have spaces instead. Both parse:
the header is matched by name, and no cell of a row contains whitespace.
"""

from __future__ import annotations

import re
from typing import Any

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Older drivers head NIC columns with the device name (mlx5_0) instead of NIC<n>.
_DEVICE = re.compile(r"^(?:GPU|NIC)\d+$|^mlx\d+_\d+$")
_HEADER_TOKEN = re.compile(r"CPU Affinity|NUMA Affinity|GPU NUMA ID|\S+")
_NIC_LEGEND = re.compile(r"^\s*(NIC\d+):\s*(\S+)\s*$")
_NVLINK = re.compile(r"^NV(\d+)$")

# What each link code means (the legend nvidia-smi prints under the matrix), best first.
LINK_TYPES = {
    "X": "self",
    "NV#": "a bonded set of # NVLinks",
    "PIX": "at most a single PCIe bridge",
    "PXB": "multiple PCIe bridges, not the host bridge",
    "PHB": "PCIe and a PCIe host bridge (typically the CPU)",
    "NODE": "PCIe and the interconnect between host bridges within a NUMA node",
    "SYS": "PCIe and the SMP interconnect between NUMA nodes (QPI/UPI)",
}


def nvlinks(link: str | None) -> int:
    """Number of bonded NVLinks in a cell (``NV18`` -> 18); 0 for PCIe paths."""
    match = _NVLINK.match(link or "")
    return int(match.group(1)) if match else 0


def _affinity_value(value: str | None) -> str | None:
    return None if value in (None, "", "N/A") else value


def parse_topo_matrix(text: str) -> dict[str, Any]:
    """``topo -m`` -> ``{devices, links, pairs, affinity, nics}``.

    ``links[a][b]`` is the code for every ordered pair (self excluded); ``pairs`` lists each
    unordered GPU pair once with its code and NVLink count; ``affinity`` gives, per GPU, the CPU
    list, the NUMA affinity text and the NUMA node when it is a single number; ``nics`` maps
    ``NIC0`` to the device name from the NIC legend (``mlx5_0``).
    """
    lines = [_ANSI.sub("", line).rstrip() for line in text.splitlines()]
    header_at = next((i for i, line in enumerate(lines) if line.strip() and _is_header(line)), None)
    if header_at is None:
        return {"devices": [], "links": {}, "pairs": [], "affinity": {}, "nics": {}}
    columns = _HEADER_TOKEN.findall(lines[header_at])
    devices = [c for c in columns if _DEVICE.match(c)]
    extra = [c for c in columns if not _DEVICE.match(c)]
    links: dict[str, dict[str, str]] = {}
    affinity: dict[str, dict[str, Any]] = {}
    for line in lines[header_at + 1:]:
        if not line.strip() or line.strip().startswith("Legend"):
            break
        cells = line.split()
        label, row = cells[0], cells[1:]
        if label not in devices or len(row) < len(devices):
            continue
        links[label] = {devices[i]: code for i, code in enumerate(row[:len(devices)]) if devices[i] != label}
        if label.startswith("GPU"):
            tail = row[len(devices):]
            values = {extra[i]: tail[i] for i in range(min(len(extra), len(tail)))}
            numa = _affinity_value(values.get("NUMA Affinity"))
            gpu_numa = _affinity_value(values.get("GPU NUMA ID"))
            affinity[label] = {
                "cpu_affinity": _affinity_value(values.get("CPU Affinity")),
                "numa_affinity": numa,
                "numa_node": int(numa) if numa is not None and numa.isdigit() else None,
                "gpu_numa_id": int(gpu_numa) if gpu_numa is not None and gpu_numa.isdigit() else None,
            }
    gpus = [d for d in devices if d.startswith("GPU")]
    pairs = [
        {"a": a, "b": b, "link": links.get(a, {}).get(b), "nvlinks": nvlinks(links.get(a, {}).get(b))}
        for i, a in enumerate(gpus) for b in gpus[i + 1:]
    ]
    nics = {}
    for line in lines:
        match = _NIC_LEGEND.match(line)
        if match:
            nics[match.group(1)] = match.group(2)
    return {"devices": devices, "links": links, "pairs": pairs, "affinity": affinity, "nics": nics}


def _is_header(line: str) -> bool:
    tokens = line.split()
    return bool(tokens) and _DEVICE.match(tokens[0]) is not None and "Affinity" in line
