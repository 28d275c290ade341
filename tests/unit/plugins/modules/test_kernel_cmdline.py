"""kernel_cmdline module: runs against constructed host trees with the commands faked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from ansible.module_utils import basic
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.testing import patch_module_args

from ansible_collections.onprem.gpu_server.plugins.module_utils.bootloader.cmdline import normalize_params
from ansible_collections.onprem.gpu_server.plugins.modules import kernel_cmdline

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "cmdline"
# Sources: cmdline/SOURCES.md (Debian 12 /etc/default/grub, the lab VM's 10-lab.cfg).
LAB_RUNNING = ("BOOT_IMAGE=/boot/vmlinuz-6.1.0-28-amd64 root=LABEL=labroot ro console=ttyS0,115200 "
               "net.ifnames=0 intel_iommu=on\n")
DROPIN = "etc/default/grub.d/99-onprem-gpu-server.cfg"


class Host:
    """A host tree plus a record of the commands the module ran."""

    def __init__(self, root: Path, monkeypatch, rc: int = 0):
        self.root = root
        self.calls: list[tuple[list[str], dict]] = []
        monkeypatch.setattr(kernel_cmdline, "ROOT", str(root))

        def run_command(module, argv, **kwargs):
            self.calls.append((argv, kwargs.get("environ_update") or {}))
            return rc, "", "boom" if rc else ""

        monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
        monkeypatch.setattr(basic.AnsibleModule, "get_bin_path",
                            lambda module, name, required=False, opt_dirs=None:
                            None if name == "bootctl" else f"/usr/sbin/{name}")

    def write(self, rel: str, text: str) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def read(self, rel: str) -> str | None:
        path = self.root / rel
        return path.read_text() if path.exists() else None


def run(args, capsys, check=False, diff=False):
    args = dict(args, _ansible_check_mode=check, _ansible_diff=diff)
    with patch_module_args(args), pytest.raises(SystemExit):
        kernel_cmdline.main()
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def lab_grub(tmp_path, monkeypatch):
    host = Host(tmp_path, monkeypatch)
    debian = FIXTURES / "etc-default-grub_debian12_grub2-common_2.06-13+deb12u2.txt"
    host.write("etc/default/grub", debian.read_text())
    lab = FIXTURES / "etc-default-grub.d-10-lab.cfg_labvm-recipe.txt"
    host.write("etc/default/grub.d/10-lab.cfg", lab.read_text())
    host.write("boot/grub/grub.cfg", "# generated\n")
    host.write("proc/cmdline", LAB_RUNNING)
    return host


def test_check_mode_predicts_and_writes_nothing(lab_grub, capsys):
    result = run({"params": {"iommu": "pt"}}, capsys, check=True, diff=True)
    assert result["changed"] is True
    assert result["bootloader"] == "grub" and result["refresh_command"] == ["update-grub"]
    assert result["reboot_required"] is True and result["reboot_params"] == ["iommu"]
    assert 'GRUB_CMDLINE_LINUX_DEFAULT="${GRUB_CMDLINE_LINUX_DEFAULT} iommu=pt"' in result["diff"]["after"]
    assert result["diff"]["before"] == ""
    assert lab_grub.read(DROPIN) is None
    assert lab_grub.calls == []


def test_apply_then_idempotent_then_reboot_clears(lab_grub, capsys):
    first = run({"params": ["iommu=pt"]}, capsys)
    assert first["changed"] is True
    assert first["cmdline_configured"] == "console=ttyS0,115200 net.ifnames=0 intel_iommu=on iommu=pt"
    assert "iommu=pt" in lab_grub.read(DROPIN)
    assert lab_grub.calls == [(["/usr/sbin/update-grub"], {"LC_ALL": "C", "LANG": "C", "LANGUAGE": "C"})]

    second = run({"params": ["iommu=pt"]}, capsys)
    assert second["changed"] is False and second["reboot_required"] is True
    assert len(lab_grub.calls) == 1

    lab_grub.write("proc/cmdline", LAB_RUNNING.strip() + " iommu=pt\n")
    third = run({"params": ["iommu=pt"]}, capsys)
    assert third["changed"] is False and third["reboot_required"] is False


def test_absent_removes_own_dropin(lab_grub, capsys):
    run({"params": {"iommu": "pt"}}, capsys)
    result = run({"params": ["iommu"], "state": "absent"}, capsys)
    assert result["changed"] is True and lab_grub.read(DROPIN) is None


def test_systemd_boot_proxmox(tmp_path, monkeypatch, capsys):
    host = Host(tmp_path, monkeypatch)
    host.write("etc/kernel/proxmox-boot-uuids", "1A2B-3C4D\n")
    host.write("sys/firmware/efi/efivars/LoaderInfo-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f", "x")
    host.write("etc/kernel/cmdline", "root=ZFS=rpool/ROOT/pve-1 boot=zfs\n")
    host.write("proc/cmdline", "initrd=\\EFI\\proxmox\\initrd.img root=ZFS=rpool/ROOT/pve-1 boot=zfs\n")
    result = run({"params": {"intel_iommu": "on", "iommu": "pt"}}, capsys, diff=True)
    assert result["bootloader"] == "systemd-boot" and result["path"] == "/etc/kernel/cmdline"
    assert host.read("etc/kernel/cmdline") == "root=ZFS=rpool/ROOT/pve-1 boot=zfs intel_iommu=on iommu=pt\n"
    assert [argv for argv, _env in host.calls] == [["/usr/sbin/proxmox-boot-tool", "refresh"]]
    assert result["diff"]["before"] == "root=ZFS=rpool/ROOT/pve-1 boot=zfs\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"params": {"intel_iommu": True}}, "YAML boolean"),
        ({"params": {"iommu": "pt"}, "name": "../evil"}, "plain file name"),
        ({"params": {"iommu": "pt"}, "bootloader": "systemd-boot"}, "needs proxmox-boot-tool"),
    ],
)
def test_refusals_change_nothing(lab_grub, capsys, args, message):
    result = run(args, capsys)
    assert result["failed"] is True and message in result["msg"]
    assert lab_grub.read(DROPIN) is None and lab_grub.calls == []


def test_refresh_failure_is_reported(tmp_path, monkeypatch, capsys):
    host = Host(tmp_path, monkeypatch, rc=1)
    host.write("boot/grub/grub.cfg", "x\n")
    result = run({"params": ["iommu=pt"]}, capsys)
    assert result["failed"] is True and result["changed"] is True
    assert "update-grub failed (rc=1): boom" in result["msg"]


def test_documentation_matches_argument_spec_and_examples_validate():
    doc = yaml.safe_load(kernel_cmdline.DOCUMENTATION)
    spec = kernel_cmdline.ARGUMENT_SPEC
    assert set(doc["options"]) == set(spec)
    for name, option in doc["options"].items():
        for key in ("type", "default", "choices", "required"):
            assert option.get(key) == spec[name].get(key), (name, key)
    tasks = [t for t in yaml.safe_load(kernel_cmdline.EXAMPLES) if "onprem.gpu_server.kernel_cmdline" in t]
    assert len(tasks) == 4
    for task in tasks:
        args = task["onprem.gpu_server.kernel_cmdline"]
        assert ArgumentSpecValidator(spec).validate(args).error_messages == []
        normalize_params(args["params"], args.get("state", "present"))  # raises on a bad example
    returned = set(yaml.safe_load(kernel_cmdline.RETURN))
    assert {"bootloader", "reboot_required", "reboot_params", "refresh_command"} <= returned
