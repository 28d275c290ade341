#!/usr/bin/python
# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: kernel_cmdline
short_description: Add, replace or remove kernel command line parameters (GRUB or systemd-boot)
version_added: 0.1.0
description:
  - Keeps kernel parameters such as C(intel_iommu=on), C(iommu=pt) or C(vfio-pci.ids=...) in the
    boot configuration of a Debian or Proxmox VE host, and runs the boot loader's refresh command
    after a change.
  - "GRUB: the module owns one drop-in, C(/etc/default/grub.d/<name>.cfg), that appends its parameters
    to C(GRUB_CMDLINE_LINUX_DEFAULT); then C(update-grub) runs (C(proxmox-boot-tool refresh) on hosts whose
    ESPs proxmox-boot-tool manages). Other GRUB files are read, never written."
  - "systemd-boot through proxmox-boot-tool: C(/etc/kernel/cmdline) (one line) is edited in place, then
    C(proxmox-boot-tool refresh) runs."
  - The wanted parameters are compared with the running kernel's C(/proc/cmdline), so
    RV(reboot_required) is true only until the host has booted the configured command line.
  - Parameter names compare with C(-) and C(_) treated alike, as the kernel does.
  - The module never reboots. See C(docs/kernel-and-pci-modules.md) for the detection rules and every
    refusal message.
author:
  - onprem.gpu_server maintainers (@onprem)
options:
  params:
    description:
      - The parameters, as a mapping and/or a list.
      - "Mapping: O(params) C({intel_iommu: \"on\", iommu: pt, quiet: null}). A null value is a flag
        without a value. A list value writes the parameter once per item (C(console))."
      - "List: C([\"intel_iommu=on\", \"quiet\", {iommu: pt}])."
      - "YAML booleans are refused: unquoted C(on) is C(true) in YAML, so quote the value you mean."
      - With O(state=absent), a bare name removes every occurrence and C(name=value) only that value.
    type: raw
    required: true
  state:
    description:
      - V(present) adds the parameters, replacing the value of one already set by this module
        (systemd-boot, the value in C(/etc/kernel/cmdline)).
      - V(absent) removes them from the file the module edits. A parameter that another GRUB file
        still sets is reported with a warning.
    type: str
    choices: [present, absent]
    default: present
  bootloader:
    description:
      - Which boot loader's configuration to edit. V(auto) detects it (rules in the documentation).
    type: str
    choices: [auto, grub, systemd-boot]
    default: auto
  name:
    description:
      - Base name of the GRUB drop-in, C(/etc/default/grub.d/<name>.cfg). Drop-ins are sourced in name
        order and the last value of a parameter wins on the kernel command line, so keep it sorting late.
      - Not used for systemd-boot.
    type: str
    default: 99-onprem-gpu-server
attributes:
  check_mode:
    support: full
    description: Reads the files and C(/proc/cmdline), predicts the change and runs no refresh command.
  diff_mode:
    support: full
    description: Shows the edited file before and after.
  platform:
    support: full
    platforms: debian
    description: Debian and Proxmox VE (GRUB through C(update-grub), or C(proxmox-boot-tool)).
notes:
  - A GRUB file sourced after the drop-in that resets C(GRUB_CMDLINE_LINUX_DEFAULT) would drop the
    parameters; the module refuses instead of reporting a change that cannot take effect.
  - A file left written but not refreshed (the refresh command failed) shows up as C(changed=false) on
    the next run; run C(update-grub) or C(proxmox-boot-tool refresh) by hand after fixing the cause.
seealso:
  - name: Proxmox VE, editing the kernel command line
    description: Where GRUB and systemd-boot hosts keep the kernel command line.
    link: https://pve.proxmox.com/pve-docs/chapter-sysadmin.html#sysboot_edit_kernel_cmdline
"""

EXAMPLES = r"""
- name: Enable the IOMMU in pass-through mode
  onprem.gpu_server.kernel_cmdline:
    params:
      intel_iommu: "on"
      iommu: pt
  register: cmdline

- name: Claim the lab's spare test device and its HDA function for vfio-pci early
  onprem.gpu_server.kernel_cmdline:
    params:
      - vfio-pci.ids=1b36:0005,8086:2668
      - quiet

- name: Remove a parameter this module set earlier
  onprem.gpu_server.kernel_cmdline:
    params: [quiet]
    state: absent

- name: Proxmox with ZFS root on UEFI (systemd-boot, /etc/kernel/cmdline)
  onprem.gpu_server.kernel_cmdline:
    bootloader: systemd-boot
    params:
      amd_iommu: "on"
      iommu: pt

- name: Tell the play a reboot is due (the module never reboots)
  ansible.builtin.debug:
    msg: "reboot needed for {{ cmdline.reboot_params | join(', ') }}"
  when: cmdline.reboot_required
"""

RETURN = r"""
bootloader:
  description: The boot loader whose configuration was edited.
  returned: always
  type: str
  sample: grub
detection:
  description: Why that boot loader was chosen, and the facts looked at.
  returned: always
  type: list
  elements: str
  sample: ["rule 3: GRUB configuration found", "firmware: legacy BIOS (/sys/firmware/efi)"]
path:
  description: The file the module edits.
  returned: always
  type: str
  sample: /etc/default/grub.d/99-onprem-gpu-server.cfg
cmdline_configured:
  description: The kernel command line the boot configuration gives after this run (GRUB, the normal entries).
  returned: always
  type: str
  sample: quiet intel_iommu=on iommu=pt
cmdline_running:
  description: The running kernel's parameters from C(/proc/cmdline) (up to C(--)).
  returned: always
  type: str
  sample: BOOT_IMAGE=/boot/vmlinuz-6.1.0-28-amd64 root=LABEL=labroot ro quiet
reboot_required:
  description: True while a requested parameter's configured values differ from the running kernel's.
  returned: always
  type: bool
  sample: true
reboot_params:
  description: The parameters (names with C(_)) whose configured and running values differ.
  returned: always
  type: list
  elements: str
  sample: [intel_iommu, iommu]
refresh_command:
  description: The refresh command run (or, in check mode, that would run); empty when nothing changed.
  returned: always
  type: list
  elements: str
  sample: [update-grub]
"""

import glob
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.onprem.gpu_server.plugins.module_utils.bootloader.cmdline import (
    CmdlineError,
    normalize_params,
)
from ansible_collections.onprem.gpu_server.plugins.module_utils.bootloader.commands import (
    BootCommands,
    CommandFailed,
)
from ansible_collections.onprem.gpu_server.plugins.module_utils.bootloader.detect import (
    DetectionError,
    detect,
)
from ansible_collections.onprem.gpu_server.plugins.module_utils.bootloader.planner import (
    GRUB_DEFAULT_FILE,
    GRUB_DROPIN_DIR,
    KERNEL_CMDLINE_FILE,
    PlanError,
    plan,
)
from ansible_collections.onprem.gpu_server.plugins.module_utils.host import files as hostfiles

# Everything is read and written below ROOT; tests point it at a constructed tree.
ROOT = "/"


def _grub_dropins(root):
    found = {}
    for path in glob.glob(hostfiles.host_path(root, GRUB_DROPIN_DIR) + "/*.cfg"):
        rel = os.path.join(GRUB_DROPIN_DIR, os.path.basename(path))
        found[rel] = hostfiles.read_text(root, rel) or ""
    return found


ARGUMENT_SPEC = dict(
    params=dict(type="raw", required=True),
    state=dict(type="str", default="present", choices=["present", "absent"]),
    bootloader=dict(type="str", default="auto", choices=["auto", "grub", "systemd-boot"]),
    name=dict(type="str", default="99-onprem-gpu-server"),
)


def run_module():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    state = module.params["state"]
    name = module.params["name"]
    if not name or "/" in name or name.startswith("."):
        module.fail_json(msg=f"name: {name!r} must be a plain file name without '/'")
    commands = BootCommands(module)
    try:
        wanted = normalize_params(module.params["params"], state)
        bootctl = commands.bootctl_is_installed() if module.params["bootloader"] == "auto" else None
        loader = detect(ROOT, bootctl, module.params["bootloader"])
        result = plan(
            loader.name, wanted, state,
            running_text=hostfiles.read_text(ROOT, "/proc/cmdline") or "",
            name=name,
            grub_default=hostfiles.read_text(ROOT, GRUB_DEFAULT_FILE),
            grub_dropins=_grub_dropins(ROOT),
            kernel_cmdline=hostfiles.read_text(ROOT, KERNEL_CMDLINE_FILE),
        )
    except (CmdlineError, DetectionError, PlanError, CommandFailed) as exc:
        module.fail_json(msg=str(exc))

    for warning in result.warnings:
        module.warn(warning)
    refresh = loader.refresh if result.changed else []
    if result.changed and not module.check_mode:
        if result.after is None:
            hostfiles.remove(ROOT, result.path)
        else:
            hostfiles.write_text(module, ROOT, result.path, result.after)
        try:
            commands.refresh(loader.refresh)
        except CommandFailed as exc:
            module.fail_json(msg=f"{result.path} was written but the boot loader was not refreshed: {exc}",
                             changed=True, path=result.path)

    output = dict(
        changed=result.changed,
        bootloader=loader.name,
        detection=loader.reasons,
        path=result.path,
        cmdline_configured=" ".join(result.configured),
        cmdline_running=" ".join(result.running),
        reboot_required=result.reboot_required,
        reboot_params=result.reboot_keys,
        refresh_command=refresh,
    )
    if module._diff:
        output["diff"] = hostfiles.file_diff(result.path, result.before, result.after)
    module.exit_json(**output)


def main():
    run_module()


if __name__ == "__main__":
    main()
