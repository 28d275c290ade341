"""power_budget for both machines."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.onprem.gpu_server.plugins.filter.power_budget import power_budget

XC740XD = {
    "psus": [1600, 1600],
    "redundant": True,
    "efficiency": 0.92,  # 80 Plus Platinum at about half load
    "components": [{"name": "Xeon 8270", "watts": 205, "count": 2}, {"name": "RTX 4000 Ada", "watts": 130, "count": 4}],
    "typical_w": 1500,
    "peak_w": 1700,
    "ups": {"va": 3000, "watts": 2100},
}
WORKSTATION = {"psus": [1600, 1000], "efficiency": 0.94, "sustained_w": 2200, "ups": {"va": 3000, "watts": 2700}}


def test_xc740xd_redundancy_and_ups_headroom():
    result = power_budget(XC740XD)
    assert result["components_w"] == 2 * 205 + 4 * 130
    assert result["psu"]["usable_w"] == 1600  # N+1 keeps one 1600 W supply, not 3200 W
    assert result["psu"]["peak_dc_w"] == pytest.approx(1700 * 0.92)
    assert "power.psus: peak DC load 1564 W is 98% of the 1600 W usable" in result["warnings"]
    assert "power.ups: peak 1700 W is 81% of the UPS's 2100 W" in result["warnings"]
    assert result["ok"]


def test_xc740xd_peak_without_platinum_efficiency_loses_redundancy():
    result = power_budget(dict(XC740XD, efficiency=0.88, peak_w=1850))
    assert "with one PSU failed (redundancy is lost at this load)" in result["errors"][0]


@pytest.mark.parametrize(
    ("volts", "amps", "ok", "continuous"),
    [(120, 15, False, 1440), (120, 20, False, 1920), (230, 16, True, 2944), (230, 20, True, 3680)],
)
def test_workstation_circuit(volts, amps, ok, continuous):
    result = power_budget(dict(WORKSTATION, circuit={"volts": volts, "amps": amps}))
    assert result["circuit"]["continuous_w"] == continuous
    assert result["ok"] is ok
    if not ok:
        assert result["errors"][0].startswith(f"power.circuit: continuous load 2200 W exceeds the {continuous} W")


def test_workstation_psus_without_redundancy():
    result = power_budget(WORKSTATION)
    assert result["psu"]["usable_w"] == 2600
    assert "power.psus: several PSUs without redundancy; losing any one stops the machine" in result["warnings"]


def test_ups_from_va_and_overload():
    result = power_budget({"psus": [2000], "peak_w": 2800, "ups": {"va": 3000}})
    assert result["ups"]["watts"] == pytest.approx(2700)
    assert "power.ups: peak 2800 W at the wall exceeds the UPS's 2700 W" in result["errors"]
    assert any(w.startswith("power.ups: watts not given") for w in result["warnings"])


@pytest.mark.parametrize(
    ("power", "message"),
    [
        ({}, "power.psus: at least one PSU rating"),
        ({"psus": 1600}, "power.psus: expected a list"),
        ({"psus": [1600], "redundant": True}, "power.redundant: redundancy needs at least two PSUs"),
        ({"psus": [0]}, "power.psus[0]: must be > 0"),
        ({"psus": [1600], "efficiency": 1.2}, "power.efficiency: must be at most 1"),
        ({"psus": [1600], "components": [{"name": "gpu"}]}, "power.components[0].watts: expected a number"),
        ({"psus": [1600], "components": [{"watts": 1, "qty": 2}]}, "power.components[0]: unknown key(s) qty"),
        ({"psus": [1600], "ups": {}}, "power.ups: give watts or va"),
        ({"psus": [1600], "circuit": {"volts": 120}}, "power.circuit.amps: expected a number"),
        ({"psus": [1600], "pdu": 1}, "power: unknown key(s) pdu"),
    ],
)
def test_malformed_input(power, message):
    with pytest.raises(AnsibleFilterError) as err:
        power_budget(power)
    assert str(err.value).startswith("power_budget: ")
    assert message in str(err.value)
