#!/usr/bin/python
# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: vfio_pci
short_description: Hand PCI devices (GPUs and their sibling functions) to vfio-pci, persistently
version_added: 0.1.0
description:
  - Each requested PCI address is expanded to every function of its device (a GPU's HDMI audio, USB-C and
    UCSI functions go with it).
  - "IOMMU-group check: when a requested function's IOMMU group also holds a device that is not requested
    (PCI bridges, class C(0x0604), excepted), the module fails before changing anything and prints the
    whole group: address, class, vendor:device and driver of every member."
  - "Writes C(/etc/modprobe.d/<name>.conf): C(options vfio-pci ids=...) (with O(binding=ids)) and
    C(softdep <driver> pre: vfio-pci) lines for the host drivers that would otherwise claim the functions
    (the currently bound driver, plus C(nvidia)/C(nouveau), C(amdgpu)/C(radeon), C(snd_hda_intel),
    C(xhci_hcd)/C(xhci_pci), C(i2c_nvidia_gpu) by function class)."
  - With O(binding=driver_override), a udev rule C(/etc/udev/rules.d/60-<name>.rules) sets
    C(driver_override=vfio-pci) on exactly the requested addresses instead.
  - Adds C(vfio), C(vfio_iommu_type1), C(vfio_pci) (and C(vfio_virqfd) on kernels that still have it) to
    C(/etc/initramfs-tools/modules), keeping every existing line.
  - Reports RV(initramfs_update_required) and RV(reboot_required) and never reboots.
author:
  - onprem.gpu_server maintainers (@onprem)
options:
  devices:
    description:
      - PCI addresses, C([DDDD:]BB:SS[.F]) in hex (C(0000:0b:00.0), C(0b:00.0) or C(0b:00)). Every function
        of each device is claimed, whatever function is named.
    type: list
    elements: str
    required: true
  binding:
    description:
      - V(ids) binds by vendor:device ID (C(options vfio-pci ids=)). It is the simplest and works from the
        initramfs, but it takes every device with the same ID; the module refuses when that would include a
        device that is not requested (two identical GPUs, one kept for the host).
      - V(driver_override) binds by address through a udev rule; use it when identical devices must stay on
        the host. A driver that is built into the kernel or loaded before udev runs can still win; the
        C(softdep) lines cover drivers built as modules.
    type: str
    choices: [ids, driver_override]
    default: ids
  name:
    description:
      - Base name of the owned files, C(/etc/modprobe.d/<name>.conf) and C(/etc/udev/rules.d/60-<name>.rules).
    type: str
    default: vfio-pci-onprem
  initramfs_modules:
    description:
      - Merge the vfio modules into C(/etc/initramfs-tools/modules) so vfio-pci loads before the GPU drivers.
    type: bool
    default: true
  update_initramfs:
    description:
      - Run C(update-initramfs -u -k <running kernel>) when RV(initramfs_update_required) would be true.
        Off by default so a role can run it once after several modules.
    type: bool
    default: false
  bind_now:
    description:
      - Also hand the functions to vfio-pci on the running system (C(driver_override), unbind from the
        current driver, C(drivers_probe)). Unbinding a GPU the host is using stops its display.
    type: bool
    default: false
  allow_unverified_groups:
    description:
      - When the IOMMU is still off (no IOMMU groups yet), write the configuration anyway instead of failing,
        so the reboot that enables the IOMMU also applies vfio-pci. The group check then runs on the next
        run, after that reboot.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Runs the IOMMU-group check and computes the files; writes nothing, binds nothing, runs no command.
  diff_mode:
    support: full
    description: Shows each changed file before and after.
  platform:
    support: full
    platforms: debian
    description: Debian, Ubuntu and Proxmox VE hosts with sysfs and initramfs-tools.
notes:
  - The module never reboots. RV(reboot_required) stays true while any requested function is bound to another
    driver, so it turns false once the host has booted with the configuration (or after O(bind_now=true)).
  - "Lab example: the lab VM has a pci-testdev at C(00:10.0) and an Intel HDA at C(00:10.1), one IOMMU group;
    the ICH9 functions C(00:1f.*) share another group. Because every function of a device is claimed, naming
    C(00:1f.3) (SMBus) also claims C(00:1f.2) (AHCI); check RV(functions) in check mode first."
seealso:
  - module: onprem.gpu_server.pci_facts
  - module: onprem.gpu_server.kernel_cmdline
"""

EXAMPLES = r"""
- name: Give the lab VM's spare device (both functions) to vfio-pci
  onprem.gpu_server.vfio_pci:
    devices:
      - "00:10.0"
  register: vfio

- name: Two of four identical GPUs for VMs, the others stay on the host
  onprem.gpu_server.vfio_pci:
    devices: ["0000:3b:00.0", "0000:5e:00.0"]
    binding: driver_override
    update_initramfs: true

- name: First run on a fresh host, together with the IOMMU kernel parameters (one reboot for both)
  onprem.gpu_server.vfio_pci:
    devices: ["0b:00.0"]
    allow_unverified_groups: true

- name: Rebind now instead of waiting for a reboot
  onprem.gpu_server.vfio_pci:
    devices: ["00:10.0"]
    bind_now: true
"""

RETURN = r"""
functions:
  description: Every function claimed, after expanding the requested addresses.
  returned: always
  type: list
  elements: dict
  sample: [{"address": "0000:00:10.0", "id": "1b36:0005", "class": "00ff00", "driver": null, "iommu_group": 10}]
ids:
  description: The vendor:device IDs of those functions.
  returned: always
  type: list
  elements: str
  sample: ["1b36:0005", "8086:2668"]
softdeps:
  description: Driver modules told to load after vfio-pci.
  returned: always
  type: list
  elements: str
  sample: [snd_hda_intel]
files:
  description: The files the module manages and whether each changed.
  returned: always
  type: list
  elements: dict
  sample: [{"path": "/etc/modprobe.d/vfio-pci-onprem.conf", "changed": true, "present": true}]
iommu_groups_verified:
  description: False when the IOMMU was off and O(allow_unverified_groups=true) skipped the group check.
  returned: always
  type: bool
bound_now:
  description: Functions handed to vfio-pci on the running system by O(bind_now=true) (in check mode, that would be).
  returned: always
  type: list
  elements: str
initramfs_update_required:
  description: A file that goes into the initramfs changed now, or after the running kernel's initrd was built.
  returned: always
  type: bool
reboot_required:
  description: True while any requested function's driver is not vfio-pci.
  returned: always
  type: bool
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.onprem.gpu_server.plugins.module_utils.host import files as hostfiles
from ansible_collections.onprem.gpu_server.plugins.module_utils.pci import sysfs, vfio
from ansible_collections.onprem.gpu_server.plugins.module_utils.pci.commands import CommandFailed, PciCommands

# Everything is read and written below ROOT; tests point it at a constructed tree.
ROOT = "/"


def _mtime(path):
    try:
        return os.stat(hostfiles.host_path(ROOT, path)).st_mtime
    except OSError:
        return None


def _extra_modules(release):
    # vfio_virqfd was merged into vfio in Linux 6.2; list it only where the kernel still ships it.
    deps = hostfiles.read_text(ROOT, f"/lib/modules/{release}/modules.dep") or ""
    return ["vfio_virqfd"] if "/vfio_virqfd.ko" in deps else []


def _bind(module, functions, to_bind):
    PciCommands(module).load_vfio_pci()
    for path, value in vfio.bind_steps(functions, to_bind):
        with open(hostfiles.host_path(ROOT, path), "w", encoding="ascii") as handle:
            handle.write(value)
    fresh = sysfs.read_functions(ROOT)
    stuck = [a for a in to_bind if fresh.get(a, {}).get("driver") != vfio.VFIO_DRIVER]
    if stuck:
        module.fail_json(msg="bind_now: still not bound to vfio-pci: "
                         + "; ".join(vfio.describe(fresh[a]) for a in stuck if a in fresh), changed=True)
    return fresh


ARGUMENT_SPEC = dict(
    devices=dict(type="list", elements="str", required=True),
    binding=dict(type="str", default="ids", choices=["ids", "driver_override"]),
    name=dict(type="str", default="vfio-pci-onprem"),
    initramfs_modules=dict(type="bool", default=True),
    update_initramfs=dict(type="bool", default=False),
    bind_now=dict(type="bool", default=False),
    allow_unverified_groups=dict(type="bool", default=False),
)


def run_module():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    name = params["name"]
    if not name or "/" in name or name.startswith("."):
        module.fail_json(msg=f"name: {name!r} must be a plain file name without '/'")
    if not params["devices"]:
        module.fail_json(msg="devices: at least one PCI address is required")

    functions = sysfs.read_functions(ROOT)
    groups = sysfs.read_iommu_groups(ROOT)
    release = (hostfiles.read_text(ROOT, "/proc/sys/kernel/osrelease") or "").strip()
    modprobe_path = f"/etc/modprobe.d/{name}.conf"
    udev_path = f"/etc/udev/rules.d/60-{name}.rules"
    initramfs = None
    if params["initramfs_modules"] and os.path.isdir(hostfiles.host_path(ROOT, "/etc/initramfs-tools")):
        initramfs = vfio.FileChange(vfio.INITRAMFS_MODULES_FILE,
                                    hostfiles.read_text(ROOT, vfio.INITRAMFS_MODULES_FILE), None)
    try:
        result = vfio.plan(
            functions, groups, params["devices"], params["binding"],
            modprobe=vfio.FileChange(modprobe_path, hostfiles.read_text(ROOT, modprobe_path), None),
            udev=vfio.FileChange(udev_path, hostfiles.read_text(ROOT, udev_path), None),
            initramfs=initramfs,
            extra_initramfs_modules=_extra_modules(release) if release else [],
            allow_unverified_groups=params["allow_unverified_groups"],
            initramfs_wanted=params["initramfs_modules"],
        )
    except vfio.VfioRefused as exc:
        module.fail_json(msg=str(exc))
    for warning in result.warnings:
        module.warn(warning)

    initrd = _mtime(f"/boot/initrd.img-{release}") if release else None
    mtimes = {change.path: _mtime(change.path) or 0 for change in result.files}
    initramfs_required = vfio.initramfs_update_required(result.files, mtimes, initrd)
    changed = any(change.changed for change in result.files)
    bound = result.to_bind if params["bind_now"] else []
    changed = changed or bool(bound) or (initramfs_required and params["update_initramfs"])

    if not module.check_mode:
        try:
            for change in result.files:
                if not change.changed:
                    continue
                if change.after is None:
                    hostfiles.remove(ROOT, change.path)
                else:
                    hostfiles.write_text(module, ROOT, change.path, change.after)
            if initramfs_required and params["update_initramfs"]:
                PciCommands(module).update_initramfs(release)
            if bound:
                functions = _bind(module, functions, bound)
        except CommandFailed as exc:
            module.fail_json(msg=str(exc), changed=True)
    if params["update_initramfs"]:
        initramfs_required = False

    drivers = {a: functions[a]["driver"] for a in result.functions}
    if params["bind_now"]:
        drivers.update({a: vfio.VFIO_DRIVER for a in bound})
    output = dict(
        changed=changed,
        functions=[
            {"address": a, "id": functions[a]["id"], "class": functions[a]["class"],
             "driver": drivers[a], "iommu_group": functions[a]["iommu_group"]}
            for a in result.functions
        ],
        ids=result.ids,
        softdeps=result.softdeps,
        files=[{"path": c.path, "changed": c.changed, "present": c.after is not None} for c in result.files],
        iommu_groups_verified=result.groups_verified,
        bound_now=bound,
        initramfs_update_required=initramfs_required,
        reboot_required=any(driver != vfio.VFIO_DRIVER for driver in drivers.values()),
    )
    if module._diff:
        output["diff"] = [hostfiles.file_diff(c.path, c.before, c.after) for c in result.files if c.changed]
    module.exit_json(**output)


def main():
    run_module()


if __name__ == "__main__":
    main()
