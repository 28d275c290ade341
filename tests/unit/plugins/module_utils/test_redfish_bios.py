"""BIOS attributes against a Redfish attribute registry: the registry and current attributes are the recorded
responses of sushy-tools 2.2.0 (tests/unit/fixtures/redfish/sushy-tools-2.2.0/SOURCES.md)."""

from __future__ import annotations

import json

import pytest
from fixtures import recorded

from ansible_collections.onprem.gpu_server.plugins.module_utils.redfish import bios

READ = recorded.reader("redfish/sushy-tools-2.2.0")
REGISTRY = json.loads(READ("bios-registry.json"))
BIOS = json.loads(READ("bios.json"))
CURRENT = BIOS["Attributes"]
REGISTRY_ID = BIOS["AttributeRegistry"]


def test_the_recorded_bios_names_the_registry_the_bmc_publishes() -> None:
    assert REGISTRY_ID == REGISTRY["Id"] == "BiosAttributeRegistryP89.v1_0_0"
    index = bios.registry_index(REGISTRY)
    assert set(index) == set(CURRENT)
    assert index["EmbeddedSata"]["Type"] == "Enumeration"


def test_accepted_values_of_each_type() -> None:
    desired = {"ProcTurboMode": "Disabled", "EmbeddedSata": "Ahci", "QuietBoot": False, "L2Cache": "20x256 KB"}
    assert bios.validate(desired, REGISTRY, CURRENT, REGISTRY_ID) == []


@pytest.mark.parametrize(
    ("desired", "reason"),
    [
        (
            {"SriovGlobalEnable": "Enabled"},
            "SriovGlobalEnable: the BMC's attribute registry BiosAttributeRegistryP89.v1_0_0 has no such attribute",
        ),
        (
            {"EmbeddedSata": "Nvme"},
            "EmbeddedSata: 'Nvme' is not one of its allowed values ['Ata', 'Ahci', 'Raid', 'Off']",
        ),
        ({"BootMode": "uefi"}, "BootMode: 'uefi' is not one of its allowed values ['Bios', 'Uefi']"),
        ({"NumCores": 12}, "NumCores is read-only in the BMC's registry"),
        ({"SecureBootStatus": "Disabled"}, "SecureBootStatus is read-only in the BMC's registry"),
        ({"QuietBoot": "maybe"}, "QuietBoot: 'maybe' is not a boolean"),
        ({"SysPassword": "hunter2"}, "SysPassword is a password attribute; BIOS passwords are not managed here"),
    ],
)
def test_refusals_name_the_attribute_and_the_registry(desired: dict, reason: str) -> None:
    assert bios.validate(desired, REGISTRY, CURRENT, REGISTRY_ID) == [reason]


def test_every_refusal_is_reported_at_once_in_name_order() -> None:
    errors = bios.validate(
        {"Zeta": 1, "EmbeddedSata": "Nvme", "ProcTurboMode": "Enabled"}, REGISTRY, CURRENT, REGISTRY_ID
    )
    assert [e.split(":")[0] for e in errors] == ["EmbeddedSata", "Zeta"]


def test_integer_bounds_and_string_limits_from_a_registry_entry() -> None:
    registry = {
        "RegistryEntries": {
            "Attributes": [
                {
                    "AttributeName": "MemFrequency",
                    "Type": "Integer",
                    "LowerBound": 2400,
                    "UpperBound": 3200,
                    "ScalarIncrement": 266,
                    "ReadOnly": False,
                },
                {"AttributeName": "AssetTag", "Type": "String", "MaxLength": 8, "ValueExpression": "^[A-Z0-9]*$"},
            ]
        }
    }
    assert bios.validate({"MemFrequency": 2932}, registry, {}, "r") == []
    assert bios.validate({"MemFrequency": 3300}, registry, {}, "r") == ["MemFrequency: 3300 is outside 2400..3200"]
    assert bios.validate({"MemFrequency": 2500}, registry, {}, "r") == [
        "MemFrequency: 2500 is not 2400 plus a multiple of 266"
    ]
    assert bios.validate({"MemFrequency": True}, registry, {}, "r") == ["MemFrequency: True is not an integer"]
    assert bios.validate({"AssetTag": "RACK-12"}, registry, {}, "r") == [
        "AssetTag: 'RACK-12' does not match '^[A-Z0-9]*$'"
    ]
    assert bios.validate({"AssetTag": "ABCDEFGHI"}, registry, {}, "r") == ["AssetTag: longer than 8 characters"]


def test_without_a_registry_only_names_the_bios_reports_are_accepted() -> None:
    assert bios.validate({"ProcTurboMode": "Anything"}, None, CURRENT, None) == []
    assert bios.validate({"ProcVirtualization": "Enabled"}, None, CURRENT, None) == [
        "ProcVirtualization: the BIOS reports no such attribute (the BMC publishes no attribute registry)"
    ]


def test_drift_compares_in_the_registry_type() -> None:
    # The emulator stores strings: "true" for a boolean, "10" for an integer.
    assert bios.drift({"QuietBoot": True, "NumCores": 10, "BootMode": "Uefi"}, CURRENT, REGISTRY) == {}
    assert bios.drift({"QuietBoot": False, "ProcTurboMode": "Disabled"}, CURRENT, REGISTRY) == {
        "ProcTurboMode": {"current": "Enabled", "desired": "Disabled"},
        "QuietBoot": {"current": "true", "desired": False},
    }
    # An attribute the BIOS does not report is drift too (the registry check refuses it before this is asked).
    assert bios.drift({"Missing": "x"}, CURRENT, REGISTRY) == {"Missing": {"current": None, "desired": "x"}}


def test_payload_types_values_as_the_registry_does() -> None:
    body = bios.payload({"QuietBoot": "false", "NumCores": "12", "EmbeddedSata": "Ahci"}, REGISTRY)
    assert body == {"QuietBoot": False, "NumCores": 12, "EmbeddedSata": "Ahci"}
