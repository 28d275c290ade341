# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Input validation shared by the host-plan calculations.

The calculations never raise for a plan that is merely wrong (over budget,
over-subscribed): they return findings. They raise PlanInputError only when the
input cannot be read at all, and the message always starts with the path of the
offending value so the caller can find it in the inventory.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


class PlanInputError(ValueError):
    """Malformed planning input; the message names the offending path."""


def fail(path: str, problem: str) -> PlanInputError:
    """Build the error for ``path`` (callers ``raise fail(...)``)."""
    return PlanInputError(f"{path}: {problem}")


def as_mapping(value: Any, path: str) -> Mapping[str, Any]:
    """Return ``value`` if it is a mapping, else raise naming ``path``."""
    if not isinstance(value, Mapping):
        raise fail(path, f"expected a mapping, got {type(value).__name__}")
    return value


def as_list(value: Any, path: str) -> list[Any]:
    """Return ``value`` as a list; strings and mappings are not lists."""
    if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
        raise fail(path, f"expected a list, got {type(value).__name__}")
    return list(value)


def as_number(value: Any, path: str, minimum: float | None = 0, allow_equal: bool = True) -> float:
    """Return a real number (int or float, not bool) no smaller than ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise fail(path, f"expected a number, got {value!r}")
    if not math.isfinite(value):
        raise fail(path, f"expected a finite number, got {value!r}")
    if minimum is not None and (value < minimum or (value == minimum and not allow_equal)):
        bound = ">=" if allow_equal else ">"
        raise fail(path, f"must be {bound} {minimum}, got {value!r}")
    return value


def as_int(value: Any, path: str, minimum: int | None = 0) -> int:
    """Return an integer (not bool, not float) no smaller than ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail(path, f"expected an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise fail(path, f"must be >= {minimum}, got {value!r}")
    return value


def named_items(value: Any, path: str) -> list[tuple[str, Mapping[str, Any]]]:
    """Accept a list of mappings with ``name`` or a mapping of name -> mapping.

    Inventories use both shapes; the order of a list is kept, a mapping is
    sorted by name so results do not depend on YAML key order.
    """
    items: list[tuple[str, Mapping[str, Any]]] = []
    if isinstance(value, Mapping):
        for name in sorted(value, key=str):
            items.append((str(name), as_mapping(value[name], f"{path}.{name}")))
    else:
        for index, entry in enumerate(as_list(value, path)):
            entry = as_mapping(entry, f"{path}[{index}]")
            name = entry.get("name")
            if not isinstance(name, str) or not name:
                raise fail(f"{path}[{index}].name", "a non-empty string is required")
            items.append((name, entry))
    seen: set[str] = set()
    for name, _entry in items:
        if name in seen:
            raise fail(path, f"name {name!r} appears more than once")
        seen.add(name)
    return items


def check_keys(entry: Mapping[str, Any], allowed: set[str], path: str) -> None:
    """Reject unknown keys: a typo must not silently drop a constraint."""
    unknown = sorted(set(map(str, entry)) - allowed)
    if unknown:
        raise fail(path, f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
