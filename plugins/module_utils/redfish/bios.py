# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""BIOS attributes against a Redfish attribute registry: validation, drift and the PATCH body.

The registry (DSP0270 AttributeRegistry, ``RegistryEntries.Attributes``) is the BMC's own description of its
BIOS: each attribute's name, type (Enumeration, String, Integer, Boolean, Password), allowed values, bounds and
whether it can be written. A BMC may store typed values (an iDRAC returns ``"Enabled"``, ``16``, ``true``) or
strings (sushy-tools stores ``str(value)``), so values are compared in the registry's type.
"""

from __future__ import annotations

import re
from typing import Any

TRUE_WORDS = ("true", "yes", "on", "enabled", "1")
FALSE_WORDS = ("false", "no", "off", "disabled", "0")


def registry_index(registry: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The registry's attributes by name ({} without a registry)."""
    if not registry:
        return {}
    entries = (registry.get("RegistryEntries") or {}).get("Attributes") or []
    return {entry["AttributeName"]: entry for entry in entries if isinstance(entry, dict) and "AttributeName" in entry}


def as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    return None


def as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
        return int(value)
    return None


def allowed_values(entry: dict[str, Any]) -> list[str]:
    return [str(v.get("ValueName")) for v in entry.get("Value") or [] if isinstance(v, dict)]


def check_value(name: str, value: Any, entry: dict[str, Any]) -> str | None:
    """Why the registry refuses this value for the attribute (None: it accepts it)."""
    kind = entry.get("Type")
    if as_bool(entry.get("ReadOnly")) or as_bool(entry.get("Immutable")):
        return f"{name} is read-only in the BMC's registry"
    if kind == "Password":
        return f"{name} is a password attribute; BIOS passwords are not managed here"
    if kind == "Enumeration":
        allowed = allowed_values(entry)
        if str(value) not in allowed:
            return f"{name}: {value!r} is not one of its allowed values {allowed}"
    elif kind == "Integer":
        number = as_int(value)
        if number is None:
            return f"{name}: {value!r} is not an integer"
        low, high = entry.get("LowerBound"), entry.get("UpperBound")
        if (low is not None and number < low) or (high is not None and number > high):
            return f"{name}: {number} is outside {low}..{high}"
        step = entry.get("ScalarIncrement")
        if step and low is not None and (number - low) % step:
            return f"{name}: {number} is not {low} plus a multiple of {step}"
    elif kind == "Boolean":
        if as_bool(value) is None:
            return f"{name}: {value!r} is not a boolean"
    elif kind == "String":
        text = str(value)
        if entry.get("MaxLength") is not None and len(text) > entry["MaxLength"]:
            return f"{name}: longer than {entry['MaxLength']} characters"
        if entry.get("MinLength") is not None and len(text) < entry["MinLength"]:
            return f"{name}: shorter than {entry['MinLength']} characters"
        if entry.get("ValueExpression") and not re.fullmatch(entry["ValueExpression"], text):
            return f"{name}: {text!r} does not match {entry['ValueExpression']!r}"
    return None


def validate(
    desired: dict[str, Any], registry: dict[str, Any] | None, current: dict[str, Any], registry_id: str | None
) -> list[str]:
    """Every reason the desired attributes cannot be written; [] when they all can.

    With a registry, names and values are checked against it. Without one, only names: an attribute the BIOS does
    not report is not one it has.
    """
    errors = []
    index = registry_index(registry)
    for name in sorted(desired):
        value = desired[name]
        if index:
            entry = index.get(name)
            if entry is None:
                errors.append(f"{name}: the BMC's attribute registry {registry_id} has no such attribute")
                continue
            reason = check_value(name, value, entry)
            if reason:
                errors.append(reason)
        elif name not in current:
            errors.append(f"{name}: the BIOS reports no such attribute (the BMC publishes no attribute registry)")
    return errors


def normalise(value: Any, kind: str | None) -> Any:
    if kind == "Boolean":
        flag = as_bool(value)
        return str(value) if flag is None else flag
    if kind == "Integer":
        number = as_int(value)
        return str(value) if number is None else number
    return str(value)


def drift(
    desired: dict[str, Any], current: dict[str, Any], registry: dict[str, Any] | None
) -> dict[str, dict[str, Any]]:
    """The attributes whose current value differs from the desired one, compared in the registry's type."""
    index = registry_index(registry)
    out = {}
    for name in sorted(desired):
        kind = index.get(name, {}).get("Type")
        if name not in current or normalise(current[name], kind) != normalise(desired[name], kind):
            out[name] = {"current": current.get(name), "desired": desired[name]}
    return out


def payload(attributes: dict[str, Any], registry: dict[str, Any] | None) -> dict[str, Any]:
    """The values as the registry types them (a YAML 'Enabled' stays a string, 16 an integer, true a boolean)."""
    index = registry_index(registry)
    out: dict[str, Any] = {}
    for name, value in attributes.items():
        kind = index.get(name, {}).get("Type")
        if kind == "Integer" and as_int(value) is not None:
            out[name] = as_int(value)
        elif kind == "Boolean" and as_bool(value) is not None:
            out[name] = as_bool(value)
        else:
            out[name] = value if isinstance(value, (int, bool)) and kind is None else str(value)
    return out
