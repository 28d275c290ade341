# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plan vfio-pci ownership of PCI devices: selection, IOMMU-group check, config files.

Pure: takes the functions and groups read by :mod:`.sysfs` and the current text of the
files, returns the new text and the refusals. Nothing here writes or runs anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.onprem.gpu_server.plugins.module_utils.host import initramfs

from .address import AddressError
from .sysfs import functions_of_slot, is_bridge, normalize_address

VFIO_DRIVER = "vfio-pci"
MARKER = "# Managed by onprem.gpu_server.vfio_pci"
INITRAMFS_MODULES_FILE = "/etc/initramfs-tools/modules"
INITRAMFS_MODULES = ("vfio", "vfio_iommu_type1", "vfio_pci")
BINDINGS = ("ids", "driver_override")

# Host drivers that would claim these functions before vfio-pci unless told to wait
# (``softdep <driver> pre: vfio-pci``), by class prefix and vendor (None = any vendor).
CLASS_DRIVERS: tuple[tuple[str, str | None, tuple[str, ...]], ...] = (
    ("03", "10de", ("nouveau", "nvidia")),
    ("03", "1002", ("amdgpu", "radeon")),
    ("0403", None, ("snd_hda_intel",)),
    ("0c03", None, ("xhci_hcd", "xhci_pci")),
    ("0c80", "10de", ("i2c_nvidia_gpu",)),
)


class VfioRefused(RuntimeError):
    """The request is unsafe or impossible; nothing was changed."""


@dataclass
class FileChange:
    """Current and planned text of one file (None = absent / to be removed)."""

    path: str
    before: str | None
    after: str | None

    @property
    def changed(self) -> bool:
        return self.before != self.after


@dataclass
class VfioPlan:
    """Everything the module does or reports."""

    functions: list[str]
    ids: list[str]
    softdeps: list[str]
    files: list[FileChange]
    to_bind: list[str]
    groups_verified: bool
    warnings: list[str] = field(default_factory=list)


def select_functions(functions: Mapping[str, Mapping[str, Any]], requested: Iterable[str]) -> list[str]:
    """Expand each requested address to every function of its device; refuse unknown ones."""
    selected: set[str] = set()
    for text in requested:
        try:
            slot, _function = normalize_address(text)
        except AddressError as exc:
            raise VfioRefused(f"devices: {exc}") from None
        members = functions_of_slot(functions, slot)
        if not members:
            raise VfioRefused(f"devices: no PCI device {text!r} on this host (looked for {slot}.* in sysfs)")
        selected.update(members)
    return sorted(selected)


def describe(function: Mapping[str, Any], selected: Iterable[str] = ()) -> str:
    """One line per function: address, class, vendor:device, driver (used in refusals)."""
    mark = " [requested]" if function["address"] in selected else (" [bridge]" if is_bridge(function) else "")
    return (f"{function['address']} class {function['class'] or '?'} {function['id'] or '?:?'} "
            f"driver {function['driver'] or '(none)'}{mark}")


def check_groups(functions: Mapping[str, Mapping[str, Any]], groups: Mapping[str, list[str]],
                 selected: list[str]) -> None:
    """Fail closed when an IOMMU group holds a function that is neither requested nor a bridge."""
    problems = []
    seen: set[str] = set()
    for address in selected:
        group = functions[address]["iommu_group"]
        if group is None:
            raise VfioRefused(f"{address} has no IOMMU group although the IOMMU is on; it cannot be passed through")
        key = str(group)
        if key in seen:
            continue
        seen.add(key)
        members = groups.get(key, [])
        intruders = [m for m in members if m not in selected and not (m in functions and is_bridge(functions[m]))]
        if intruders:
            lines = "\n".join("  " + describe(functions[m], selected) if m in functions else f"  {m} (not in sysfs)"
                              for m in members)
            problems.append(
                f"IOMMU group {key} also holds {', '.join(intruders)}, which would be taken from the host "
                f"with the requested device(s):\n{lines}"
            )
    if problems:
        raise VfioRefused(
            "refusing to claim devices whose IOMMU group is shared with other devices (nothing was changed). "
            "Pass the whole group, move the card to another slot, or check the BIOS ACS settings.\n"
            + "\n".join(problems)
        )


def check_id_collisions(functions: Mapping[str, Mapping[str, Any]], selected: list[str]) -> None:
    """ids= binding takes every device with the same vendor:device: refuse if that includes others."""
    wanted = {functions[a]["id"] for a in selected}
    others = [a for a, info in functions.items() if a not in selected and info["id"] in wanted]
    if others:
        lines = "\n".join("  " + describe(functions[a]) for a in others)
        raise VfioRefused(
            "binding=ids would also give these devices with the same vendor:device ID to vfio-pci "
            f"(nothing was changed); use binding=driver_override to bind by address:\n{lines}"
        )


def softdeps_for(functions: Mapping[str, Mapping[str, Any]], selected: list[str]) -> list[str]:
    """Host driver modules that must load after vfio-pci: the current ones plus known ones by class."""
    modules: set[str] = set()
    for address in selected:
        info = functions[address]
        pci_class, vendor = info["class"] or "", info["vendor"]
        for prefix, want_vendor, drivers in CLASS_DRIVERS:
            if pci_class.startswith(prefix) and want_vendor in (None, vendor):
                modules.update(drivers)
        current = info.get("driver_module") or info.get("driver")
        if current and current.replace("-", "_") != "vfio_pci":
            modules.add(current.replace("-", "_"))
    return sorted(modules)


def render_modprobe(functions: Mapping[str, Mapping[str, Any]], selected: list[str], binding: str,
                    softdeps: list[str]) -> str:
    """``/etc/modprobe.d/<name>.conf``."""
    lines = [f"{MARKER}; local edits are overwritten."]
    lines += [f"# {a} {functions[a]['id']}" for a in selected]
    if binding == "ids":
        ids = sorted({functions[a]["id"] for a in selected})
        lines.append(f"options vfio-pci ids={','.join(ids)}")
    else:
        lines.append("# bound by address: see the driver_override udev rule")
    lines += [f"softdep {module} pre: vfio-pci" for module in softdeps]
    return "\n".join(lines) + "\n"


def render_udev(selected: list[str]) -> str:
    """udev rule that sets ``driver_override`` on the requested functions when they appear."""
    lines = [f"{MARKER}; local edits are overwritten.",
             "# Runs before 80-drivers.rules loads drivers by modalias, so vfio-pci probes first."]
    lines += [f'ACTION=="add", SUBSYSTEM=="pci", KERNEL=="{a}", ATTR{{driver_override}}="vfio-pci"'
              for a in selected]
    return "\n".join(lines) + "\n"


def merge_initramfs_modules(text: str | None, modules: Iterable[str]) -> str:
    """Append the missing module names; existing lines (and their options) are kept as they are."""
    lines = text.splitlines() if text else []
    present = {line.split()[0].replace("-", "_") for line in lines
               if line.strip() and not line.lstrip().startswith("#")}
    missing = [m for m in modules if m.replace("-", "_") not in present]
    if not missing:
        return text or ""
    body = (text or "")
    if body and not body.endswith("\n"):
        body += "\n"
    return body + "".join(f"{m}\n" for m in missing)


def _owned(change: FileChange) -> None:
    if change.before is not None and not change.before.startswith(MARKER):
        raise VfioRefused(f"{change.path} exists but is not managed by this module (no '{MARKER}' header); "
                          "pick another name")


def plan(functions: Mapping[str, Mapping[str, Any]], groups: Mapping[str, list[str]], requested: Iterable[str],
         binding: str, modprobe: FileChange, udev: FileChange, initramfs: FileChange | None,
         extra_initramfs_modules: Iterable[str] = (), allow_unverified_groups: bool = False,
         initramfs_wanted: bool = True) -> VfioPlan:
    """Check the request and compute the three files. ``*.after`` of the inputs is ignored.

    ``initramfs`` is None when ``/etc/initramfs-tools`` does not exist (warned about when
    ``initramfs_wanted``).
    """
    if binding not in BINDINGS:
        raise VfioRefused(f"binding: expected one of {', '.join(BINDINGS)}, got {binding!r}")
    selected = select_functions(functions, requested)
    warnings = []
    verified = bool(groups)
    if groups:
        check_groups(functions, groups, selected)
    elif allow_unverified_groups:
        warnings.append("the IOMMU is off (no /sys/kernel/iommu_groups): group viability was NOT checked; "
                        "run again after the reboot that enables the IOMMU")
    else:
        raise VfioRefused(
            "the IOMMU is off or not supported (/sys/kernel/iommu_groups is empty), so IOMMU-group viability "
            "cannot be checked; enable it on the kernel command line (intel_iommu=on or amd_iommu=on) and "
            "reboot, or set allow_unverified_groups=true to write the configuration first"
        )
    if binding == "ids":
        check_id_collisions(functions, selected)
    softdeps = softdeps_for(functions, selected)
    files = [
        FileChange(modprobe.path, modprobe.before, render_modprobe(functions, selected, binding, softdeps)),
        FileChange(udev.path, udev.before, render_udev(selected) if binding == "driver_override" else None),
    ]
    for change in files:
        _owned(change)
    if initramfs is None:
        if initramfs_wanted:
            warnings.append("/etc/initramfs-tools not found: initramfs modules not configured (not an "
                            "initramfs-tools host)")
    else:
        modules = [*INITRAMFS_MODULES, *extra_initramfs_modules]
        files.append(FileChange(initramfs.path, initramfs.before, merge_initramfs_modules(initramfs.before, modules)))
    to_bind = [a for a in selected if functions[a]["driver"] != VFIO_DRIVER]
    ids = sorted({functions[a]["id"] for a in selected})
    return VfioPlan(selected, ids, softdeps, files, to_bind, verified, warnings)


def initramfs_update_required(files: list[FileChange], mtimes: Mapping[str, float], initrd_mtime: float | None) -> bool:
    """True when a file that goes into the initramfs changes now or changed after the initrd was built.

    The mtime rule is the initramfs module's (``host/initramfs.plan_rebuild``), for the running kernel.
    """
    if any(change.changed for change in files):
        return True
    if initrd_mtime is None:
        return False
    inputs = {change.path: mtimes.get(change.path) for change in files if change.after is not None}
    return bool(initramfs.plan_rebuild(inputs, {"running": initrd_mtime}, False, "running", "running").kernels)


def bind_steps(functions: Mapping[str, Mapping[str, Any]], to_bind: list[str]) -> list[tuple[str, str]]:
    """sysfs writes that hand functions to vfio-pci now: (path below /sys, value), in order."""
    steps = []
    for address in to_bind:
        steps.append((f"/sys/bus/pci/devices/{address}/driver_override", VFIO_DRIVER))
        if functions[address]["driver"]:
            steps.append((f"/sys/bus/pci/devices/{address}/driver/unbind", address))
        steps.append(("/sys/bus/pci/drivers_probe", address))
    return steps
