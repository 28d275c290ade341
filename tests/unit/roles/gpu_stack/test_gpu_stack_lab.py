"""The GPU stack as the lab runs it: kernel module modes, task order, persistenced and initramfs conditions."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip("ansible")
from gpu_stack_render import REPO_ROOT, ROLES, Host

RECORDED = Path(__file__).parent / "recorded"
LAB_VARS = REPO_ROOT / "inventories" / "lab" / "host_vars" / "lab-workstation" / "gpu_stack.yml"
KERNEL_MODULE_PACKAGES = re.compile(r"^nvidia-(open-)?kernel-(dkms|[0-9.]+)$")


def _tasks(role: str, tasks_file: str) -> list[dict[str, Any]]:
    return yaml.safe_load((ROLES / role / "tasks" / tasks_file).read_text())


def _task(role: str, tasks_file: str, name: str) -> dict[str, Any]:
    (task,) = [t for t in _tasks(role, tasks_file) if t.get("name") == name]
    return task


def _depends(field: str) -> dict[str, set[str]]:
    """Package -> names in one relation field of the recorded ``apt-cache show`` output."""
    result: dict[str, set[str]] = {}
    package = ""
    for line in (RECORDED / "apt-cache-show-debian12-driver.txt").read_text().splitlines():
        key, _, value = line.partition(": ")
        if key == "Package":
            package = value
        elif key == field:
            result[package] = {alt.split()[0] for rel in value.split(",") for alt in rel.split("|")}
    return result


def _lab_host(**overrides: Any) -> Host:
    lab = yaml.safe_load(LAB_VARS.read_text())
    return Host(("nvidia_driver",), **{**lab, **overrides})


def test_lab_variables_take_debians_userspace_without_a_module() -> None:
    host = _lab_host()
    assert host.value("__nvidia_driver_packages") == ["nvidia-smi", "libcuda1", "nvidia-persistenced"]
    # The preflight's refusal of another branch does not fire for the lab's "535".
    assert host.expr("nvidia_driver_branch | string != __nvidia_driver_debian_branch") is False


def test_dkms_mode_adds_the_debian_module_package() -> None:
    packages = _lab_host(nvidia_driver_kernel_module="proprietary").value("__nvidia_driver_packages")
    assert packages[0] == "nvidia-kernel-dkms"


def test_userspace_only_needs_no_kernel_module_package() -> None:
    """In Debian 12 the module is only a Recommends of nvidia-smi and libcuda1, never a Depends."""
    depends, recommends = _depends("Depends"), _depends("Recommends")
    assert set(depends) == {"nvidia-smi", "libcuda1"}
    for package in depends:
        assert not any(KERNEL_MODULE_PACKAGES.match(name) for name in depends[package])
        assert "nvidia-kernel-dkms" in recommends[package]
    simulated = (RECORDED / "apt-get-install-s-debian12-none.txt").read_text()
    installed = re.findall(r"(?m)^Inst (\S+)", simulated)
    assert {"nvidia-smi", "libcuda1", "nvidia-persistenced"} <= set(installed)
    assert not any(KERNEL_MODULE_PACKAGES.match(name) or name == "firmware-nvidia-gsp" for name in installed)
    install = _task("nvidia_driver", "install.yml", "Install the driver packages")
    assert install["ansible.builtin.apt"]["install_recommends"] is False


def test_nouveau_blacklist_is_written_before_the_install() -> None:
    """The packages' initramfs trigger then carries the blacklist: one rebuild, not two."""
    order = [t["ansible.builtin.import_tasks"] for t in _tasks("nvidia_driver", "main.yml")]
    assert order.index("nouveau.yml") < order.index("install.yml") < order.index("configure.yml")


@pytest.mark.parametrize(("blacklist", "unblacklisted", "changed"), [(True, False, False), (False, True, True)])
def test_nouveau_blacklist_is_an_input_of_the_one_initramfs_rebuild(
    blacklist: bool, unblacklisted: bool, changed: bool
) -> None:
    """The initramfs module compares the blacklist with each initrd; a removed blacklist is pending by itself."""
    task = _task("nvidia_driver", "configure.yml",
                 "The nouveau blacklist goes into the initramfs, so that nouveau stays out from early boot")
    assert task["ansible.builtin.include_role"] == {"name": "onprem.gpu_server.initramfs", "tasks_from": "add_inputs"}
    host = Host(("nvidia_driver",), nvidia_driver_blacklist_nouveau=blacklist,
                __nvidia_driver_nouveau_unblacklisted={"changed": unblacklisted})
    (path,) = task["vars"]["initramfs_add_paths"]
    assert host.expr(path.strip().removeprefix("{{").removesuffix("}}")) == (
        "/etc/modprobe.d/onprem-nvidia-blacklist-nouveau.conf")
    pending = task["vars"]["initramfs_add_changed"].strip().removeprefix("{{").removesuffix("}}")
    assert host.expr(pending) is changed


@pytest.mark.parametrize(("gpus", "enabled"), [([], False), ([{"bus_id": "0000:01:00.0", "driver": None}], True)])
def test_persistenced_is_enabled_only_with_a_gpu(gpus: list[dict[str, Any]], enabled: bool) -> None:
    task = _task("nvidia_driver", "configure.yml", "Enable nvidia-persistenced where a GPU is present")
    host = Host(("nvidia_driver",))
    host = Host(("nvidia_driver",), ansible_facts={**host.variables["ansible_facts"], "gpu": {"gpus": gpus}})
    value = task["ansible.builtin.systemd_service"]["enabled"].strip().removeprefix("{{").removesuffix("}}")
    assert host.expr(value) is enabled


def test_cuda_enabled_false_installs_nothing() -> None:
    tasks = _tasks("cuda", "main.yml")
    imports = [t for t in tasks if "ansible.builtin.import_tasks" in t]
    assert [t["ansible.builtin.import_tasks"] for t in imports] == ["install.yml", "configure.yml", "verify.yml"]
    assert all(t["when"] == "cuda_enabled | bool" for t in imports)
    lab = yaml.safe_load(LAB_VARS.read_text())
    assert lab["cuda_enabled"] is False
    assert Host(("cuda",)).value("cuda_enabled") is True
