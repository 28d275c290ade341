#!/usr/bin/python
# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: initramfs
short_description: Rebuild the initramfs once, only for the kernels whose initrd lacks a changed input
version_added: 0.1.0
description:
  - Compares the modification time of each file in O(inputs) (files that initramfs-tools copies into the image,
    such as C(/etc/initramfs-tools/modules), modprobe drop-ins, C(/etc/mdadm/mdadm.conf) or C(.link) files)
    with the initrd of each installed kernel (C(/boot/initrd.img-<release>)), and runs
    C(update-initramfs -u -k <release>) for every kernel whose initrd is older than one of them.
  - The decision comes from the host, not from the run. An input written by an earlier run that failed before
    its rebuild is still newer than the initrd, so the next run rebuilds it.
  - O(pending=true) says that a caller changed an input in this run. In check mode nothing was written, so the
    times cannot tell; a removed input has no time at all. With O(pending) every selected kernel is rebuilt.
  - The collection's roles do not call C(update-initramfs) themselves. They name their inputs to the
    C(initramfs) role, which calls this module once at the end of a host profile's run and before any reboot
    the run drives. See C(docs/initramfs.md) in the collection.
author:
  - onprem.gpu_server maintainers (@onprem)
options:
  inputs:
    description: Absolute paths of files that go into the initramfs. A path that does not exist is ignored.
    type: list
    elements: path
    default: []
  pending:
    description: A caller changed one of the inputs in this run (or removed one).
    type: bool
    default: false
  kernels:
    description: V(all) for every kernel with an initrd in C(/boot), V(running) for the running kernel only.
    type: str
    choices: [all, running]
    default: all
attributes:
  check_mode:
    support: full
    description: Reports the kernels it would rebuild and why; runs nothing.
  diff_mode:
    support: none
    description: An initrd is a binary image; RV(reasons) says what changed.
  platform:
    support: full
    platforms: posix
    description: Debian, Ubuntu and Proxmox VE hosts with initramfs-tools.
notes:
  - A host without initrds in C(/boot) (a container, a host booting without an initramfs) is reported with
    RV(installed) empty and nothing is run.
"""

EXAMPLES = r"""
- name: Rebuild the initramfs if mdadm.conf or the vfio drop-in is newer than an initrd
  onprem.gpu_server.initramfs:
    inputs:
      - /etc/mdadm/mdadm.conf
      - /etc/modprobe.d/vfio-pci-onprem.conf

- name: Rebuild the running kernel's initramfs after a drop-in was removed in this run
  onprem.gpu_server.initramfs:
    inputs: [/etc/modprobe.d/onprem-gpu-host-blacklist.conf]
    pending: true
    kernels: running
"""

RETURN = r"""
rebuilt:
  description: Kernel releases whose initrd was rebuilt (in check mode, would be rebuilt).
  returned: always
  type: list
  elements: str
  sample: ["6.1.0-57-amd64"]
reasons:
  description: Per rebuilt kernel release, why.
  returned: always
  type: dict
  sample: {"6.1.0-57-amd64": ["/etc/mdadm/mdadm.conf is newer than /boot/initrd.img-6.1.0-57-amd64"]}
installed:
  description: Kernel releases that have an initrd in C(/boot).
  returned: always
  type: list
  elements: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.onprem.gpu_server.plugins.module_utils.host import initramfs
from ansible_collections.onprem.gpu_server.plugins.module_utils.tool_runner import CommandFailed

# The host's files are read below ROOT; tests point it at a tree.
ROOT = "/"
ARGUMENT_SPEC = dict(
    inputs=dict(type="list", elements="path", default=[]),
    pending=dict(type="bool", default=False),
    kernels=dict(type="str", choices=["all", "running"], default="all"),
)


def run_module():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    relative = [path for path in params["inputs"] if not os.path.isabs(path)]
    if relative:
        module.fail_json(msg=f"inputs must be absolute paths; got {', '.join(relative)}")

    input_mtimes, initrd_mtimes = initramfs.read_host(ROOT, params["inputs"])
    plan = initramfs.plan_rebuild(input_mtimes, initrd_mtimes, params["pending"], initramfs.running_release(ROOT),
                                  params["kernels"])
    if plan.kernels and not module.check_mode:
        commands = initramfs.InitramfsCommands(module)
        done = []
        for release in plan.kernels:
            try:
                commands.update(release)
            except CommandFailed as exc:
                module.fail_json(msg=str(exc), changed=bool(done), rebuilt=done, reasons=plan.reasons)
            done.append(release)
    module.exit_json(changed=bool(plan.kernels), rebuilt=plan.kernels, reasons=plan.reasons,
                     installed=plan.installed)


def main():
    run_module()


if __name__ == "__main__":
    main()
