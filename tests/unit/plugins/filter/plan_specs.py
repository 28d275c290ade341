"""The two spec machines as planning input (specs/xc740xd-trading-server.md, specs/rtx4090-ai-workstation.md)."""

from __future__ import annotations

# Dual Xeon Platinum 8270: 26 cores per socket, HT, numbered as Linux usually does.
XC740XD_NUMA = [
    {"id": 0, "cores": "0-25", "siblings": "52-77"},
    {"id": 1, "cores": "26-51", "siblings": "78-103"},
]

# The spec puts GPU 1-2 on riser 2 and GPU 3-4 on riser 3; which socket feeds a
# riser is board wiring, taken here as riser 2 -> CPU 1 (node 0), riser 3 -> CPU 2.
XC740XD_GPUS = [
    {"name": "gpu1", "pci": "0000:3b:00.0", "functions": ["0000:3b:00.0", "0000:3b:00.1"], "numa_node": 0},
    {"name": "gpu2", "pci": "0000:5e:00.0", "functions": ["0000:5e:00.0", "0000:5e:00.1"], "numa_node": 0},
    {"name": "gpu3", "pci": "0000:af:00.0", "functions": ["0000:af:00.0", "0000:af:00.1"], "numa_node": 1},
    {"name": "gpu4", "pci": "0000:d8:00.0", "functions": ["0000:d8:00.0", "0000:d8:00.1"], "numa_node": 1},
]

# "Proxmox VM Architecture Recommendations", verbatim numbers.
XC740XD_VMS = [
    {"name": "trading", "vcpus": 16, "cores": "0-15", "memory_gib": 64, "gpus": ["gpu1"]},
    {"name": "data", "vcpus": 12, "cores": "16-27", "memory_gib": 96},
    {"name": "llm", "vcpus": 16, "cores": "28-43", "memory_gib": 128, "gpus": ["gpu2", "gpu3", "gpu4"]},
    {"name": "research", "vcpus": 8, "cores": "44-51", "memory_gib": 32},
]

XC740XD_MEMORY = {
    "installed_gib": 320,
    "dimms": [{"size_gib": 8, "count": 8}, {"size_gib": 32, "count": 8}],
    "populated_dimms": 12,
    "sockets": 2,
    "channels_per_socket": 6,
    "slots_per_channel": 2,
}

# nvidia-smi reports 20475 MiB (RTX 4000 Ada) and 24564 MiB (RTX 4090), see
# shared/data/recorded/nvidia-smi; bandwidths are NVIDIA's published figures.
RTX4000ADA = {"name": "RTX 4000 Ada", "vram_mib": 20475, "bandwidth_gb_s": 360}
RTX4090 = {"name": "RTX 4090", "vram_mib": 24564, "bandwidth_gb_s": 1008}

# Published architectures (config.json of each model).
LLAMA31_70B = {"name": "Llama 3.1 70B", "params_b": 70.6, "layers": 80, "kv_heads": 8, "head_dim": 128}
LLAMA31_405B = {"name": "Llama 3.1 405B", "params_b": 405.9, "layers": 126, "kv_heads": 8, "head_dim": 128}
MISTRAL_7B = {"name": "Mistral 7B", "params_b": 7.24, "layers": 32, "kv_heads": 8, "head_dim": 128}
