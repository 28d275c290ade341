"""The schema checker accepts what Proxmox accepts and rejects what it would refuse."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ansible_collections.onprem.gpu_server.plugins.module_utils.proxmox.apischema import (
    QEMU_CONFIG_SET,
    check_parameters,
)

SCHEMA = json.loads((Path(__file__).resolve().parents[3] / "fixtures" / "proxmox" / "qemu-api-schema.json").read_text())

GOOD = {
    "vmid": 150,
    "name": "gpu-box",
    "hostpci0": "0000:3b:00,pcie=1",
    "hostpci15": "0000:5e:00.0;0000:5e:00.1,rombar=0",
    "numa0": "cpus=0-7,hostnodes=0,memory=16384,policy=bind",
    "net31": "virtio=BC:24:11:00:00:01,bridge=vmbr0,tag=4094",
    "scsi30": "local-lvm:32,iothread=1",
    "cpu": "host,phys-bits=host",
    "hugepages": "1024",
    "affinity": "0-7,52-59",
    "numa": 1,
}


def test_valid_parameters_pass():
    assert check_parameters(SCHEMA, GOOD) == []


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"cpu_type": "host"}, "cpu_type: is not a parameter of this endpoint"),
        ({"bios": "uefi"}, "bios: 'uefi' is not one of seabios, ovmf"),
        ({"hugepages": "1G"}, "hugepages: '1G' is not one of any, 2, 1024"),
        ({"hostpci16": "0000:3b:00"}, "hostpci16: index 16 is outside hostpci[n]'s range 0..15"),
        ({"scsi31": "local-lvm:8"}, "scsi31: index 31 is outside scsi[n]'s range 0..30"),
        ({"hostpci0": "0000:3b:00,pcie=yes-please"}, "hostpci0: pcie: 'yes-please' is not a boolean (1|0)"),
        ({"hostpci0": "0000:3b:00,allfunctions=1"}, "hostpci0: unknown key 'allfunctions'"),
        ({"hostpci0": "3b:00:00"}, "hostpci0: host: '3b:00:00' is not a PCI id list"),
        ({"numa0": "hostnodes=0,memory=1024"}, "numa0: cpus is required"),
        ({"numa0": "cpus=0-3,policy=strict"}, "numa0: policy: 'strict' is not one of preferred, bind, interleave"),
        ({"net0": "virtio,bridge=vmbr0,tag=4095"}, "net0: tag: 4095 is above the maximum 4094"),
        ({"net0": "virtio,vlan=10"}, "net0: unknown key 'vlan'"),
        ({"cores": 0}, "cores: 0 is below the minimum 1"),
        ({"cores": "many"}, "cores: expected an integer"),
        ({"vmid": 99}, "vmid: 99 is below the minimum 100"),
        ({"affinity": "0-3;8"}, "affinity: '0-3;8' is not a valid pve-cpuset"),
        ({"memory": 65536}, "memory: expected a string"),
        ({"machine": "q35,viommu=amd"}, "machine: viommu: 'amd' is not one of intel, virtio"),
    ],
)
def test_invalid_parameters_are_named(params, error):
    errors = check_parameters(SCHEMA, params)
    assert any(e.startswith(error) for e in errors), errors


def test_config_endpoint_knows_digest_and_delete():
    assert check_parameters(SCHEMA, {"digest": "abc", "delete": "hostpci1", "cores": 4}, QEMU_CONFIG_SET) == []
    assert check_parameters(SCHEMA, {"digest": "abc"}) == ["digest: is not a parameter of this endpoint"]
