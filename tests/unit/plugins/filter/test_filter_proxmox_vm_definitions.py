"""The proxmox_vm_definitions filter: the XC740XD plan in, schema-valid VM parameters out."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.onprem.gpu_server.plugins.filter.proxmox_vm_definitions import (
    FilterModule,
    proxmox_vm_definitions,
)

PLAN = (
    Path(__file__).resolve().parents[4]
    / "inventories"
    / "examples"
    / "xc740xd"
    / "host_vars"
    / "xc740xd"
    / "host_plan.yml"
)


@pytest.fixture
def plan():
    return yaml.safe_load(PLAN.read_text())["host_plan"]


def test_registered():
    assert FilterModule().filters()["proxmox_vm_definitions"] is proxmox_vm_definitions


def test_options_reach_the_parameters(plan):
    result = proxmox_vm_definitions(plan, {"bridge": "vmbr2", "efi_storage": "efivars"})
    assert [d["params"]["net0"].split(",")[1] for d in result] == ["bridge=vmbr2"] * 4
    assert {d["params"]["efidisk0"].split(",")[0] for d in result} == {"efivars:1"}


def test_gpu_twice_is_a_filter_error_naming_the_variable(plan):
    plan["intent"]["vms"]["data-pipeline"]["gpus"] = ["gpu3"]
    with pytest.raises(AnsibleFilterError, match=r"proxmox_vm_definitions: .*vms\.(data-pipeline|llm-inference)\.gpus"):
        proxmox_vm_definitions(plan)


def test_not_a_plan_is_a_filter_error():
    with pytest.raises(AnsibleFilterError, match="host_plan: expected a mapping"):
        proxmox_vm_definitions(["not", "a", "plan"])
