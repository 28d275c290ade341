#!/usr/bin/python
# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pci_facts
short_description: PCI functions, GPUs with their sibling functions and IOMMU groups, from sysfs
version_added: 0.1.0
description:
  - Reads C(/sys/bus/pci/devices/*) and C(/sys/kernel/iommu_groups) and returns every PCI function with its
    class, vendor and device IDs, subsystem IDs, bound driver, NUMA node, IOMMU group and PCIe link speed
    and width.
  - GPUs (any function of class C(0x03xx)) are listed per device with all sibling functions of the same
    bus:device, such as the HDMI audio (C(0x0403)), USB-C (C(0x0c03)) and UCSI (C(0x0c80)) functions
    that must go to a VM together with the GPU.
  - A NUMA node the platform does not report (the kernel's C(-1)) is returned as null, and so are link
    attributes a virtual machine does not have.
  - Runs no command and changes nothing.
author:
  - onprem.gpu_server maintainers (@onprem)
options: {}
extends_documentation_fragment:
  - onprem.gpu_server.attributes.read_only
attributes:
  facts:
    support: full
    description: Returns C(ansible_facts.pci).
  platform:
    support: full
    platforms: posix
    description: Linux (sysfs).
notes:
  - Works on any Linux host with sysfs; no C(pciutils) needed.
"""

EXAMPLES = r"""
- name: Read the PCI layout
  onprem.gpu_server.pci_facts:

- name: Show each GPU with its functions and IOMMU groups
  ansible.builtin.debug:
    msg: >-
      {{ item.address }} {{ item.id }} groups {{ item.iommu_groups }}:
      {{ item.functions | map(attribute='address') | list }}
  loop: "{{ ansible_facts.pci.gpus }}"

- name: Fail when the IOMMU is off
  ansible.builtin.assert:
    that: ansible_facts.pci.iommu_enabled
    fail_msg: enable intel_iommu=on / amd_iommu=on first
"""

RETURN = r"""
ansible_facts:
  description: Facts added under C(pci).
  returned: always
  type: complex
  contains:
    pci:
      description: The PCI layout.
      returned: always
      type: complex
      contains:
        devices:
          description:
            - Every function keyed by address (C(0000:0b:00.0)). Fields C(address), C(slot) (C(0000:0b:00)),
              C(function), C(class) (6 hex digits), C(vendor), C(device), C(id) (C(vendor:device)),
              C(subsystem_vendor), C(subsystem_device), C(revision), C(driver), C(driver_module),
              C(driver_override), C(numa_node), C(iommu_group), C(current_link_speed),
              C(current_link_width), C(max_link_speed), C(max_link_width); null when sysfs has no value.
          returned: always
          type: dict
          sample:
            "0000:0b:00.0":
              address: "0000:0b:00.0"
              slot: "0000:0b:00"
              function: 0
              class: "030000"
              vendor: 10de
              device: 1b06
              id: "10de:1b06"
              driver: nvidia
              numa_node: null
              iommu_group: 30
              current_link_speed: 8.0 GT/s PCIe
              current_link_width: 16
        gpus:
          description:
            - One entry per device with a display function, with C(address), C(slot), C(id), C(class),
              C(driver), C(numa_node), C(iommu_groups), the link fields and C(functions) (each with
              C(address), C(class), C(id), C(driver), C(iommu_group)).
          returned: always
          type: list
          elements: dict
        iommu_groups:
          description: IOMMU group number (as a string) to the addresses in it.
          returned: always
          type: dict
          sample: {"30": ["0000:0b:00.0", "0000:0b:00.1"]}
        iommu_enabled:
          description: True when the kernel has created IOMMU groups.
          returned: always
          type: bool
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.onprem.gpu_server.plugins.module_utils.pci.sysfs import collect

# sysfs is read below ROOT; tests point it at a fixture tree.
ROOT = "/"
ARGUMENT_SPEC: dict = {}


def run_module():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    module.exit_json(changed=False, ansible_facts={"pci": collect(ROOT)})


def main():
    run_module()


if __name__ == "__main__":
    main()
