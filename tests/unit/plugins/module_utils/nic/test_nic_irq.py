"""irq.py: cpulist syntax, finding a NIC's IRQs, NUMA node and CPUs in sysfs, the round-robin plan, writes.

The fixture trees are built from values recorded (2026-11-26, ``cat``/``ls`` of the files named) on:
- LAB: the lab VM ``scratch`` (``labvm.py start scratch --smp 4``, Debian 12, kernel 6.1.0-56-amd64):
  cpu/online ``0-3``, cpu/isolated empty, node0/cpulist ``0-3``; eth0 virtio-net (52:54:00:4c:ab:01, device
  ``virtio1`` under PCI 0000:00:03.0 with msi_irqs 30 31 32, numa_node -1); eth1 e1000e (52:54:00:4c:ab:11,
  0000:00:08.0, msi_irqs 35 36 37, irq 20, numa_node -1); /proc/irq/35..37 appear only once eth1 was up, each
  with smp_affinity_list ``0-3``; writing to an nvme queue IRQ (kernel-managed) fails with EIO.
- DEV: the development machine (kernel 6.18.44): cpu/online ``0-1``, isolated empty, node0 ``0-1``; eth0
  virtio-net (device ``virtio2`` under PCI 0000:00:03.0, msi_irqs 37 38 39, numa_node -1, affinity ``0-1``).
The two-node layouts below are made up for the NUMA cases (named as such).
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.onprem.gpu_server.plugins.module_utils.nic import irq


def build(root: Path, *, online: str, isolated: str = "", nodes: dict[int, str] | None = None,
          nics: dict[str, dict[str, Any]] | None = None, proc: dict[int, str] | None = None) -> str:
    """A sysfs/proc tree under ``root``; nics: name -> {mac, numa, msi, irq, virtio}."""
    cpu = root / "sys/devices/system/cpu"
    cpu.mkdir(parents=True)
    (cpu / "online").write_text(online + "\n")
    (cpu / "isolated").write_text(isolated + "\n")
    for node, cpulist in (nodes or {0: online}).items():
        (root / f"sys/devices/system/node/node{node}").mkdir(parents=True)
        (root / f"sys/devices/system/node/node{node}/cpulist").write_text(cpulist + "\n")
    for index, (name, nic) in enumerate((nics or {}).items()):
        pci = root / f"sys/devices/pci0000:00/0000:00:0{index + 3}.0"
        pci.mkdir(parents=True)
        (pci / "numa_node").write_text(f"{nic.get('numa', -1)}\n")
        (pci / "irq").write_text(f"{nic.get('irq', 0)}\n")
        if nic.get("msi"):
            (pci / "msi_irqs").mkdir()
            for number in nic["msi"]:
                (pci / "msi_irqs" / str(number)).write_text("msix\n")
        device = pci / nic["virtio"] if nic.get("virtio") else pci
        device.mkdir(exist_ok=True)
        net = root / "sys/class/net" / name
        net.mkdir(parents=True)
        (net / "address").write_text(nic["mac"] + "\n")
        (net / "device").symlink_to(device)
    for number, affinity in (proc or {}).items():
        (root / f"proc/irq/{number}").mkdir(parents=True)
        (root / f"proc/irq/{number}/smp_affinity_list").write_text(affinity + "\n")
    return str(root)


LAB_NICS = {"eth0": {"mac": "52:54:00:4c:ab:01", "msi": [30, 31, 32], "virtio": "virtio1"},
            "eth1": {"mac": "52:54:00:4c:ab:11", "msi": [35, 36, 37], "irq": 20}}


@pytest.fixture
def lab(tmp_path) -> str:
    """The lab VM with eth1 brought up once (its vectors requested)."""
    return build(tmp_path, online="0-3", nics=LAB_NICS,
                 proc={30: "0-3", 31: "1", 32: "2", 35: "0-3", 36: "0-3", 37: "0-3"})


@pytest.mark.parametrize(("text", "cpus", "back"), [
    ("0-3", [0, 1, 2, 3], "0-3"),
    ("0-3,8,10-11", [0, 1, 2, 3, 8, 10, 11], "0-3,8,10-11"),
    ("5", [5], "5"),
    ("", [], ""),
    ("3,1,2", [1, 2, 3], "1-3"),
    (" 0-1 \n", [0, 1], "0-1"),
    ("0,2,4-5", [0, 2, 4, 5], "0,2,4-5"),
])
def test_cpulist_round_trip(text, cpus, back):
    assert irq.parse_cpulist(text) == cpus
    assert irq.format_cpulist(cpus) == back


@pytest.mark.parametrize(("text", "message"), [
    ("3-1", "cpus: range '3-1' is reversed in '3-1'"),
    ("0-3,x", "cpus: cannot read 'x' in '0-3,x' (expected N or N-M, e.g. '0-3,8')"),
    ("-1", "cpus: cannot read '-1' in '-1' (expected N or N-M, e.g. '0-3,8')"),
    ("numa", "cpus: cannot read 'numa' in 'numa' (expected N or N-M, e.g. '0-3,8')"),
])
def test_bad_cpulists_are_refused(text, message):
    with pytest.raises(irq.IrqError) as err:
        irq.parse_cpulist(text, "cpus")
    assert str(err.value) == message


def test_lab_e1000e_found_by_mac_with_its_msix_vectors(lab):
    assert irq.find_interface(lab, mac="52:54:00:4C:AB:11") == "eth1"
    assert irq.nic_irqs(lab, "eth1") == [35, 36, 37]
    assert irq.numa_node(lab, "eth1") == -1
    assert irq.current_affinity(lab, 35) == [0, 1, 2, 3]


def test_virtio_net_irqs_belong_to_the_pci_function_above(lab):
    assert irq.nic_irqs(lab, "eth0") == [30, 31, 32]


def test_dev_machine_virtio_net(tmp_path):
    root = build(tmp_path, online="0-1", nics={"eth0": {"mac": "0a:00:00:00:00:01", "msi": [37, 38, 39],
                                                         "virtio": "virtio2"}},
                 proc={37: "0-1", 38: "0-1", 39: "0-1"})
    state = irq.read_nic(root, name="eth0")
    assert state["allowed"]["cpus"] == [0, 1] and state["allowed"]["source"] == "all online CPUs (no NUMA node)"
    assert state["plan"]["wanted"] == {37: [0], 38: [1], 39: [0]}
    assert state["plan"]["differ"] == [37, 38, 39]


def test_legacy_intx_when_there_is_no_msi(tmp_path):
    root = build(tmp_path, online="0-3", nics={"eth5": {"mac": "00:1b:21:00:00:05", "irq": 19}})
    assert irq.nic_irqs(root, "eth5") == [19]


def test_a_device_without_interrupts_is_refused(tmp_path):
    root = build(tmp_path, online="0-3", nics={"eth5": {"mac": "00:1b:21:00:00:05"}})
    with pytest.raises(irq.IrqError, match=r"^eth5: the device has no MSI/MSI-X vectors and no legacy IRQ$"):
        irq.read_nic(root, name="eth5")


def test_unknown_nic_and_bad_mac(lab):
    with pytest.raises(irq.IrqError, match=r"^no interface with MAC 52:54:00:4c:ab:77 on a bus device$"):
        irq.find_interface(lab, mac="52:54:00:4c:ab:77")
    with pytest.raises(irq.IrqError, match="is not a MAC address"):
        irq.find_interface(lab, mac="52:54:00")
    with pytest.raises(irq.IrqError, match=r"^no interface named eth9$"):
        irq.find_interface(lab, name="eth9")


# Made-up two-node server: node0 CPUs 0-7,16-23, node1 8-15,24-31; the VMs' cores 4-7 and 12-15 isolated.
TWO_NODES = {"online": "0-31", "isolated": "4-7,12-15", "nodes": {0: "0-7,16-23", 1: "8-15,24-31"}}


def test_numa_policy_uses_the_nic_node_minus_isolated(tmp_path):
    root = build(tmp_path, **TWO_NODES, nics={"eth2": {"mac": "00:1b:21:00:00:02", "numa": 1, "msi": [80, 81]}},
                 proc={80: "0-31", 81: "0-31"})
    allowed = irq.allowed_cpus(root, "eth2")
    assert allowed["cpus"] == [8, 9, 10, 11, 24, 25, 26, 27, 28, 29, 30, 31]
    assert allowed["source"] == "NUMA node 1"
    assert irq.allowed_cpus(root, "eth2", exclude_isolated=False)["cpus"][:8] == list(range(8, 16))
    assert irq.allowed_cpus(root, "eth2", exclude=[8, 9])["cpus"][:2] == [10, 11]


def test_explicit_offline_cpu_is_refused(lab):
    with pytest.raises(irq.IrqError) as err:
        irq.allowed_cpus(lab, "eth1", policy="2-5")
    assert str(err.value) == "eth1: CPU(s) 4-5 of cpus '2-5' are not online (online: 0-3)"


def test_nothing_left_is_refused(tmp_path):
    root = build(tmp_path, **TWO_NODES, nics={"eth2": {"mac": "00:1b:21:00:00:02", "numa": 0, "msi": [80]}})
    with pytest.raises(irq.IrqError) as err:
        irq.allowed_cpus(root, "eth2", policy="4-7", exclude=[])
    assert str(err.value) == ("eth2: no CPU is left for its interrupts: cpus 4-7 gives 4-7, minus isolated "
                              "4-7,12-15 and exclude_cpus none")
    with pytest.raises(irq.IrqError, match=r"NUMA node 0 gives 0-7,16-23, minus isolated 4-7,12-15 and exclude_cpus "
                                           r"0-3,16-23$"):
        irq.allowed_cpus(root, "eth2", exclude=[0, 1, 2, 3, *range(16, 24)])
    with pytest.raises(irq.IrqError, match="no CPU allowed"):
        irq.plan_affinity([80], {80: [0]}, [])


@pytest.mark.parametrize(("irqs", "current", "allowed", "wanted", "differ", "inactive"), [
    # 3 vectors of the lab e1000e over 4 CPUs, all at 0-3: each moves.
    ([35, 36, 37], {35: [0, 1, 2, 3], 36: [0, 1, 2, 3], 37: [0, 1, 2, 3]}, [0, 1, 2, 3],
     {35: [0], 36: [1], 37: [2]}, [35, 36, 37], []),
    # More IRQs than CPUs: round-robin wraps; one already right.
    ([35, 36, 37], {35: [1], 36: [0, 1], 37: [2]}, [1, 3], {35: [1], 36: [3], 37: [1]}, [36, 37], []),
    # A vector never requested keeps its slot, so the others keep their CPUs once it appears.
    ([35, 36, 37], {35: [0], 36: None, 37: [2]}, [0, 1, 2, 3], {35: [0], 37: [2]}, [], [36]),
])
def test_plan_round_robin(irqs, current, allowed, wanted, differ, inactive):
    plan = irq.plan_affinity(irqs, current, allowed)
    assert (plan["wanted"], plan["differ"], plan["inactive"]) == (wanted, differ, inactive)


def test_write_then_plan_again_changes_nothing(lab):
    assert irq.write_affinity(lab, 36, [1]) is True
    assert Path(lab, "proc/irq/36/smp_affinity_list").read_text() == "1\n"
    lines = irq.apply_config(lab, [{"mac": "52:54:00:4c:ab:11", "cpus": "numa"}])
    assert lines == ["52:54:00:4c:ab:11 (eth1): set 35:0 37:2"]
    assert irq.read_nic(lab, mac="52:54:00:4c:ab:11")["plan"]["differ"] == []


def test_kernel_managed_irq_is_reported_not_failed(lab, monkeypatch):
    real_open = open

    def eio_open(path, *args, **kwargs):
        if str(path).endswith("proc/irq/35/smp_affinity_list") and args and args[0] == "w":
            raise OSError(errno.EIO, "Input/output error")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", eio_open)
    assert irq.write_affinity(lab, 35, [0]) is False
    lines = irq.apply_config(lab, [{"mac": "52:54:00:4c:ab:11", "cpus": "numa"}])
    assert lines == ["52:54:00:4c:ab:11 (eth1): set 36:1 37:2; left to the kernel 35:0"]


def test_other_write_errors_name_the_irq(lab, monkeypatch):
    def einval_open(path, *args, **kwargs):
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr("builtins.open", einval_open)
    with pytest.raises(irq.IrqError, match=r"^writing 3 to /proc/irq/35/smp_affinity_list failed: Invalid argument$"):
        irq.write_affinity(lab, 35, [3])


def test_boot_config_skips_missing_and_down_nics(tmp_path):
    # eth1 never up since boot: no /proc/irq entries for its vectors.
    root = build(tmp_path, online="0-3", nics=LAB_NICS, proc={30: "0-3"})
    lines = irq.apply_config(root, [{"mac": "52:54:00:4c:ab:12", "cpus": "numa"},
                                    {"mac": "52:54:00:4c:ab:11", "cpus": "1-3", "exclude_cpus": "2"}])
    assert lines == ["52:54:00:4c:ab:12: skipped: no interface with MAC 52:54:00:4c:ab:12 on a bus device",
                     "52:54:00:4c:ab:11 (eth1): set nothing; not requested yet (interface never up) 35-37"]


def test_irqbalance_ban_only_for_the_configured_nics(lab):
    nics = [{"mac": "52:54:00:4c:ab:11", "cpus": "numa"}, {"mac": "52:54:00:4c:ab:99", "cpus": "numa"}]
    assert [irq.banned(lab, nics, number) for number in (35, 36, 37)] == [True, True, True]
    assert [irq.banned(lab, nics, number) for number in (30, 31, 20)] == [False, False, False]
