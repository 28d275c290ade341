#!/usr/bin/python
# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: gpu_facts
short_description: NVIDIA GPUs, driver state, MIG devices and GPU topology, from nvidia-smi and sysfs
version_added: 0.1.0
description:
  - Runs C(nvidia-smi --query-gpu=... --format=csv,nounits) and returns one record per GPU with its name,
    UUID, PCI bus ID (in the sysfs form C(0000:3b:00.0)), memory, power limits, temperature, persistence,
    ECC and MIG modes, VBIOS, performance state, maximum clocks, compute capability and PCIe link.
  - Adds the CUDA version from the banner of C(nvidia-smi), the MIG devices from C(nvidia-smi -L) when a
    GPU has MIG mode enabled, and the link matrix, CPU and NUMA affinity from C(nvidia-smi topo -m).
  - Reads C(/proc/driver/nvidia/version) for the loaded kernel module's version and compares it with the
    userspace driver version.
  - A broken driver is reported, not raised. When nvidia-smi is missing or cannot talk to the driver,
    C(status) says why (C(no_nvidia_smi), C(no_driver), C(no_device), C(version_mismatch), C(error)),
    C(fix) says what to do, and C(gpus) lists the NVIDIA display-class PCI devices found in sysfs with
    the driver bound to each (C(vfio-pci), C(nouveau) or none).
  - If the CSV query is rejected while the driver works (an old driver lacking a field), the GPU
    records come from C(nvidia-smi -q) instead and a warning says so.
  - Changes nothing.
author:
  - onprem.gpu_server maintainers (@onprem)
options:
  nvidia_smi_path:
    description:
      - Path or name of the nvidia-smi binary. By default it is looked up in C(PATH), C(/usr/bin),
        C(/usr/local/bin), C(/usr/sbin) and C(/opt/nvidia/bin).
    type: path
  timeout:
    description:
      - Seconds each nvidia-smi run may take before it is killed (through coreutils C(timeout)); a GPU
        that has fallen off the bus can make nvidia-smi hang. C(0) disables the limit.
      - A negative value is refused before nvidia-smi runs.
    type: int
    default: 30
  gather_topology:
    description:
      - Run C(nvidia-smi topo -m) and return C(topology). It takes a few seconds on large hosts.
    type: bool
    default: true
extends_documentation_fragment:
  - onprem.gpu_server.attributes.read_only
attributes:
  facts:
    support: full
    description: Returns C(ansible_facts.gpu).
  platform:
    support: full
    platforms: posix
    description: Linux with the NVIDIA driver; without it, sysfs is read instead.
notes:
  - nvidia-smi runs with C(LC_ALL=C).
  - The sysfs records in C(gpus) (C(source=sysfs)) carry fewer keys than the nvidia-smi ones
    (C(source=nvidia-smi)); see RETURN.
seealso:
  - module: onprem.gpu_server.pci_facts
"""

EXAMPLES = r"""
- name: Read the NVIDIA GPU state
  onprem.gpu_server.gpu_facts:

- name: Stop when the driver is broken
  ansible.builtin.assert:
    that: ansible_facts.gpu.status == 'ok'
    fail_msg: "{{ ansible_facts.gpu.message }}: {{ ansible_facts.gpu.fix }}"

- name: Skip the topology on a large host and wait longer for nvidia-smi
  onprem.gpu_server.gpu_facts:
    gather_topology: false
    timeout: 60

- name: Use an nvidia-smi outside PATH
  onprem.gpu_server.gpu_facts:
    nvidia_smi_path: /opt/nvidia/bin/nvidia-smi
"""

RETURN = r"""
ansible_facts:
  description: Facts added under C(gpu).
  returned: always
  type: complex
  contains:
    gpu:
      description: The NVIDIA GPU state.
      returned: always
      type: complex
      contains:
        status:
          description:
            - C(ok), C(no_driver) (kernel module not loaded or not answering), C(no_device) (driver loaded,
              no GPU), C(version_mismatch) (userspace and kernel module from different releases),
              C(no_nvidia_smi) or C(error).
          returned: always
          type: str
          sample: version_mismatch
        message:
          description: nvidia-smi's own words when it failed; null when C(status=ok).
          returned: always
          type: str
          sample: "Failed to initialize NVML: Driver/library version mismatch NVML library version: 580.178"
        fix:
          description: What to do about a failure; null when there is nothing to do.
          returned: always
          type: str
          sample: reboot to load the new kernel module (...)
        driver_loaded:
          description: True when C(/proc/driver/nvidia/version) exists or nvidia-smi answered.
          returned: always
          type: bool
        driver_version:
          description: The userspace driver version (from nvidia-smi, or the NVML library version on a mismatch).
          returned: always
          type: str
          sample: 550.127.05
        kernel_module_version:
          description: The loaded kernel module's version from C(/proc/driver/nvidia/version); null when not loaded.
          returned: always
          type: str
          sample: 550.127.05
        kernel_module_open:
          description: True for the open kernel module, false for the proprietary one, null when not loaded.
          returned: always
          type: bool
        versions_match:
          description:
            - Kernel module and userspace versions agree (compared on the parts both have); null when one is unknown.
          returned: always
          type: bool
        cuda_version:
          description: The highest CUDA version the driver supports, from the nvidia-smi banner.
          returned: always
          type: str
          sample: "12.4"
        gpus:
          description:
            - From nvidia-smi (C(source=nvidia-smi)) C(index), C(name), C(uuid), C(serial), C(bus_id), C(pci_id)
              (C(10de:2684)), C(driver_version), C(vbios_version), C(memory_total_mib), C(power_limit_w),
              C(power_max_limit_w), C(temperature_c), C(persistence_mode), C(ecc_mode), C(mig_mode),
              C(mig_mode_pending) (booleans, null when not applicable), C(pstate), C(clocks_max_graphics_mhz),
              C(clocks_max_memory_mhz), C(compute_cap), C(pcie_gen_current), C(pcie_gen_max),
              C(pcie_width_current), C(pcie_width_max), C(driver) (C(nvidia)), C(numa_node) (from sysfs),
              C(mig_devices).
            - From sysfs (C(source=sysfs)) when nvidia-smi cannot list them C(bus_id), C(pci_id), C(pci_class),
              C(driver) (C(vfio-pci), C(nouveau), null), C(numa_node), C(iommu_groups), C(functions).
          returned: always
          type: list
          elements: dict
        topology:
          description:
            - From C(nvidia-smi topo -m) C(devices) (C(GPU0), C(NIC0), ...), C(links) (the code of each ordered pair,
              C(NV18), C(PIX), C(PXB), C(PHB), C(NODE), C(SYS)), C(pairs) (each GPU pair once with C(link) and
              C(nvlinks)), C(affinity) per GPU (C(cpu_affinity), C(numa_affinity), C(numa_node), C(gpu_numa_id))
              and C(nics) (C(NIC0) to C(mlx5_0)). Null when not gathered.
          returned: always
          type: dict
        mig:
          description: C(enabled) (a GPU has MIG mode on) and C(devices) (C(gpu), C(index), C(profile), C(uuid)).
          returned: always
          type: dict
          sample: {"enabled": true, "devices": [{"gpu": 0, "index": 0, "profile": "3g.40gb", "uuid": "MIG-..."}]}
        warnings:
          description: Secondary nvidia-smi runs that failed (banner, C(-L), C(topo -m)); the rest is still returned.
          returned: always
          type: list
          elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.onprem.gpu_server.plugins.module_utils.gpu.facts import gather, timeout_problem
from ansible_collections.onprem.gpu_server.plugins.module_utils.gpu.runner import NvidiaSmi

# /proc and /sys are read below ROOT; tests point it at a fixture tree.
ROOT = "/"
ARGUMENT_SPEC = {
    "nvidia_smi_path": {"type": "path"},
    "timeout": {"type": "int", "default": 30},
    "gather_topology": {"type": "bool", "default": True},
}


def run_module():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    problem = timeout_problem(params["timeout"])
    if problem:
        module.fail_json(msg=problem)
    runner = NvidiaSmi(module, params["nvidia_smi_path"], params["timeout"])
    facts = gather(runner if runner.binary else None, ROOT, params["gather_topology"], params["nvidia_smi_path"])
    for warning in facts["warnings"]:
        module.warn(warning)
    module.exit_json(changed=False, ansible_facts={"gpu": facts})


def main():
    run_module()


if __name__ == "__main__":
    main()
