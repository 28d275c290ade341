"""irq_boot.py, the boot script and irqbalance policy script that nic_tuning installs next to irq.py.

The tree is the lab VM's e1000e as recorded for test_nic_irq.py (eth1, 52:54:00:4c:ab:11, msi_irqs 35-37,
4 CPUs on one node), brought up once so that its vectors have /proc/irq entries.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ansible_collections.onprem.gpu_server.plugins.module_utils.nic import irq, irq_boot

NIC_DIR = Path(irq.__file__).resolve().parent
MAC = "52:54:00:4c:ab:11"


@pytest.fixture(autouse=True)
def _own_sys_path(monkeypatch: pytest.MonkeyPatch) -> None:
    # The script puts its directory on sys.path; keep that from leaking into other tests.
    monkeypatch.setattr(sys, "path", list(sys.path))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """sysfs and /proc of one e1000e with three MSI-X vectors, each on all four CPUs."""
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
    net = tmp_path / "sys/class/net/eth1"
    net.mkdir(parents=True)
    (net / "address").write_text(MAC + "\n")
    (net / "device").symlink_to(pci)
    for number in (35, 36, 37):
        (pci / "msi_irqs" / str(number)).write_text("msix\n")
        (tmp_path / f"proc/irq/{number}").mkdir(parents=True)
        (tmp_path / f"proc/irq/{number}/smp_affinity_list").write_text("0-3\n")
    return tmp_path


def config(tmp_path: Path, nics: list[dict[str, object]]) -> str:
    path = tmp_path / "nic-irq-affinity.json"
    path.write_text(json.dumps({"nics": nics}))
    return str(path)


def test_without_arguments_it_applies_the_config(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = config(root, [{"mac": MAC, "cpus": "numa"}, {"mac": "52:54:00:4c:ab:99", "cpus": "numa"}])
    assert irq_boot.main([], config=cfg, root=str(root)) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{MAC} (eth1): set 35:0 36:1 37:2",
        "52:54:00:4c:ab:99: skipped: no interface with MAC 52:54:00:4c:ab:99 on a bus device",
    ]
    assert (root / "proc/irq/36/smp_affinity_list").read_text() == "1\n"


@pytest.mark.parametrize(("irq_arg", "out"), [("35", "ban=true\n"), ("37", "ban=true\n"), ("20", ""), ("x", "")])
def test_as_policy_script_it_bans_only_the_tuned_nics_irqs(
    root: Path, capsys: pytest.CaptureFixture[str], irq_arg: str, out: str
) -> None:
    cfg = config(root, [{"mac": MAC, "cpus": "numa"}])
    # irqbalance calls it with the IRQ's device path and number; a wrong answer only costs a ban.
    assert irq_boot.main(["/sys/devices/pci0000:00/0000:00:08.0", irq_arg], config=cfg, root=str(root)) == 0
    assert capsys.readouterr().out == out
    assert (root / "proc/irq/35/smp_affinity_list").read_text() == "0-3\n"


@pytest.mark.skipif(not os.access("/usr/bin/python3", os.X_OK), reason="its interpreter line names /usr/bin/python3")
@pytest.mark.skipif(os.path.exists(irq_boot.CONFIG), reason="this host has a real config the script would apply")
def test_installed_through_its_link_it_finds_irq_py(tmp_path: Path) -> None:
    # As nic_tuning installs it: both files in a library directory, the command a symlink to the script,
    # run by its #!/bin/sh line with python3 -I (no script directory on sys.path).
    lib = tmp_path / "lib"
    lib.mkdir()
    for name in ("irq.py", "irq_boot.py"):
        shutil.copy(NIC_DIR / name, lib / name)
    (lib / "irq_boot.py").chmod(0o755)
    command = tmp_path / "onprem-nic-irq-affinity"
    command.symlink_to(lib / "irq_boot.py")
    done = subprocess.run([str(command), "/sys/x", "35"], capture_output=True, text=True, check=False)
    # It got as far as reading the (absent) config, so irq.py was imported from the library directory.
    assert done.returncode == 1
    assert "ModuleNotFoundError" not in done.stderr
    assert f"No such file or directory: '{irq_boot.CONFIG}'" in done.stderr
