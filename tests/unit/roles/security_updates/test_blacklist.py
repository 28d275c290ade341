"""security_updates: the unattended-upgrades blacklist built from the host's holds and apt preferences, evaluated
with Ansible's templar, then used the way unattended-upgrades uses it (re.match of each entry on the package name).

The inputs are what ``apt-mark showhold`` and the ``Package:`` lines of /etc/apt/preferences.d print: plain names,
apt's glob patterns and apt's /regex/ form (apt_preferences(5))."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip("ansible")
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar
from fixtures.templating import trusted

ROLE = Path(__file__).resolve().parents[4] / "roles" / "security_updates"


def _blacklist(held: list[str], pinned: list[str]) -> list[str]:
    tasks = {t["name"]: t for t in yaml.safe_load((ROLE / "tasks" / "main.yml").read_text())}
    expression = tasks["Exclusions | one list"]["ansible.builtin.set_fact"]["__security_updates_blacklist"]
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    variables: dict[str, Any] = dict(defaults, __security_updates_held={"stdout_lines": held},
                                     __security_updates_pinned={"stdout_lines": pinned})
    return list(Templar(loader=DataLoader(), variables=variables).template(trusted(expression)))


def _excluded(blacklist: list[str], package: str) -> bool:
    return any(re.match(entry, package) for entry in blacklist)


def test_held_and_pinned_names_are_excluded_exactly() -> None:
    blacklist = _blacklist(["tree", "linux-image-6.1.0-28-amd64"], ["docker-ce docker-ce-cli", "tree"])
    for package in ["tree", "linux-image-6.1.0-28-amd64", "docker-ce", "docker-ce-cli"]:
        assert _excluded(blacklist, package), package
    # Anchored: a held "tree" does not exclude "treesheets", and a held kernel does not exclude the next one.
    assert not _excluded(blacklist, "treesheets")
    assert not _excluded(blacklist, "linux-image-6.1.0-29-amd64")
    assert blacklist.count("^tree$") == 1


def test_apt_glob_and_regex_pins_become_the_same_patterns() -> None:
    blacklist = _blacklist([], ["mlnx-ofed-* libibverbs?", "/^linux-(image|headers)-6\\.1\\./"])
    assert _excluded(blacklist, "mlnx-ofed-kernel-dkms")
    assert _excluded(blacklist, "libibverbs1")
    assert _excluded(blacklist, "linux-headers-6.1.0-28-amd64")
    assert not _excluded(blacklist, "linux-image-6.12.9-amd64")
    # "?" is one character and the name is anchored: neither the bare name nor a longer one.
    assert not _excluded(blacklist, "libibverbs")
    assert not _excluded(blacklist, "libibverbs1-dev")
    # The dot of a name is literal.
    assert not _excluded(_blacklist(["libc6.1"], []), "libc6x1")


def test_role_owned_families_are_excluded_without_any_hold() -> None:
    blacklist = _blacklist([], [])
    for package in ["nvidia-driver", "libnvidia-ml1", "zfsutils-linux", "zfs-dkms", "libzfs4linux", "docker-ce",
                    "containerd.io", "datacenter-gpu-manager"]:
        assert _excluded(blacklist, package), package
    for package in ["openssh-server", "libssl3", "linux-image-amd64", "tzdata"]:
        assert not _excluded(blacklist, package), package


def test_empty_lines_add_nothing() -> None:
    assert _blacklist(["", "  "], [""]) == _blacklist([], [])
