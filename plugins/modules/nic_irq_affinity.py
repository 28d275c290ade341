#!/usr/bin/python
# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: nic_irq_affinity
short_description: Put a NIC's interrupts on the cores of its NUMA node (or on given cores)
version_added: 0.1.0
description:
  - Finds the NIC by O(mac) or O(name), its IRQs in sysfs (C(device/msi_irqs), else the legacy C(device/irq)) and
    its NUMA node (C(device/numa_node); none known means all online CPUs).
  - The allowed CPUs are the online CPUs of that node (O(cpus=numa)) or the explicit list O(cpus), minus the
    isolated CPUs (C(/sys/devices/system/cpu/isolated), unless O(exclude_isolated=false)) and O(exclude_cpus).
    Refuses, before changing anything, when no CPU is left or an explicit CPU is offline.
  - Gives each IRQ one CPU, round-robin over the allowed CPUs, so that the queues of a multi-queue NIC land on
    different cores; writes C(/proc/irq/N/smp_affinity_list) only where the present value differs.
  - An IRQ whose affinity the kernel manages itself (the write fails with EIO) is reported in RV(kernel_managed)
    and left alone; it is not a failure.
  - IRQs without a C(/proc/irq/N) entry have not been requested by the driver yet (many drivers request them
    when the interface is first brought up); they are listed in RV(inactive) and not changed.
  - Runtime only; IRQ numbers change between boots. The C(nic_tuning) role keeps the setting with a boot-time
    unit that plans again from the MAC. irqbalance, when it runs, must be told to leave these IRQs alone (the
    role does that). See C(docs/nic-tuning.md) in the collection.
author:
  - onprem.gpu_server maintainers (@onprem)
options:
  mac:
    description: MAC address of the NIC (preferred; names can change). Exactly one of O(mac) and O(name).
    type: str
  name:
    description: Interface name of the NIC.
    type: str
  cpus:
    description:
      - V(numa) for the CPUs of the NIC's NUMA node, or a CPU list such as V(0-3,8).
    type: str
    default: numa
  exclude_cpus:
    description: CPUs never to use, as a CPU list (for example V(0) to keep CPU 0 for housekeeping).
    type: str
    default: ''
  exclude_isolated:
    description: Leave the isolated CPUs (C(isolcpus=), often those pinned to VMs) out of the allowed set.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: Reads only; reports the IRQs that would change. An IRQ the kernel manages is only found out by
      writing, so check mode counts it as a change.
  diff_mode:
    support: full
    description: The affinity of each IRQ before and after.
  platform:
    support: full
    platforms: posix
    description: Linux (sysfs and /proc/irq).
notes:
  - irqbalance rewrites IRQ affinities every 10 seconds unless it is stopped or bans the IRQs.
"""

EXAMPLES = r"""
- name: Interrupts of the spare NIC on the cores of its NUMA node, never on isolated cores
  onprem.gpu_server.nic_irq_affinity:
    mac: "52:54:00:4c:ab:11"
  register: spare_irqs

- name: Interrupts of eth1 on CPUs 1-3 only
  onprem.gpu_server.nic_irq_affinity:
    name: eth1
    cpus: "0-3"
    exclude_cpus: "0"
"""

RETURN = r"""
interface:
  description: The NIC's interface name now.
  returned: always
  type: str
  sample: eth1
numa_node:
  description: The NIC's NUMA node (-1 when none is known).
  returned: always
  type: int
  sample: 0
allowed_cpus:
  description: The CPUs the IRQs were spread over, as a CPU list.
  returned: always
  type: str
  sample: "0-3"
irqs:
  description: The NIC's IRQ numbers, in the order the CPUs were given out.
  returned: always
  type: list
  elements: int
  sample: [35, 36, 37]
before:
  description: Each requested IRQ's affinity before the run (IRQ number as a string key).
  returned: always
  type: dict
  sample: {"35": "0-3", "36": "0-3", "37": "0-3"}
after:
  description: Each requested IRQ's affinity after the run (in check mode, as predicted).
  returned: always
  type: dict
  sample: {"35": "0", "36": "1", "37": "2"}
kernel_managed:
  description: IRQs whose affinity the kernel manages (the write was refused with EIO); left as they were.
  returned: always
  type: list
  elements: int
  sample: []
inactive:
  description: IRQs not requested by the driver yet (no C(/proc/irq/N)); not changed.
  returned: always
  type: list
  elements: int
  sample: []
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.onprem.gpu_server.plugins.module_utils.nic import irq

# Everything is read and written below ROOT; tests point it at a temporary tree.
ROOT = "/"

ARGUMENT_SPEC: dict[str, Any] = {
    "mac": {"type": "str"},
    "name": {"type": "str"},
    "cpus": {"type": "str", "default": "numa"},
    "exclude_cpus": {"type": "str", "default": ""},
    "exclude_isolated": {"type": "bool", "default": True},
}


def _text(affinity: dict[int, list[int] | None]) -> str:
    return "".join(f"irq {number}: {irq.format_cpulist(cpus) if cpus is not None else 'not requested'}\n"
                   for number, cpus in sorted(affinity.items()))


def run(module: AnsibleModule) -> dict[str, Any]:
    params = module.params
    policy = params["cpus"].strip()
    exclude = irq.parse_cpulist(params["exclude_cpus"], "exclude_cpus")
    state = irq.read_nic(ROOT, mac=params["mac"], name=params["name"], policy=policy, exclude=exclude,
                         exclude_isolated=params["exclude_isolated"])
    plan = state["plan"]
    managed: list[int] = []
    after: dict[int, list[int] | None] = dict(state["current"])
    for number in plan["differ"]:
        if module.check_mode or irq.write_affinity(ROOT, number, plan["wanted"][number]):
            after[number] = plan["wanted"][number]
        else:
            managed.append(number)
    if not module.check_mode:
        # Read back: what the kernel holds now, not what was asked for.
        after = {number: irq.current_affinity(ROOT, number) for number in state["irqs"]}
    changed = any(after[number] != state["current"][number] for number in state["irqs"]) if not module.check_mode \
        else bool(plan["differ"])
    result: dict[str, Any] = {
        "changed": changed,
        "interface": state["interface"],
        "numa_node": state["allowed"]["numa_node"],
        "allowed_cpus": irq.format_cpulist(state["allowed"]["cpus"]),
        "irqs": state["irqs"],
        "before": {str(n): irq.format_cpulist(c) for n, c in state["current"].items() if c is not None},
        "after": {str(n): irq.format_cpulist(c) for n, c in after.items() if c is not None},
        "kernel_managed": managed,
        "inactive": plan["inactive"],
    }
    if module._diff:
        result["diff"] = {"before_header": f"{state['interface']} IRQ affinity", "before": _text(state["current"]),
                          "after_header": f"{state['interface']} IRQ affinity", "after": _text(after)}
    if plan["inactive"]:
        module.warn(f"{state['interface']}: IRQ(s) {irq.format_cpulist(plan['inactive'])} are not requested by the "
                    "driver yet (the interface was never up); their affinity is set once it is up and this runs again")
    return result


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, required_one_of=[("mac", "name")],
                           mutually_exclusive=[("mac", "name")], supports_check_mode=True)
    try:
        result = run(module)
    except irq.IrqError as err:
        module.fail_json(msg=str(err))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
