# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Assemble the ``gpu`` facts from nvidia-smi runs, ``/proc/driver/nvidia/version`` and sysfs.

``gather`` takes the command as a callable (``args -> (rc, stdout, stderr)``, or None when there is
no nvidia-smi) and the filesystem root, so tests drive it with recorded outputs and fixture trees.
A broken driver is a fact, never an exception: every failure ends up in ``status``/``message``/``fix``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from ansible_collections.onprem.gpu_server.plugins.module_utils.gpu import nvsmi, status, topo
from ansible_collections.onprem.gpu_server.plugins.module_utils.pci import sysfs

PROC_VERSION = "proc/driver/nvidia/version"
NVIDIA_VENDOR = "10de"


def timeout_problem(timeout: object) -> str | None:
    """Why ``timeout`` (seconds per nvidia-smi run) cannot be used, or None.

    ``0`` keeps its documented meaning (no limit); a negative number has none and would reach
    coreutils' ``timeout``, which refuses it only after the module has started reading.
    """
    if isinstance(timeout, int) and not isinstance(timeout, bool) and timeout >= 0:
        return None
    return (f"timeout: {timeout!r} is negative: give the seconds each nvidia-smi run may take "
            "(0 disables the limit; a GPU that has fallen off the bus can make nvidia-smi hang)")


def read_kernel_version(root: str) -> dict[str, Any] | None:
    """The loaded kernel module's version line, or None when the module is not loaded."""
    try:
        with open(os.path.join(root, PROC_VERSION), encoding="utf-8", errors="replace") as handle:
            return status.parse_kernel_version(handle.read())
    except OSError:
        return None


def sysfs_gpus(root: str) -> list[dict[str, Any]]:
    """NVIDIA display-class devices from sysfs (vendor 0x10de, class 0x03xx) with the driver bound to each."""
    result = []
    for gpu in sysfs.gpus(sysfs.read_functions(root)):
        if not (gpu["id"] or "").startswith(NVIDIA_VENDOR + ":"):
            continue
        result.append({
            "bus_id": gpu["address"],
            "pci_id": gpu["id"],
            "pci_class": gpu["class"],
            "driver": gpu["driver"],
            "numa_node": gpu["numa_node"],
            "iommu_groups": gpu["iommu_groups"],
            "functions": [f["address"] for f in gpu["functions"]],
            "source": "sysfs",
        })
    return result


def _empty(kernel: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "status": "ok", "message": None, "fix": None,
        "driver_loaded": kernel is not None,
        "driver_version": None,
        "kernel_module_version": kernel["version"] if kernel else None,
        "kernel_module_open": kernel["open"] if kernel else None,
        "versions_match": None,
        "cuda_version": None,
        "gpus": [],
        "topology": None,
        "mig": {"enabled": False, "devices": []},
        "warnings": [],
    }


def _fallback(facts: dict[str, Any], verdict: dict[str, Any], root: str) -> dict[str, Any]:
    """nvidia-smi could not list the GPUs: report why, and what sysfs sees instead."""
    facts.update(status=verdict["status"], message=verdict["message"], fix=verdict["fix"])
    facts["driver_version"] = verdict.get("library_version")
    facts["versions_match"] = status.versions_match(facts["kernel_module_version"], facts["driver_version"])
    facts["gpus"] = sysfs_gpus(root)
    if verdict["status"] == "no_driver" and facts["gpus"] and all(g["driver"] == "vfio-pci" for g in facts["gpus"]):
        # A hypervisor that hands every GPU to its VMs has no use for the host driver.
        facts["fix"] = "none needed if intended: every NVIDIA GPU is bound to vfio-pci (passed through to VMs)"
    if not facts["gpus"] and kernel_absent(facts) and verdict["status"] in ("no_driver", "no_nvidia_smi"):
        # Nothing to fix on a machine without an NVIDIA GPU (the lab VM, a storage node).
        facts["fix"] = None
        facts["message"] = f"{facts['message']} (no NVIDIA GPU on the PCI bus)"
    return facts


def kernel_absent(facts: dict[str, Any]) -> bool:
    """True when ``/proc/driver/nvidia/version`` was not there."""
    return facts["kernel_module_version"] is None and not facts["driver_loaded"]


def _run(run: Callable[[list[str]], tuple[int, str, str]], args: list[str]) -> tuple[int, str]:
    rc, out, err = run(args)
    return rc, "\n".join(part for part in (out, err) if part)


def gather(run: Callable[[list[str]], tuple[int, str, str]] | None, root: str = "/", gather_topology: bool = True,
           nvidia_smi_path: str | None = None) -> dict[str, Any]:
    """The ``gpu`` facts. ``run`` is None when nvidia-smi is not installed."""
    kernel = read_kernel_version(root)
    facts = _empty(kernel)
    if run is None:
        return _fallback(facts, status.not_installed(nvidia_smi_path), root)

    rc, output = _run(run, nvsmi.query_argv())
    verdict = status.classify(rc, output)
    if verdict["status"] != "ok":
        if verdict["status"] != "error" or rc == status.TIMEOUT_RC:
            return _fallback(facts, verdict, root)
        # The driver answers but rejected the CSV query (an older driver lacking a field): try -q.
        q_rc, q_output = _run(run, ["-q"])
        if status.classify(q_rc, q_output)["status"] != "ok":
            return _fallback(facts, verdict, root)
        parsed = nvsmi.parse_q(q_output)
        gpus = parsed["gpus"]
        facts["warnings"].append(f"--query-gpu failed ({verdict['message']}); GPU details come from nvidia-smi -q")
        facts["cuda_version"] = parsed["cuda_version"]
    else:
        gpus = [nvsmi.gpu_from_query(row) for row in nvsmi.parse_query_gpu(output)]

    facts["driver_loaded"] = True
    functions = sysfs.read_functions(root)
    for gpu in gpus:
        gpu.pop("mig_device_count", None)
        pci = functions.get(gpu["bus_id"] or "", {})
        gpu.update(driver="nvidia", numa_node=pci.get("numa_node"), mig_devices=[], source="nvidia-smi")
    facts["gpus"] = gpus
    facts["driver_version"] = next((g["driver_version"] for g in gpus if g["driver_version"]), None)

    if facts["cuda_version"] is None:
        banner_rc, banner = _run(run, [])
        if banner_rc == 0:
            versions = nvsmi.parse_versions(banner)
            facts["cuda_version"] = versions["cuda_version"]
            facts["driver_version"] = facts["driver_version"] or versions["driver_version"]
        else:
            facts["warnings"].append(f"nvidia-smi (banner) failed with rc={banner_rc}: no CUDA version")
    facts["versions_match"] = status.versions_match(facts["kernel_module_version"], facts["driver_version"])

    _add_mig(facts, run)
    if gather_topology and gpus:
        topo_rc, matrix = _run(run, ["topo", "-m"])
        if topo_rc == 0:
            facts["topology"] = topo.parse_topo_matrix(matrix)
        else:
            facts["warnings"].append(f"nvidia-smi topo -m failed with rc={topo_rc}: no topology")
    return facts


def _add_mig(facts: dict[str, Any], run: Callable[[list[str]], tuple[int, str, str]]) -> None:
    """MIG devices per GPU from ``nvidia-smi -L`` (only asked when a GPU has MIG mode on)."""
    if not any(g["mig_mode"] for g in facts["gpus"]):
        return
    rc, listing = _run(run, ["-L"])
    if rc != 0:
        facts["warnings"].append(f"nvidia-smi -L failed with rc={rc}: no MIG devices")
        return
    by_uuid = {g["uuid"]: g for g in facts["gpus"] if g["uuid"]}
    by_index = {g["index"]: g for g in facts["gpus"]}
    devices = []
    for listed in nvsmi.parse_list(listing):
        # Masked or missing UUIDs are not unique; the index is.
        gpu = by_index.get(listed["index"]) or by_uuid.get(listed["uuid"])
        if gpu is None:
            continue
        gpu["mig_devices"] = listed["mig_devices"]
        devices += [dict(d, gpu=listed["index"]) for d in listed["mig_devices"]]
    facts["mig"] = {"enabled": True, "devices": devices}
