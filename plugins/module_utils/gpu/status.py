# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Why nvidia-smi failed, what to do about it, and the kernel module's version. Pure functions.

Statuses: ``ok``, ``no_driver`` (the kernel module is not loaded or not talking), ``no_device``
(the driver runs but owns no GPU), ``version_mismatch`` (the userspace library and the loaded
kernel module come from different driver releases), ``no_nvidia_smi`` (the tool is not installed),
``error`` (anything else, with nvidia-smi's own words as the message).
"""

from __future__ import annotations

import re
from typing import Any

STATUSES = ("ok", "no_driver", "no_device", "version_mismatch", "no_nvidia_smi", "error")

# The texts nvidia-smi prints for each case, lower-cased; matched before the exit code, which
# nvidia-smi(1) documents (9: driver not loaded, 6: not found, 12: NVML library not found) but
# which wrappers and containers do not always pass through.
_NO_DRIVER = ("couldn't communicate with the nvidia driver", "couldn\u2018t communicate with the nvidia driver",
              "nvidia driver is not loaded", "driver not loaded")
_MISMATCH = ("driver/library version mismatch",)
_NO_DEVICE = ("no devices were found",)
_NO_LIBRARY = ("nvml shared library not found", "couldn't find libnvidia-ml.so", "libnvidia-ml.so")
_NVML_VERSION = re.compile(r"NVML library version:\s*([0-9][0-9.]*)")
_KERNEL_VERSION = re.compile(r"Kernel Module(?: for \S+)?\s+([0-9][0-9.]*[0-9])")
TIMEOUT_RC = 124  # coreutils timeout(1)

FIXES = {
    "no_driver": "load the NVIDIA kernel module (modprobe nvidia); if that fails, read dmesg: the module may "
                 "not be built for the running kernel (DKMS), may be unsigned under Secure Boot, or nouveau "
                 "may own the GPU (blacklist it and rebuild the initramfs)",
    "no_device": "the driver is loaded but owns no GPU: check that the GPUs are not bound to vfio-pci or "
                 "nouveau, and read dmesg for RmInitAdapter errors",
    "version_mismatch": "reboot to load the new kernel module (the driver packages were upgraded while the "
                        "old module stayed loaded), or unload the nvidia modules and load them again",
    "no_nvidia_smi": "install the NVIDIA driver utilities (nvidia-utils-<branch> on Ubuntu, nvidia-smi on "
                     "Debian) or set nvidia_smi_path",
    "timeout": "nvidia-smi did not answer in time: read dmesg for Xid errors or a GPU that has fallen off the bus",
}


def _has(text: str, needles: tuple[str, ...]) -> bool:
    lowered = text.lower()
    return any(needle in lowered for needle in needles)


def classify(rc: int, output: str) -> dict[str, Any]:
    """``{status, message, fix, library_version}`` for one nvidia-smi run (``output`` = stdout + stderr)."""
    message = " ".join(line.strip() for line in output.strip().splitlines() if line.strip()) or None
    library = _NVML_VERSION.search(output)
    result: dict[str, Any] = {"status": "ok", "message": None, "fix": None,
                              "library_version": library.group(1) if library else None}
    if _has(output, _MISMATCH):
        status = "version_mismatch"
    elif _has(output, _NO_DRIVER) or rc == 9:
        status = "no_driver"
    elif _has(output, _NO_DEVICE) or (rc == 6 and not output.strip()):
        status = "no_device"
    elif rc == 0:
        return result
    elif rc == TIMEOUT_RC:
        return dict(result, status="error", message=f"nvidia-smi timed out (rc={rc})", fix=FIXES["timeout"])
    elif _has(output, _NO_LIBRARY) or rc == 12:
        return dict(result, status="error", message=message or f"NVML library not found (rc={rc})",
                    fix="reinstall the NVIDIA driver's userspace libraries (libnvidia-ml.so.1 is missing)")
    else:
        return dict(result, status="error", message=message or f"nvidia-smi failed (rc={rc})", fix=None)
    return dict(result, status=status, message=message, fix=FIXES[status])


def not_installed(path: str | None = None) -> dict[str, Any]:
    """The classification when there is no nvidia-smi to run."""
    where = f"{path} does not exist or is not executable" if path else "nvidia-smi is not in PATH"
    return {"status": "no_nvidia_smi", "message": where, "fix": FIXES["no_nvidia_smi"], "library_version": None}


def parse_kernel_version(text: str | None) -> dict[str, Any] | None:
    """``/proc/driver/nvidia/version`` -> ``{version, open, text}``; None when absent (module not loaded).

    The proprietary module says ``Kernel Module  580.173.02``; the open one says
    ``Open Kernel Module for x86_64  565.57.01``.
    """
    if not text or not text.strip():
        return None
    first = text.strip().splitlines()[0].strip()
    match = _KERNEL_VERSION.search(first)
    return {
        "version": match.group(1) if match else None,
        "open": "Open Kernel Module" in first,
        "text": first,
    }


def versions_match(kernel: str | None, userspace: str | None) -> bool | None:
    """Compare on the parts both have: NVML reports ``580.178`` for ``580.178.04``. None when one is unknown."""
    if not kernel or not userspace:
        return None
    left, right = kernel.split("."), userspace.split(".")
    common = min(len(left), len(right))
    return [int(x) for x in left[:common]] == [int(x) for x in right[:common]]
