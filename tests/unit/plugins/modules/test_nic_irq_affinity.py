"""nic_irq_affinity module wiring on a sysfs/proc tree built from the lab VM's recorded values.

Recorded on the lab VM ``scratch`` (``--smp 4``, kernel 6.1.0-56-amd64, 2026-11-26): cpu/online ``0-3``; the spare
e1000e 52:54:00:4c:ab:11 is eth1 at 0000:00:08.0 with msi_irqs 35 36 37, numa_node -1, each IRQ at ``0-3``
after the interface was brought up. See tests/unit/plugins/module_utils/nic/test_nic_irq.py.
"""

from __future__ import annotations

import errno
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.module_utils import _internal
from ansible.module_utils.testing import patch_module_args

from ansible_collections.onprem.gpu_server.plugins.modules import nic_irq_affinity

MAC = "52:54:00:4c:ab:11"


@pytest.fixture
def tree(monkeypatch, tmp_path) -> Path:
    cpu = tmp_path / "sys/devices/system/cpu"
    cpu.mkdir(parents=True)
    (cpu / "online").write_text("0-3\n")
    (cpu / "isolated").write_text("\n")
    (tmp_path / "sys/devices/system/node/node0").mkdir(parents=True)
    (tmp_path / "sys/devices/system/node/node0/cpulist").write_text("0-3\n")
    pci = tmp_path / "sys/devices/pci0000:00/0000:00:08.0"
    (pci / "msi_irqs").mkdir(parents=True)
    (pci / "numa_node").write_text("-1\n")
    (pci / "irq").write_text("20\n")
    for number in (35, 36, 37):
        (pci / "msi_irqs" / str(number)).write_text("msix\n")
        (tmp_path / f"proc/irq/{number}").mkdir(parents=True)
        (tmp_path / f"proc/irq/{number}/smp_affinity_list").write_text("0-3\n")
    net = tmp_path / "sys/class/net/eth1"
    net.mkdir(parents=True)
    (net / "address").write_text(MAC + "\n")
    (net / "device").symlink_to(pci)
    monkeypatch.setattr(_internal, "is_controller", False)
    monkeypatch.setattr(nic_irq_affinity, "ROOT", str(tmp_path))
    return tmp_path


def affinity(tree: Path) -> dict[int, str]:
    return {n: (tree / f"proc/irq/{n}/smp_affinity_list").read_text().strip() for n in (35, 36, 37)}


def run(args: dict[str, Any], capsys) -> dict[str, Any]:
    with patch_module_args(args), pytest.raises(SystemExit):
        nic_irq_affinity.main()
    return json.loads(capsys.readouterr().out)


def test_check_mode_predicts_and_writes_nothing(tree, capsys):
    result = run({"mac": MAC, "_ansible_check_mode": True, "_ansible_diff": True}, capsys)
    assert result["changed"] is True
    assert result["after"] == {"35": "0", "36": "1", "37": "2"}
    assert result["before"] == {"35": "0-3", "36": "0-3", "37": "0-3"}
    assert result["diff"]["after"] == "irq 35: 0\nirq 36: 1\nirq 37: 2\n"
    assert affinity(tree) == {35: "0-3", 36: "0-3", 37: "0-3"}


def test_apply_then_second_run_changes_nothing(tree, capsys):
    first = run({"mac": MAC}, capsys)
    assert (first["changed"], first["interface"], first["numa_node"]) == (True, "eth1", -1)
    assert first["allowed_cpus"] == "0-3"
    assert affinity(tree) == {35: "0", 36: "1", 37: "2"}
    second = run({"mac": MAC}, capsys)
    assert second["changed"] is False and second["after"] == second["before"] == first["after"]


def test_explicit_cpus_and_exclude(tree, capsys):
    result = run({"name": "eth1", "cpus": "1-3", "exclude_cpus": "2"}, capsys)
    assert result["allowed_cpus"] == "1,3"
    assert affinity(tree) == {35: "1", 36: "3", 37: "1"}


def test_isolated_cpus_are_left_out_unless_asked(tree, capsys):
    (tree / "sys/devices/system/cpu/isolated").write_text("2-3\n")
    assert run({"mac": MAC, "_ansible_check_mode": True}, capsys)["after"] == {"35": "0", "36": "1", "37": "0"}
    assert run({"mac": MAC, "exclude_isolated": False, "_ansible_check_mode": True}, capsys)["after"] == {
        "35": "0", "36": "1", "37": "2"}


def test_refusals_change_nothing(tree, capsys):
    result = run({"mac": MAC, "cpus": "1-3", "exclude_cpus": "1-3"}, capsys)
    assert result["failed"] is True
    assert result["msg"] == ("eth1: no CPU is left for its interrupts: cpus 1-3 gives 1-3, minus isolated none "
                             "and exclude_cpus 1-3")
    assert run({"mac": MAC, "cpus": "0-7"}, capsys)["msg"] == ("eth1: CPU(s) 4-7 of cpus '0-7' are not online "
                                                               "(online: 0-3)")
    assert run({"mac": MAC, "exclude_cpus": "x"}, capsys)["msg"].startswith("exclude_cpus: cannot read 'x'")
    assert "mutually exclusive" in run({"mac": MAC, "name": "eth1"}, capsys)["msg"]
    assert affinity(tree) == {35: "0-3", 36: "0-3", 37: "0-3"}


def test_kernel_managed_irq_is_reported(tree, monkeypatch, capsys):
    real_open = open

    def eio_open(path, *args, **kwargs):
        if str(path).endswith("proc/irq/36/smp_affinity_list") and args and args[0] == "w":
            raise OSError(errno.EIO, "Input/output error")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", eio_open)
    result = run({"mac": MAC}, capsys)
    assert "failed" not in result and result["changed"] is True
    assert result["kernel_managed"] == [36]
    assert result["after"] == {"35": "0", "36": "0-3", "37": "2"}


def test_inactive_irqs_warn(tree, capsys):
    (tree / "proc/irq/37/smp_affinity_list").unlink()
    (tree / "proc/irq/37").rmdir()
    result = run({"mac": MAC}, capsys)
    assert result["inactive"] == [37] and result["after"] == {"35": "0", "36": "1"}
    assert "IRQ(s) 37 are not requested by the driver yet" in str(result["warnings"])


def test_examples_run(tree, capsys):
    for task in yaml.safe_load(nic_irq_affinity.EXAMPLES):
        args = task["onprem.gpu_server.nic_irq_affinity"]
        result = run({**args, "_ansible_check_mode": True}, capsys)
        assert "failed" not in result, result
        assert result["interface"] == "eth1"
