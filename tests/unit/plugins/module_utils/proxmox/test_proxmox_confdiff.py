"""config_diff: only what differs, in Proxmox's own spelling, and nothing a running VM cannot take.

The "current" configs are constructed in the shape GET /nodes/{node}/qemu/{vmid}/config
answers (its returns section in the API schema): not recorded from a host.
"""

from __future__ import annotations

import pytest

from ansible_collections.onprem.gpu_server.plugins.module_utils.proxmox.confdiff import config_diff, same

DESIRED = {
    "vmid": 101,
    "name": "trading-orchestrator",
    "machine": "q35",
    "bios": "ovmf",
    "cpu": "host",
    "memory": "65536",
    "affinity": "0-15,52-67",
    "numa0": "cpus=0-15,hostnodes=0,memory=65536,policy=bind",
    "numa": 1,
    "sockets": 1,
    "cores": 16,
    "balloon": 0,
    "hostpci0": "0000:3b:00,pcie=1",
    "scsi0": "tier0:500,iothread=1,discard=on,ssd=1",
    "efidisk0": "tier0:1,efitype=4m,pre-enrolled-keys=0",
    "net0": "virtio,bridge=vmbr0,tag=10",
}

# The same VM as Proxmox reports it after creation: other key order, numbers as
# strings, a generated MAC, volume ids with sizes, a digest and generated ids.
CURRENT = {
    "digest": "3f2a9c0d1e5b7a8c9d0e1f2a3b4c5d6e7f8a9b0c",
    "name": "trading-orchestrator",
    "machine": "q35",
    "bios": "ovmf",
    "cpu": "host",
    "memory": "65536",
    "affinity": "0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,52-67",
    "numa0": "cpus=0-15,policy=bind,memory=65536,hostnodes=0",
    "numa": 1,
    "sockets": 1,
    "cores": "16",
    "balloon": 0,
    "hostpci0": "pcie=1,host=0000:3b:00",
    "scsi0": "tier0:vm-101-disk-1,discard=on,iothread=1,size=500G,ssd=1",
    "efidisk0": "tier0:vm-101-disk-0,efitype=4m,pre-enrolled-keys=0,size=1M",
    "net0": "virtio=BC:24:11:2A:3B:4C,bridge=vmbr0,tag=10",
    "smbios1": "uuid=5c1f3b8e-2d4a-4b6c-8e9f-0a1b2c3d4e5f",
    "vmgenid": "0d6b4a2c-1e3f-4a5b-9c8d-7e6f5a4b3c2d",
    "meta": "creation-qemu=9.0.2,ctime=1767225600",
    "boot": "order=scsi0",
}


def test_identical_vm_needs_nothing():
    diff = config_diff(CURRENT, DESIRED)
    assert diff["changes"] == {}
    assert diff["refused"] == [] and diff["conflict"] is None and not diff["create"]


def test_new_vm_gets_everything_split_by_who_may_set_it():
    diff = config_diff({}, DESIRED)
    assert diff["create"]
    assert set(diff["changes"]) == set(DESIRED) - {"vmid"}
    assert set(diff["root_changes"]) == {"affinity", "hostpci0"}
    assert "hostpci0" not in diff["api_changes"] and diff["api_changes"]["cores"] == 16


def test_only_the_changed_key_is_sent():
    desired = {
        **DESIRED,
        "cores": 14,
        "affinity": "0-13,52-65",
        "numa0": "cpus=0-13,hostnodes=0,memory=65536,policy=bind",
    }
    diff = config_diff(CURRENT, desired)
    assert diff["changes"] == {
        "cores": 14,
        "affinity": "0-13,52-65",
        "numa0": "cpus=0-13,hostnodes=0,memory=65536,policy=bind",
    }
    assert diff["root_changes"] == {"affinity": "0-13,52-65"}
    assert diff["pending"] == []


def test_vlan_change_keeps_the_mac():
    diff = config_diff(CURRENT, {**DESIRED, "net0": "virtio,bridge=vmbr0,tag=20"})
    assert diff["changes"] == {"net0": "virtio,bridge=vmbr0,tag=20,macaddr=BC:24:11:2A:3B:4C"}


def test_running_vm_refuses_cold_keys_and_says_why():
    desired = {**DESIRED, "hostpci1": "0000:5e:00,pcie=1", "net0": "virtio,bridge=vmbr0,tag=20"}
    diff = config_diff(CURRENT, desired, running=True)
    assert list(diff["changes"]) == ["net0"]  # NIC bridge/tag changes apply live
    assert len(diff["refused"]) == 1
    assert diff["refused"][0].startswith("hostpci1: the VM is running and hostpci1 only takes effect at its next start")


def test_running_vm_with_allow_pending_queues_them():
    diff = config_diff(CURRENT, {**DESIRED, "hostpci1": "0000:5e:00,pcie=1"}, running=True, allow_pending=True)
    assert diff["changes"] == {"hostpci1": "0000:5e:00,pcie=1"}
    assert diff["pending"] == ["hostpci1"]
    assert diff["refused"] == []


@pytest.mark.parametrize(
    ("scsi0", "message"),
    [
        ("tier0:600,iothread=1,discard=on,ssd=1", "scsi0: is 500 GiB, the plan wants 600 GiB"),
        ("fast:500,iothread=1,discard=on,ssd=1", "scsi0: is on 'tier0:vm-101-disk-1', the plan wants storage 'fast'"),
        ("tier0:500,iothread=0,discard=on,ssd=1", "scsi0: options differ (iothread=0)"),
    ],
)
def test_existing_disks_are_never_changed(scsi0, message):
    diff = config_diff(CURRENT, {**DESIRED, "scsi0": scsi0})
    assert diff["changes"] == {}
    assert len(diff["refused"]) == 1 and diff["refused"][0].startswith(message)


def test_vmid_of_another_vm_is_a_conflict():
    diff = config_diff({**CURRENT, "name": "someone-else"}, DESIRED)
    assert diff["conflict"].startswith("vmid 101 is the VM 'someone-else', not 'trading-orchestrator'")
    assert diff["changes"] == {}


def test_extra_devices_are_listed_not_removed():
    diff = config_diff(
        {**CURRENT, "hostpci1": "0000:af:00,pcie=1", "net1": "virtio=BC:24:11:00:00:01,bridge=vmbr1"}, DESIRED
    )
    assert diff["unmanaged"] == ["hostpci1", "net1"]
    assert diff["changes"] == {}


def test_mapped_hostpci_is_not_root_only():
    diff = config_diff({}, {"hostpci0": "mapping=gpu1,pcie=1"})
    assert diff["api_changes"] == {"hostpci0": "mapping=gpu1,pcie=1"}


@pytest.mark.parametrize(
    ("key", "current", "desired", "expected"),
    [
        ("cores", "16", 16, True),
        ("numa", True, 1, True),
        ("numa", 0, 1, False),
        ("hostpci0", "0000:3B:00,pcie=1", "0000:3b:00,pcie=1", True),
        ("hostpci0", "0000:3b:00,pcie=1,x-vga=1", "0000:3b:00,pcie=1", False),
        (
            "numa0",
            "cpus=0-15,hostnodes=0,memory=65536.0,policy=bind",
            "cpus=0-15,hostnodes=0,memory=65536,policy=bind",
            True,
        ),
        (
            "args",
            "-fw_cfg  name=opt/ovmf/X-PciMmio64Mb,string=131072",
            "-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=131072",
            True,
        ),
        ("memory", "current=65536", "65536", True),
        ("net0", "e1000=BC:24:11:2A:3B:4C,bridge=vmbr0,tag=10", "virtio,bridge=vmbr0,tag=10", False),
    ],
)
def test_normalisation(key, current, desired, expected):
    assert same(key, current, desired) is expected
