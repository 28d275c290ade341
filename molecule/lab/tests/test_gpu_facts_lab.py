"""gpu_facts on a host without an NVIDIA GPU or driver (the lab VM): a clear fact, not a crash."""

from __future__ import annotations

from typing import Any

testinfra_hosts = ["ansible://lab-trading"]


def test_gpu_facts_says_no_nvidia_driver(host: Any) -> None:
    assert not host.exists("nvidia-smi")
    gpu = host.ansible("onprem.gpu_server.gpu_facts", check=False)["ansible_facts"]["gpu"]
    assert gpu["status"] == "no_nvidia_smi"
    assert gpu["driver_loaded"] is False
    assert gpu["gpus"] == []
    assert "nvidia-smi is not in PATH" in gpu["message"]
    # sysfs agrees: no NVIDIA (10de) display-class function on this bus
    vendors = host.check_output("cat /sys/bus/pci/devices/*/vendor").split()
    assert "0x10de" not in vendors
