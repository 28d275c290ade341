"""Render the GPU stack roles' variables and templates as Ansible would, with facts of a chosen host."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from typing import Any

import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template
from fixtures.templating import trusted

REPO_ROOT = Path(__file__).resolve().parents[4]
ROLES = REPO_ROOT / "roles"

FACTS = {
    "debian12": {
        "distribution": "Debian",
        "distribution_major_version": "12",
        "distribution_version": "12.8",
        "distribution_release": "bookworm",
        "os_family": "Debian",
        "kernel": "6.1.0-28-amd64",
    },
    "ubuntu2204": {
        "distribution": "Ubuntu",
        "distribution_major_version": "22",
        "distribution_version": "22.04",
        "distribution_release": "jammy",
        "os_family": "Debian",
        "kernel": "5.15.0-125-generic",
    },
}


def role_vars(*roles: str) -> dict[str, Any]:
    """defaults/main.yml then vars/main.yml of each role, in order."""
    variables: dict[str, Any] = {}
    for role in roles:
        for part in ("defaults", "vars"):
            path = ROLES / role / part / "main.yml"
            if path.is_file():
                variables.update(yaml.safe_load(path.read_text()) or {})
    return variables


class Host:
    """A host's variables (role files, facts, overrides) and a templar over them."""

    def __init__(self, roles: tuple[str, ...], facts: str = "debian12", **overrides: Any) -> None:
        self.variables = role_vars(*roles)
        self.variables.update(
            ansible_managed="Ansible managed: test",
            ansible_facts=FACTS[facts],
            inventory_hostname="lab-workstation",
            ansible_check_mode=False,
        )
        self.variables.update(overrides)
        self.templar = Templar(loader=DataLoader(), variables=trusted(self.variables))

    def value(self, name: str) -> Any:
        """The templated value of one variable."""
        return self.templar.template(trusted(self.variables[name]))

    def expr(self, expression: str) -> Any:
        return self.templar.template(trust_as_template("{{ " + expression + " }}"))

    def render(self, role: str, template: str, **local: Any) -> str:
        text = (ROLES / role / "templates" / template).read_text()
        templar = self.templar.copy_with_new_env(available_variables=trusted({**self.variables, **local}))
        return templar.template(trust_as_template(text))


def deb822(text: str) -> list[dict[str, str]]:
    """Parse deb822 stanzas (sources, apt preferences), comments dropped."""
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        if not line.strip():
            if current:
                stanzas.append(current)
                current = {}
            continue
        key, sep, value = line.partition(":")
        assert sep, f"not a deb822 field: {line!r}"
        current[key.strip()] = value.strip()
    if current:
        stanzas.append(current)
    return stanzas


def apt_priority(pref_files: dict[str, str], package: str, version: str, origin: str, default: int = 500) -> int:
    """Priority apt gives one package version: preferences.d files in name order, first matching record wins.

    Covers what these roles write: glob package lists, ``Pin: version <glob>`` and ``Pin: origin <host>``.
    """
    for name in sorted(pref_files):
        for stanza in deb822(pref_files[name]):
            if not any(fnmatch.fnmatchcase(package, p) for p in stanza["Package"].split()):
                continue
            kind, _, arg = stanza["Pin"].partition(" ")
            if kind == "version" and fnmatch.fnmatchcase(version, arg):
                return int(stanza["Pin-Priority"])
            if kind == "origin" and origin == arg:
                return int(stanza["Pin-Priority"])
    return default


def candidate(pref_files: dict[str, str], package: str, offers: list[tuple[str, str]]) -> tuple[str, str] | None:
    """The (version, origin) apt installs from ``offers``: highest priority, then highest version; -1 never."""
    ranked = [(apt_priority(pref_files, package, v, o), _vkey(v), v, o) for v, o in offers]
    ranked = [r for r in ranked if r[0] >= 0]
    if not ranked:
        return None
    best = max(ranked)
    return best[2], best[3]


def _vkey(version: str) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in re.split(r"[^0-9A-Za-z]+", version)]
