# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure parsers for ``nvidia-smi`` output: text in, dicts out.

* ``--query-gpu=<fields> --format=csv[,noheader][,nounits]``: :func:`parse_query_gpu` gives raw
  rows, :func:`gpu_from_query` one typed GPU record per row.
* ``nvidia-smi -q``: :func:`parse_q` gives the same GPU records (used when the CSV query fails).
* the banner of bare ``nvidia-smi`` (or the ``-q`` header): :func:`parse_versions`.
* ``nvidia-smi -L``: :func:`parse_list`, GPUs with their MIG devices.

nvidia-smi marks a missing value in several ways (``[N/A]``, ``N/A``, ``[Not Supported]``,
``[Requested functionality has been deprecated]``, an empty cell); all become None.
"""

from __future__ import annotations

import csv
import re
from typing import Any

from ansible_collections.onprem.gpu_server.plugins.module_utils.pci import address as pci_address

# The --query-gpu fields gpu_facts asks for. All exist in drivers 450 and later, and in every
# recording used by the tests. Order does not matter: the module keeps the CSV header and maps by name.
QUERY_FIELDS = (
    "index", "name", "uuid", "serial", "pci.bus_id", "pci.device_id", "driver_version", "vbios_version",
    "memory.total", "power.limit", "power.max_limit", "temperature.gpu", "persistence_mode",
    "ecc.mode.current", "mig.mode.current", "mig.mode.pending", "pstate", "clocks.max.graphics",
    "clocks.max.memory", "compute_cap", "pcie.link.gen.current", "pcie.link.gen.max",
    "pcie.link.width.current", "pcie.link.width.max",
)

# Every key of a GPU record, whichever output it came from.
GPU_KEYS = (
    "index", "name", "uuid", "serial", "bus_id", "pci_id", "driver_version", "vbios_version",
    "memory_total_mib", "power_limit_w", "power_max_limit_w", "temperature_c", "persistence_mode",
    "ecc_mode", "mig_mode", "mig_mode_pending", "pstate", "clocks_max_graphics_mhz", "clocks_max_memory_mhz",
    "compute_cap", "pcie_gen_current", "pcie_gen_max", "pcie_width_current", "pcie_width_max",
)

_MISSING = {"", "n/a", "[n/a]", "[not supported]", "not supported", "[unknown error]", "unknown error",
            "[requested functionality has been deprecated]", "requested functionality has been deprecated"}
_NUMBER_WITH_UNIT = re.compile(r"^(-?\d+(?:\.\d+)?)\s*(?:[a-z%]+(?:/s)?|x)?$", re.IGNORECASE)
_HEADER_UNIT = re.compile(r"\s*\[[^\]]*\]$")


def missing(value: str | None) -> bool:
    """True for every way nvidia-smi says "no value"."""
    return value is None or value.strip().lower() in _MISSING


def clean(value: str | None) -> str | None:
    """Strip a cell; None when it is one of the no-value markers."""
    return None if missing(value) else str(value).strip()


def number(value: str | None) -> float | None:
    """``"700.00 W"`` / ``"81559 MiB"`` / ``"16x"`` / ``"42"`` -> float; None when absent or not a number."""
    text = clean(value)
    if text is None:
        return None
    match = _NUMBER_WITH_UNIT.match(text)
    return float(match.group(1)) if match else None


def integer(value: str | None) -> int | None:
    """Like :func:`number`, as an int (nvidia-smi prints MiB, MHz, degrees and widths as whole numbers)."""
    result = number(value)
    return None if result is None else int(result)


def enabled(value: str | None) -> bool | None:
    """``Enabled``/``Disabled`` (also ``On``/``Off``, ``Yes``/``No``) -> bool; None when not applicable."""
    text = (clean(value) or "").lower()
    if text in ("enabled", "on", "yes", "active"):
        return True
    if text in ("disabled", "off", "no", "not active"):
        return False
    return None


def normalize_bus_id(value: str | None) -> str | None:
    """``00000000:3B:00.0`` (nvidia-smi's 8-digit domain) -> ``0000:3b:00.0`` (the sysfs name)."""
    text = clean(value)
    if text is None:
        return None
    try:
        parsed = pci_address.parse(text)
    except pci_address.AddressError:
        return None
    # The domain is 32 bits in NVML; sysfs prints it with at least four digits.
    return str(parsed) if parsed.function is not None else None


def pci_id(device_id: str | None) -> str | None:
    """NVML's ``0x268410DE`` (device in the high half, vendor in the low half) -> ``10de:2684``."""
    text = clean(device_id)
    if text is None or not re.fullmatch(r"0x[0-9a-fA-F]{8}", text):
        return None
    return f"{text[6:10].lower()}:{text[2:6].lower()}"


def parse_query_gpu(text: str, fields: list[str] | tuple[str, ...] | None = None) -> list[dict[str, str | None]]:
    """Rows of ``--query-gpu`` CSV as ``{field: value}``, units stripped from names and values.

    With ``fields`` None the first line must be the header (``--format=csv``); the unit nvidia-smi adds
    to a header name (``memory.total [MiB]``) is dropped. With ``fields`` given the output is taken as
    ``noheader``. Values keep their text but lose a trailing unit (``"700.00 W"`` -> ``"700.00"``), so
    ``nounits`` output and output with units parse the same; no-value markers become None.
    """
    rows = [row for row in csv.reader(text.splitlines(), skipinitialspace=True) if any(cell.strip() for cell in row)]
    if fields is None:
        if not rows:
            return []
        names = [_HEADER_UNIT.sub("", cell.strip()) for cell in rows[0]]
        rows = rows[1:]
    else:
        names = list(fields)
    result = []
    for row in rows:
        values = [cell.strip() for cell in row]
        if len(values) != len(names):
            raise ValueError(f"--query-gpu row has {len(values)} values for {len(names)} fields: {row!r}")
        result.append({names[i]: _strip_unit(values[i]) for i in range(len(names))})
    return result


def _strip_unit(value: str) -> str | None:
    text = clean(value)
    if text is None:
        return None
    match = _NUMBER_WITH_UNIT.match(text)
    return match.group(1) if match else text


def gpu_from_query(row: dict[str, str | None]) -> dict[str, Any]:
    """One GPU record from a ``--query-gpu`` row (fields not in the row are None)."""
    return {
        "index": integer(row.get("index")),
        "name": clean(row.get("name")),
        "uuid": clean(row.get("uuid")),
        "serial": clean(row.get("serial")),
        "bus_id": normalize_bus_id(row.get("pci.bus_id")),
        "pci_id": pci_id(row.get("pci.device_id")),
        "driver_version": clean(row.get("driver_version")),
        "vbios_version": clean(row.get("vbios_version")),
        "memory_total_mib": integer(row.get("memory.total")),
        "power_limit_w": number(row.get("power.limit")),
        "power_max_limit_w": number(row.get("power.max_limit")),
        "temperature_c": integer(row.get("temperature.gpu")),
        "persistence_mode": enabled(row.get("persistence_mode")),
        "ecc_mode": enabled(row.get("ecc.mode.current")),
        "mig_mode": enabled(row.get("mig.mode.current")),
        "mig_mode_pending": enabled(row.get("mig.mode.pending")),
        "pstate": clean(row.get("pstate")),
        "clocks_max_graphics_mhz": integer(row.get("clocks.max.graphics")),
        "clocks_max_memory_mhz": integer(row.get("clocks.max.memory")),
        "compute_cap": clean(row.get("compute_cap")),
        "pcie_gen_current": integer(row.get("pcie.link.gen.current")),
        "pcie_gen_max": integer(row.get("pcie.link.gen.max")),
        "pcie_width_current": integer(row.get("pcie.link.width.current")),
        "pcie_width_max": integer(row.get("pcie.link.width.max")),
    }


def query_argv(fields: tuple[str, ...] = QUERY_FIELDS) -> list[str]:
    """Arguments for the CSV query; the header stays so columns are matched by name, not position."""
    return [f"--query-gpu={','.join(fields)}", "--format=csv,nounits"]


_VERSION = {
    "driver_version": re.compile(r"Driver Version\s*:\s*(\S+)"),
    "cuda_version": re.compile(r"CUDA Version\s*:\s*([0-9][0-9.]*)"),
    "nvidia_smi_version": re.compile(r"NVIDIA-SMI\s+([0-9][0-9.]*)"),
}


def parse_versions(text: str) -> dict[str, str | None]:
    """Driver, CUDA and nvidia-smi versions from the banner of bare ``nvidia-smi`` or the ``-q`` header."""
    result: dict[str, str | None] = {}
    for key, pattern in _VERSION.items():
        match = pattern.search(text)
        result[key] = clean(match.group(1)) if match else None
    return result


_LIST_GPU = re.compile(r"^GPU (\d+): (.+?) \(UUID: ([^)]+)\)\s*$")
_LIST_MIG = re.compile(r"^\s+MIG (\S+)\s+Device\s+(\d+): \(UUID: ([^)]+)\)\s*$")


def parse_list(text: str) -> list[dict[str, Any]]:
    """``nvidia-smi -L``: ``[{index, name, uuid, mig_devices: [{index, profile, uuid}]}]``."""
    gpus: list[dict[str, Any]] = []
    for line in text.splitlines():
        gpu = _LIST_GPU.match(line)
        if gpu:
            gpus.append({"index": int(gpu.group(1)), "name": gpu.group(2), "uuid": gpu.group(3), "mig_devices": []})
            continue
        mig = _LIST_MIG.match(line)
        if mig and gpus:
            gpus[-1]["mig_devices"].append({"index": int(mig.group(2)), "profile": mig.group(1), "uuid": mig.group(3)})
    return gpus


# ---- nvidia-smi -q ------------------------------------------------------------------------------

_Q_LINE = re.compile(r"^( *)([^:]+?)\s*(?::\s?(.*))?$")


def _q_tree(lines: list[str]) -> dict[str, Any]:
    """Indented ``Key : value`` lines -> nested dicts; a repeated section (``MIG Device``) becomes a list."""
    root: dict[str, Any] = {}
    stack: list[tuple[int, dict[str, Any]]] = [(-1, root)]
    for line in lines:
        if not line.strip():
            continue
        match = _Q_LINE.match(line.rstrip())
        if not match:
            continue
        indent, key, value = len(match.group(1)), match.group(2).strip(), match.group(3)
        while stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1]
        if value is None:
            section: dict[str, Any] = {}
            if key in parent:
                existing = parent[key]
                parent[key] = (existing if isinstance(existing, list) else [existing]) + [section]
            else:
                parent[key] = section
            stack.append((indent, section))
        else:
            parent[key] = value.strip()
    return root


def _get(tree: dict[str, Any], *path: str) -> str | None:
    node: Any = tree
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node if isinstance(node, str) else None


def _first(tree: dict[str, Any], *paths: tuple[str, ...]) -> str | None:
    for path in paths:
        value = _get(tree, *path)
        if not missing(value):
            return value
    return None


def gpu_from_q(tree: dict[str, Any], index: int, bus_id: str, driver_version: str | None) -> dict[str, Any]:
    """One GPU record from a ``-q`` GPU section (``-q`` has no compute capability: None)."""
    # Drivers before 525 name the section "Power Readings" and the key "Power Limit".
    limit = [(s, k) for s in ("GPU Power Readings", "Power Readings") for k in ("Current Power Limit", "Power Limit")]
    maximum = [(s, "Max Power Limit") for s in ("GPU Power Readings", "Power Readings")]
    return {
        "index": index,
        "name": clean(_get(tree, "Product Name")),
        "uuid": clean(_get(tree, "GPU UUID")),
        "serial": clean(_get(tree, "Serial Number")),
        "bus_id": normalize_bus_id(_get(tree, "PCI", "Bus Id") or bus_id),
        "pci_id": pci_id(_get(tree, "PCI", "Device Id")),
        "driver_version": driver_version,
        "vbios_version": clean(_get(tree, "VBIOS Version")),
        "memory_total_mib": integer(_get(tree, "FB Memory Usage", "Total")),
        "power_limit_w": number(_first(tree, *limit)),
        "power_max_limit_w": number(_first(tree, *maximum)),
        "temperature_c": integer(_get(tree, "Temperature", "GPU Current Temp")),
        "persistence_mode": enabled(_get(tree, "Persistence Mode")),
        "ecc_mode": enabled(_get(tree, "ECC Mode", "Current")),
        "mig_mode": enabled(_get(tree, "MIG Mode", "Current")),
        "mig_mode_pending": enabled(_get(tree, "MIG Mode", "Pending")),
        "pstate": clean(_get(tree, "Performance State")),
        "clocks_max_graphics_mhz": integer(_get(tree, "Max Clocks", "Graphics")),
        "clocks_max_memory_mhz": integer(_get(tree, "Max Clocks", "Memory")),
        "compute_cap": None,
        "pcie_gen_current": integer(_get(tree, "PCI", "GPU Link Info", "PCIe Generation", "Current")),
        "pcie_gen_max": integer(_get(tree, "PCI", "GPU Link Info", "PCIe Generation", "Max")),
        "pcie_width_current": integer(_get(tree, "PCI", "GPU Link Info", "Link Width", "Current")),
        "pcie_width_max": integer(_get(tree, "PCI", "GPU Link Info", "Link Width", "Max")),
    }


def parse_q(text: str) -> dict[str, Any]:
    """``nvidia-smi -q``: versions, the attached count, GPU records and each GPU's MIG device count."""
    header: list[str] = []
    sections: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("GPU ") and not line.startswith("GPU UUID"):
            sections.append((line[4:].strip(), []))
        elif sections:
            sections[-1][1].append(line)
        else:
            header.append(line)
    head = _q_tree([line for line in header if ":" in line])
    versions = parse_versions("\n".join(header))
    gpus = []
    for index, (bus_id, lines) in enumerate(sections):
        tree = _q_tree(lines)
        record = gpu_from_q(tree, index, bus_id, versions["driver_version"])
        mig = tree.get("MIG Device")
        record["mig_device_count"] = len(mig) if isinstance(mig, list) else int(isinstance(mig, dict))
        gpus.append(record)
    return {
        "driver_version": versions["driver_version"],
        "cuda_version": versions["cuda_version"],
        "attached_gpus": integer(_get(head, "Attached GPUs")),
        "gpus": gpus,
    }
