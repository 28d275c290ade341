# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Power budget: components against PSUs, the UPS and the branch circuit."""

from __future__ import annotations

from typing import Any

from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan._common import (
    as_int,
    as_list,
    as_mapping,
    as_number,
    check_keys,
    fail,
)

# NEC 210.19(A)(1)/210.20(A): a continuous load (3 h or more) may use 80 % of the branch rating.
CONTINUOUS_FRACTION = 0.8
# PSUs and UPS above this share of their rating leave no margin for transients.
HEADROOM_FRACTION = 0.8
_KEYS = {"psus", "redundant", "efficiency", "components", "typical_w", "peak_w", "sustained_w", "ups", "circuit"}


def _components(power: Any) -> float:
    total = 0.0
    for index, raw in enumerate(as_list(power.get("components") or [], "power.components")):
        where = f"power.components[{index}]"
        item = as_mapping(raw, where)
        check_keys(item, {"name", "watts", "count"}, where)
        total += as_number(item.get("watts"), f"{where}.watts") * as_int(item.get("count", 1), f"{where}.count", 1)
    return total


def plan_power_budget(power: Any) -> dict[str, Any]:
    """Check the plan's loads; component watts are DC (PSU output), *_w figures are at the wall."""
    power = as_mapping(power, "power")
    check_keys(power, _KEYS, "power")
    errors: list[str] = []
    warnings: list[str] = []
    efficiency = as_number(power.get("efficiency", 0.9), "power.efficiency", minimum=0, allow_equal=False)
    if efficiency > 1:
        raise fail("power.efficiency", f"must be at most 1, got {efficiency}")
    components = _components(power)
    claims = {k: as_number(power[k], f"power.{k}") for k in ("typical_w", "peak_w", "sustained_w") if k in power}
    wall_components = components / efficiency
    peak_wall = max([wall_components, *claims.values()])
    continuous_wall = max([wall_components] + [claims[k] for k in ("typical_w", "sustained_w") if k in claims])

    psus = [
        as_number(w, f"power.psus[{i}]", 0, False) for i, w in enumerate(as_list(power.get("psus") or [], "power.psus"))
    ]
    if not psus:
        raise fail("power.psus", "at least one PSU rating in watts is required")
    redundant = bool(power.get("redundant", False))
    if redundant and len(psus) < 2:
        raise fail("power.redundant", "redundancy needs at least two PSUs")
    # N+1: the plan must survive losing the largest PSU.
    usable = sum(psus) - max(psus) if redundant else sum(psus)
    dc_peak = peak_wall * efficiency
    if dc_peak > usable:
        what = "with one PSU failed (redundancy is lost at this load)" if redundant else "of the PSUs"
        errors.append(f"power.psus: peak DC load {dc_peak:.0f} W exceeds the {usable:.0f} W {what}")
    elif dc_peak > HEADROOM_FRACTION * usable:
        warnings.append(
            f"power.psus: peak DC load {dc_peak:.0f} W is {dc_peak / usable:.0%} of the {usable:.0f} W usable"
        )
    if not redundant and len(psus) > 1:
        warnings.append("power.psus: several PSUs without redundancy; losing any one stops the machine")

    result: dict[str, Any] = {
        "components_w": components,
        "peak_wall_w": peak_wall,
        "continuous_wall_w": continuous_wall,
        "psu": {"installed_w": sum(psus), "usable_w": usable, "redundant": redundant, "peak_dc_w": dc_peak},
    }
    if power.get("ups") is not None:
        ups = as_mapping(power["ups"], "power.ups")
        check_keys(ups, {"va", "watts", "power_factor"}, "power.ups")
        if "watts" in ups:
            ups_w = as_number(ups["watts"], "power.ups.watts", 0, False)
        elif "va" in ups:
            ups_w = as_number(ups["va"], "power.ups.va", 0, False) * as_number(
                ups.get("power_factor", 0.9), "power.ups.power_factor", 0, False
            )
            warnings.append(f"power.ups: watts not given; assuming {ups_w:.0f} W from VA x power factor")
        else:
            raise fail("power.ups", "give watts or va")
        if peak_wall > ups_w:
            errors.append(f"power.ups: peak {peak_wall:.0f} W at the wall exceeds the UPS's {ups_w:.0f} W")
        elif peak_wall > HEADROOM_FRACTION * ups_w:
            warnings.append(f"power.ups: peak {peak_wall:.0f} W is {peak_wall / ups_w:.0%} of the UPS's {ups_w:.0f} W")
        result["ups"] = {"watts": ups_w, "load_fraction": peak_wall / ups_w}
    if power.get("circuit") is not None:
        circuit = as_mapping(power["circuit"], "power.circuit")
        check_keys(circuit, {"volts", "amps"}, "power.circuit")
        volts = as_number(circuit.get("volts"), "power.circuit.volts", 0, False)
        amps = as_number(circuit.get("amps"), "power.circuit.amps", 0, False)
        breaker = volts * amps
        continuous = breaker * CONTINUOUS_FRACTION
        if continuous_wall > continuous:
            errors.append(
                f"power.circuit: continuous load {continuous_wall:.0f} W exceeds the {continuous:.0f} W a "
                f"{volts:g} V {amps:g} A circuit may carry continuously (80 % of {breaker:.0f} W)"
            )
        if peak_wall > breaker:
            errors.append(f"power.circuit: peak {peak_wall:.0f} W exceeds the {breaker:.0f} W breaker rating")
        result["circuit"] = {
            "breaker_w": breaker,
            "continuous_w": continuous,
            "load_fraction": continuous_wall / continuous,
        }
    result.update({"ok": not errors, "errors": errors, "warnings": warnings})
    return result
