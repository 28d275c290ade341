"""kernel_cmdline planning: GRUB drop-in and /etc/kernel/cmdline, as tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_collections.onprem.gpu_server.plugins.module_utils.bootloader.cmdline import normalize_params
from ansible_collections.onprem.gpu_server.plugins.module_utils.bootloader.grub import (
    GrubFile,
    dropin_tokens,
    evaluate,
    render_dropin,
    shell_value,
)
from ansible_collections.onprem.gpu_server.plugins.module_utils.bootloader.planner import PlanError, plan

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "cmdline"
# Sources: cmdline/SOURCES.md (Debian 12 grub2-common default file; the lab VM's 10-lab.cfg).
DEBIAN_DEFAULT = (FIXTURES / "etc-default-grub_debian12_grub2-common_2.06-13+deb12u2.txt").read_text()
LAB_DROPIN = (FIXTURES / "etc-default-grub.d-10-lab.cfg_labvm-recipe.txt").read_text()
OURS = "/etc/default/grub.d/99-onprem-gpu-server.cfg"
LAB = "/etc/default/grub.d/10-lab.cfg"
IOMMU = {"intel_iommu": "on", "iommu": "pt"}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('"quiet"', "quiet"),
        ("'a $b'", "a $b"),
        ('"${X} y"', "base y"),
        ('"$X"\' z\'', "base z"),
        ('plain # comment', "plain"),
        (r'"a \"b\" \$c"', 'a "b" $c'),
    ],
)
def test_shell_value(text, value):
    assert shell_value(text, {"X": "base"}) == value


def test_debian_default_file_is_understood():
    result = evaluate([GrubFile("/etc/default/grub", DEBIAN_DEFAULT)])
    assert result.tokens == ["quiet"]
    assert result.problems == []  # the back-quoted GRUB_DISTRIBUTOR is not a cmdline variable


def test_dropin_round_trip():
    tokens = ["intel_iommu=on", 'dyndbg="file x.c +p"', "quiet"]
    assert dropin_tokens(render_dropin(tokens)) == tokens


def grub(params, state="present", dropins=None, running="", default=DEBIAN_DEFAULT):
    return plan("grub", normalize_params(params, state), state, running, "99-onprem-gpu-server",
                grub_default=default, grub_dropins=dropins or {})


# (name, params, state, dropins, running) -> (drop-in tokens after or None, configured, reboot keys, warning)
GRUB_CASES = [
    ("fresh-debian", IOMMU, "present", {}, "BOOT_IMAGE=/vmlinuz ro quiet",
     ["intel_iommu=on", "iommu=pt"], "quiet intel_iommu=on iommu=pt", ["intel_iommu", "iommu"], None),
    ("already-booted", IOMMU, "present", {OURS: render_dropin(["intel_iommu=on", "iommu=pt"])},
     "BOOT_IMAGE=/vmlinuz ro quiet intel_iommu=on iommu=pt",
     ["intel_iommu=on", "iommu=pt"], "quiet intel_iommu=on iommu=pt", [], None),
    ("lab-vm-adds-iommu-pt", {"iommu": "pt"}, "present", {LAB: LAB_DROPIN},
     "BOOT_IMAGE=/boot/vmlinuz root=LABEL=labroot ro console=ttyS0,115200 net.ifnames=0 intel_iommu=on",
     ["iommu=pt"], "console=ttyS0,115200 net.ifnames=0 intel_iommu=on iommu=pt", ["iommu"], None),
    ("replace-own-value", {"iommu": "pt"}, "present", {OURS: render_dropin(["iommu=off", "quiet"])}, "",
     ["iommu=pt", "quiet"], "quiet iommu=pt quiet", ["iommu"], None),
    ("conflict-in-default-file-warns", {"intel_iommu": "on"}, "present", {},
     "intel_iommu=off intel_iommu=on", ["intel_iommu=on"], "quiet intel_iommu=off intel_iommu=on", [],
     "/etc/default/grub also sets intel_iommu=off"),
    ("absent-removes-own", ["quiet"], "absent", {OURS: render_dropin(["quiet", "iommu=pt"])}, "iommu=pt",
     ["iommu=pt"], "quiet iommu=pt", ["quiet"], "still set by /etc/default/grub"),
    ("absent-last-param-removes-file", ["iommu"], "absent", {OURS: render_dropin(["iommu=pt"])}, "quiet",
     None, "quiet", [], None),
]


@pytest.mark.parametrize(("name", "params", "state", "dropins", "running", "after", "configured", "reboot", "warning"),
                         GRUB_CASES, ids=[case[0] for case in GRUB_CASES])
def test_plan_grub(name, params, state, dropins, running, after, configured, reboot, warning):
    # The conflict case edits a copy of the Debian default: GRUB_CMDLINE_LINUX_DEFAULT="quiet intel_iommu=off".
    default = DEBIAN_DEFAULT.replace('="quiet"', '="quiet intel_iommu=off"') if "conflict" in name else DEBIAN_DEFAULT
    result = grub(params, state, dropins, running, default)
    assert result.path == OURS
    assert (dropin_tokens(result.after) if result.after is not None else None) == after
    assert " ".join(result.configured) == configured
    assert result.reboot_keys == reboot
    assert result.changed == (result.before != result.after)
    if warning:
        assert any(warning in text for text in result.warnings), result.warnings
    else:
        assert result.warnings == []


def test_grub_second_run_changes_nothing():
    first = grub(IOMMU)
    second = grub(IOMMU, dropins={OURS: first.after})
    assert first.changed and not second.changed


def test_grub_refuses_when_later_file_resets_the_variable():
    later = {"/etc/default/grub.d/zz-cloud.cfg": 'GRUB_CMDLINE_LINUX_DEFAULT="console=tty1"\n'}
    with pytest.raises(PlanError, match=r"sourced after .*overrides it: /etc/default/grub\.d/zz-cloud\.cfg"):
        grub(IOMMU, dropins=later)


def test_grub_refuses_foreign_file_at_own_path():
    with pytest.raises(PlanError, match="not managed by this module"):
        grub(IOMMU, dropins={OURS: 'GRUB_CMDLINE_LINUX_DEFAULT="x"\n'})


def test_grub_reports_unevaluated_lines():
    result = grub(IOMMU, default='GRUB_CMDLINE_LINUX="$(cat /x)"\nGRUB_CMDLINE_LINUX_DEFAULT+=" a"\n')
    assert len(result.warnings) == 2


PVE = "root=ZFS=rpool/ROOT/pve-1 boot=zfs\n"
SD_CASES = [
    ("add", IOMMU, "present", PVE, "initrd=\\EFI\\proxmox\\initrd.img root=ZFS=rpool/ROOT/pve-1 boot=zfs",
     "root=ZFS=rpool/ROOT/pve-1 boot=zfs intel_iommu=on iommu=pt\n", ["intel_iommu", "iommu"]),
    ("unchanged", IOMMU, "present", "root=ZFS=rpool/ROOT/pve-1 boot=zfs intel_iommu=on iommu=pt\n",
     "root=ZFS=rpool/ROOT/pve-1 boot=zfs intel_iommu=on iommu=pt",
     "root=ZFS=rpool/ROOT/pve-1 boot=zfs intel_iommu=on iommu=pt\n", []),
    ("duplicates-collapse", {"iommu": "pt"}, "present", "iommu=off root=x iommu=pt\n", "iommu=off root=x iommu=pt",
     "iommu=pt root=x\n", ["iommu"]),
    ("remove", ["quiet"], "absent", "root=x quiet\n", "root=x quiet", "root=x\n", ["quiet"]),
]


@pytest.mark.parametrize(("name", "params", "state", "text", "running", "after", "reboot"), SD_CASES,
                         ids=[case[0] for case in SD_CASES])
def test_plan_systemd_boot(name, params, state, text, running, after, reboot):
    result = plan("systemd-boot", normalize_params(params, state), state, running, "unused", kernel_cmdline=text)
    assert result.path == "/etc/kernel/cmdline"
    assert result.after == after
    assert result.reboot_keys == reboot
    assert result.changed == (text != after)
    assert bool(result.warnings) == (name == "duplicates-collapse")


@pytest.mark.parametrize(("text", "message"), [(None, "does not exist"), ("a\nb\n", "single line")])
def test_plan_systemd_boot_refuses(text, message):
    with pytest.raises(PlanError, match=message):
        plan("systemd-boot", normalize_params(IOMMU), "present", "", "x", kernel_cmdline=text)
