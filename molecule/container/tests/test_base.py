"""Checks of the state that role onprem.gpu_server.base leaves on a systemd container."""

from __future__ import annotations

import re

import pytest

BASELINE = ["ca-certificates", "curl", "gnupg", "jq", "lsof", "pciutils", "ethtool", "numactl", "rsync", "tmux"]
PIN_FILE = "/etc/apt/preferences.d/lab-tree.pref"
CHRONY_SOURCES = "/etc/chrony/sources.d/onprem-gpu-server.sources"
JOURNALD_DROPIN = "/etc/systemd/journald.conf.d/50-onprem-gpu-server.conf"
CAP_SYS_TIME = 25


@pytest.mark.parametrize("name", [*BASELINE, "chrony", "tree"])
def test_package_installed(host, name: str) -> None:
    assert host.package(name).is_installed


def test_chrony_enabled(host) -> None:
    assert host.service("chrony").is_enabled


def test_chrony_runs_where_the_clock_can_be_set(host) -> None:
    cap_bnd = int(re.search(r"CapBnd:\s*([0-9a-f]+)", host.file("/proc/1/status").content_string).group(1), 16)
    show = host.check_output("systemctl show chrony.service -p ActiveState -p ConditionResult")
    if cap_bnd >> CAP_SYS_TIME & 1:
        assert "ActiveState=active" in show
    else:
        # systemd itself declines to start it (ConditionCapability=CAP_SYS_TIME); nothing failed.
        assert "ConditionResult=no" in show
        assert "ActiveState=inactive" in show


def test_chrony_sources_dropin(host) -> None:
    sources = host.file(CHRONY_SOURCES)
    assert sources.is_file
    assert sources.mode == 0o644
    lines = [line for line in sources.content_string.splitlines() if line and not line.startswith("#")]
    assert lines == ["server ntp1.lab.invalid iburst", "server ntp2.lab.invalid iburst"]
    assert "Ansible managed" in sources.content_string
    # The package's own file is still the one that reads the drop-in directory.
    assert "sourcedir /etc/chrony/sources.d" in host.file("/etc/chrony/chrony.conf").content_string


def test_chrony_accepts_the_configuration(host) -> None:
    # chronyd parses the configuration and exits without touching the clock; the drop-in
    # directory it reports is the one holding our *.sources file (read when sources load).
    cmd = host.run("chronyd -p -f /etc/chrony/chrony.conf")
    assert cmd.rc == 0, cmd.stderr
    assert "sourcedir /etc/chrony/sources.d" in cmd.stdout.splitlines()


def test_journald_dropin(host) -> None:
    dropin = host.file(JOURNALD_DROPIN)
    assert dropin.is_file
    assert "Storage=persistent" in dropin.content_string
    assert "SystemMaxUse=200M" in dropin.content_string


def test_journal_is_on_disk(host) -> None:
    journal_dir = host.file("/var/log/journal")
    assert journal_dir.is_directory
    assert journal_dir.group == "systemd-journal"
    machine_id = host.file("/etc/machine-id").content_string.strip()
    assert host.file(f"/var/log/journal/{machine_id}/system.journal").is_file
    # journald reports the persistent journal as the one it writes to.
    header = host.check_output(f"journalctl --header --file /var/log/journal/{machine_id}/system.journal")
    assert "State: ONLINE" in header


def test_journal_size_cap_in_effect(host) -> None:
    # journald logs the limits it applies when it opens the persistent journal.
    out = host.check_output("journalctl -b -u systemd-journald --no-pager -o cat")
    assert re.search(r"System Journal \(/var/log/journal/[0-9a-f]+\) is .*max 200\.0M", out), out


def test_pin_file(host) -> None:
    pref = host.file(PIN_FILE)
    assert pref.is_file
    content = pref.content_string
    assert "Ansible managed" in content
    assert "Package: tree\n" in content
    assert "Pin: release n=bookworm\n" in content
    assert "Pin-Priority: 991\n" in content


def test_apt_applies_the_pin(host) -> None:
    policy = host.check_output("apt-cache policy tree")
    # The candidate version line carries the pin priority instead of the default 500.
    assert re.search(r"^\s+(\*\*\* )?\S+ 991$", policy, re.MULTILINE), policy


def test_package_held(host) -> None:
    held = host.check_output("apt-mark showhold").split()
    assert "tree" in held


def test_hold_record(host) -> None:
    record = host.file("/var/lib/onprem-gpu-server/apt-holds/lab-tree.list")
    assert [x for x in record.content_string.splitlines() if x and not x.startswith("#")] == ["tree"]
