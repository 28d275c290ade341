"""Every filter is registered under its file's name and has an ansible-doc sidecar."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml

FILTER_DIR = Path(__file__).resolve().parents[4] / "plugins" / "filter"
MODULES = sorted(p.stem for p in FILTER_DIR.glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("module", MODULES)
def test_each_filter_has_documentation(module):
    mod = importlib.import_module(f"ansible_collections.onprem.gpu_server.plugins.filter.{module}")
    filters = mod.FilterModule().filters()
    assert module in filters
    for name, func in filters.items():
        doc = yaml.safe_load((FILTER_DIR / f"{name}.yml").read_text())
        assert doc["DOCUMENTATION"]["name"] == name
        assert doc["EXAMPLES"].count(f"onprem.gpu_server.{name}") >= 1
        assert "_value" in doc["RETURN"]
        assert func.__doc__
