"""Every role's defaults/main.yml and its main entry point's argument spec describe the same variables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROLES_DIR = Path(__file__).resolve().parents[2] / "roles"
ROLES = sorted(p.name for p in ROLES_DIR.iterdir() if (p / "tasks").is_dir()) if ROLES_DIR.is_dir() else []


def _load(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _main_options(role: str) -> dict[str, dict[str, Any]]:
    spec_file = ROLES_DIR / role / "meta" / "argument_specs.yml"
    assert spec_file.is_file(), f"{role}: meta/argument_specs.yml is missing"
    specs = _load(spec_file)["argument_specs"]
    assert "main" in specs, f"{role}: argument_specs has no main entry point"
    return specs["main"].get("options") or {}


def _defaults(role: str) -> dict[str, Any]:
    """defaults/main.yml, or every file of a defaults/main/ directory (Ansible reads both forms)."""
    defaults_file = ROLES_DIR / role / "defaults" / "main.yml"
    if defaults_file.is_file():
        return _load(defaults_file) or {}
    merged: dict[str, Any] = {}
    for part in sorted((ROLES_DIR / role / "defaults" / "main").glob("*.yml")):
        merged.update(_load(part) or {})
    return merged


def test_roles_found() -> None:
    assert ROLES, f"no roles under {ROLES_DIR}"


@pytest.mark.parametrize("role", ROLES)
def test_every_default_is_specified(role: str) -> None:
    options = _main_options(role)
    missing = sorted(set(_defaults(role)) - set(options))
    assert not missing, f"{role}: defaults/main.yml keys without an argument spec: {missing}"


@pytest.mark.parametrize("role", ROLES)
def test_every_spec_default_is_in_defaults(role: str) -> None:
    defaults = _defaults(role)
    options = _main_options(role)
    missing = sorted(name for name, opt in options.items() if "default" in opt and name not in defaults)
    assert not missing, f"{role}: argument spec defaults missing from defaults/main.yml: {missing}"


@pytest.mark.parametrize("role", ROLES)
def test_spec_defaults_equal_role_defaults(role: str) -> None:
    defaults = _defaults(role)
    options = _main_options(role)
    differing = {
        name: (opt.get("default"), defaults[name])
        for name, opt in options.items()
        if name in defaults and opt.get("default") != defaults[name]
    }
    assert not differing, f"{role}: spec default != defaults/main.yml (spec, defaults): {differing}"


@pytest.mark.parametrize("role", ROLES)
def test_optional_defaults_are_declared(role: str) -> None:
    # A variable in defaults/main.yml whose spec has no default would validate as null.
    defaults = _defaults(role)
    options = _main_options(role)
    undeclared = sorted(name for name in defaults if name in options and "default" not in options[name])
    assert not undeclared, f"{role}: spec lacks the default that defaults/main.yml sets: {undeclared}"


@pytest.mark.parametrize("role", ROLES)
def test_public_variables_are_prefixed(role: str) -> None:
    names = set(_defaults(role)) | set(_main_options(role))
    unprefixed = sorted(name for name in names if not name.startswith(f"{role}_"))
    assert not unprefixed, f"{role}: public variables must start with '{role}_': {unprefixed}"
