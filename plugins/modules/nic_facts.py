#!/usr/bin/python
# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: nic_facts
short_description: Network interfaces from sysfs, with MACs, driver, PCI address, NUMA node and bridge or bond
version_added: 0.1.0
description:
  - Reads C(/sys/class/net/*) once and returns every interface with its MAC address, the permanent MAC
    where sysfs tells it, how the kernel got the name and the address, whether it sits on a bus device
    (a physical NIC), its driver, PCI address and NUMA node, link speed, operational state, MTU, link
    type, kind (bridge, bond, VLAN, loopback, tap), the bridge or bond it is enslaved to, the interfaces
    below it and its VLAN ID.
  - A value the kernel does not export, or refuses to read (the speed of a down link, how most virtual
    interfaces were named), is returned as null. A NUMA node the platform does not report (the
    kernel's C(-1)) is null.
  - Runs no command and changes nothing.
author:
  - onprem.gpu_server maintainers (@onprem)
options:
  physical_only:
    description:
      - Return only interfaces on a bus device, those with a C(/sys/class/net/IF/device) link. These are the
        NIC ports, virtio-net and USB NICs included; bridges, bonds, VLANs, veth, tap and loopback are left out.
    type: bool
    default: false
  names:
    description:
      - Return only interfaces whose name matches one of these shell-style patterns (C(eno*), C(vmbr0)).
        Empty returns every interface.
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - onprem.gpu_server.attributes.read_only
attributes:
  facts:
    support: full
    description: Returns C(ansible_facts.nics).
  platform:
    support: full
    platforms: posix
    description: Linux (sysfs).
notes:
  - The permanent (burnt-in) MAC is not a sysfs file. It is reported where the kernel shows it anyway,
    as the current address when C(addr_assign_type) is 0 (nothing has changed it since the driver read it
    from the NIC), and as C(bonding_slave/perm_hwaddr) for a bond port. Otherwise C(permanent_mac) is null
    although the NIC has one; C(ethtool -P) reads it.
  - C(speed_mbps) is the kernel's number as it is; C(-1) means the driver does not know the speed
    (virtio-net reports it), null means the link is down or the driver has no link settings.
  - The VLAN ID comes from C(/proc/net/vlan/config), which exists once the C(8021q) module is loaded.
seealso:
  - module: onprem.gpu_server.pci_facts
  - module: onprem.gpu_server.nic_tuning
"""

EXAMPLES = r"""
- name: Read every network interface
  onprem.gpu_server.nic_facts:

- name: Name the NIC that has the management MAC (its own or, for a bond port, its permanent one)
  ansible.builtin.debug:
    msg: >-
      {{ ansible_facts.nics.values() | selectattr('physical')
         | selectattr('permanent_mac', 'equalto', '52:54:00:4c:ab:01')
         | map(attribute='name') | first | default('not found') }}

- name: Read only the NIC ports whose name starts with eno or eth
  onprem.gpu_server.nic_facts:
    physical_only: true
    names: ["eno*", "eth*"]

- name: List each NIC port with its PCI address, NUMA node and speed
  ansible.builtin.debug:
    msg: >-
      {{ item.name }} at {{ item.pci_address }},
      NUMA node {{ 'unknown' if item.numa_node is none else item.numa_node }},
      {{ 'link down' if item.speed_mbps is none else item.speed_mbps ~ ' Mb/s' }}
  loop: "{{ ansible_facts.nics.values() | list }}"
  loop_control:
    label: "{{ item.name }}"

- name: Refuse NIC ports named by the kernel's probe order (ethN with net.ifnames=0)
  ansible.builtin.assert:
    that: ansible_facts.nics.values() | selectattr('name_assign_type', 'equalto', 1) | list | length == 0
    fail_msg: give these NICs stable names first
"""

RETURN = r"""
ansible_facts:
  description: Facts added under C(nics).
  returned: always
  type: complex
  contains:
    nics:
      description:
        - Every interface (or those the options select) keyed by name, in name order. Each entry has the
          keys below; a value sysfs does not give is null.
        - C(name); C(mac), the current address in lower case (null when the interface has none);
          C(permanent_mac) (see the notes); C(addr_assign_type), how the kernel got the address
          (0 permanent, 1 random, 2 taken from another device, 3 set by a user or a bond);
          C(name_assign_type), how the name was given (1 by probe order, as C(ethN) with
          C(net.ifnames=0), a name that can move to another NIC at the next boot; 2 predictable by the
          kernel; 3 by user space at creation; 4 renamed, as udev does; null unknown).
        - C(physical), true when the interface sits on a bus device; C(driver), that device's driver
          (C(virtio_net), C(e1000e), C(ixgbe)...); C(pci_address), the PCI function the device is or hangs
          off (C(0000:19:00.0)); C(numa_node), that function's NUMA node.
        - C(speed_mbps) (see the notes); C(operstate) (C(up), C(down), C(unknown), C(lowerlayerdown)...);
          C(mtu); C(link_type), the ARPHRD number (1 Ethernet, 32 InfiniBand, 772 loopback).
        - C(kind), C(bridge), C(bond), C(vlan), C(loopback), C(tap), C(tun) or the device type the driver
          gives (C(wlan), C(vxlan), C(wireguard)...); null for plain Ethernet NICs and virtual interfaces
          sysfs gives no type (veth, dummy, ifb). C(master), the bridge or bond the interface is enslaved
          to; C(lowers), the interfaces below it (a bridge's or bond's ports, a VLAN's parent); C(vlan_id)
          for a VLAN.
      returned: always
      type: dict
      sample:
        eno1:
          name: eno1
          mac: a0:36:9f:11:22:30
          permanent_mac: a0:36:9f:11:22:30
          addr_assign_type: 3
          name_assign_type: 4
          physical: true
          driver: ixgbe
          pci_address: "0000:19:00.0"
          numa_node: 0
          speed_mbps: 10000
          operstate: up
          mtu: 1500
          link_type: 1
          kind: null
          master: bond0
          lowers: []
          vlan_id: null
        vmbr0.20:
          name: vmbr0.20
          mac: a0:36:9f:11:22:30
          permanent_mac: null
          addr_assign_type: 2
          name_assign_type: 3
          physical: false
          driver: null
          pci_address: null
          numa_node: null
          speed_mbps: 10000
          operstate: up
          mtu: 1500
          link_type: 1
          kind: vlan
          master: null
          lowers: [vmbr0]
          vlan_id: 20
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.onprem.gpu_server.plugins.module_utils.host.interfaces import read_interfaces, select

# sysfs and /proc are read below ROOT; tests point it at a fixture tree.
ROOT = "/"
ARGUMENT_SPEC: dict = {
    "physical_only": {"type": "bool", "default": False},
    "names": {"type": "list", "elements": "str", "default": []},
}


def run_module():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    nics = select(read_interfaces(ROOT), module.params["physical_only"], module.params["names"])
    module.exit_json(changed=False, ansible_facts={"nics": nics})


def main():
    run_module()


if __name__ == "__main__":
    main()
