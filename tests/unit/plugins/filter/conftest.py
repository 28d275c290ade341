"""Fixtures for the planning filter tests."""

from __future__ import annotations

import pytest
from plan_specs import XC740XD_VMS


@pytest.fixture
def xc740xd_vms():
    """A fresh copy of the XC740XD VM table, so a test cannot leak edits into another."""
    return [dict(vm) for vm in XC740XD_VMS]
