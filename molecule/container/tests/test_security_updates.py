"""The security_updates role, judged by unattended-upgrades itself: a dry run (``unattended-upgrade --dry-run -d``)
against the Debian mirror's security archive, in the container.

prepare.yml holds one installed package that the security archive updates (it stands for a driver a role
holds); the base role's Molecule vars pin and hold ``tree``. The dry run must allow the security archive only,
start with both in its blacklist, and leave the held package out of what it would upgrade.
"""

from __future__ import annotations

import re

import pytest


@pytest.fixture(scope="module")
def dry_run(host) -> str:
    result = host.run("unattended-upgrade --dry-run -d")
    assert result.rc == 0, result.stderr
    return result.stdout + result.stderr


def _line(output: str, prefix: str) -> str:
    found = [line[len(prefix):].strip() for line in output.splitlines() if line.startswith(prefix)]
    assert found, f"no '{prefix}' line in the dry run"
    return found[0]


def test_only_the_security_archive_is_allowed(dry_run: str) -> None:
    assert _line(dry_run, "Allowed origins are:") == "origin=Debian,codename=bookworm-security,label=Debian-Security"


def test_held_and_pinned_packages_start_in_the_blacklist(host, dry_run: str) -> None:
    blacklist = _line(dry_run, "Initial blacklist:").split()
    assert "^tree$" in blacklist
    assert "^nvidia-" in blacklist and "^zfs" in blacklist
    held = host.file("/root/held-with-security-update").content_string.strip()
    if held:
        assert f"^{re.escape(held)}$" in blacklist


def test_the_held_package_is_not_upgraded_while_other_security_updates_are(host, dry_run: str) -> None:
    held = host.file("/root/held-with-security-update").content_string.strip()
    if not held:
        pytest.skip("the security archive had no update for any package of this image today: nothing to exclude")
    upgraded = _line(dry_run, "Packages that will be upgraded:").split() \
        if "Packages that will be upgraded:" in dry_run else []
    print(f"\nheld: {held}; the dry run would upgrade: {' '.join(upgraded) or 'nothing else'}")
    assert held not in upgraded
    assert held in host.check_output("apt list --upgradable 2>/dev/null"), "the held package has no update after all"


def test_no_automatic_reboot(host) -> None:
    settings = host.check_output("apt-config dump Unattended-Upgrade::Automatic-Reboot")
    assert 'Unattended-Upgrade::Automatic-Reboot "false";' in settings
