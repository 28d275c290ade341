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
from collections.abc import Iterator, Mapping, Set
from typing import Any

# How much of a user's value a message quotes; a whole plan pasted into one
# line of output hides the finding it belongs to.
SHOW_LIMIT = 60
ELLIPSIS = "\u2026"


def type_name(value: Any) -> str:
    """The plain name of ``value``'s type, as a plan's author knows it (``string``, ``list``, ``mapping``).

    ansible-core 2.19 hands filters its own subclasses (``_AnsibleTaggedStr``,
    ``_AnsibleTaggedFloat``, ``_AnsibleLazyTemplateList``, ...), so the name is
    chosen by ``isinstance`` and never taken from ``type(value).__name__``.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (bytes, bytearray)):
        return "bytes"
    if isinstance(value, Mapping):
        return "mapping"
    if isinstance(value, Set):
        return "set"
    if isinstance(value, (list, tuple)) or hasattr(value, "__iter__"):
        return "list"
    return "value"


def _pieces(value: Any) -> Iterator[str]:
    """The value in YAML-like flow style, piece by piece so a long one can be cut early."""
    if value is None:
        yield "null"
    elif isinstance(value, bool):
        yield "true" if value else "false"
    elif isinstance(value, int):
        yield str(int(value))
    elif isinstance(value, float):
        # YAML's spelling: the author wrote .nan or .inf, not Python's nan/inf.
        if math.isnan(value):
            yield ".nan"
        elif math.isinf(value):
            yield ".inf" if value > 0 else "-.inf"
        else:
            yield repr(float(value))
    elif isinstance(value, str):
        yield repr(str(value))
    elif isinstance(value, Mapping):
        yield "{"
        for index, key in enumerate(value):
            if index:
                yield ", "
            yield from _pieces(key)
            yield ": "
            yield from _pieces(value[key])
        yield "}"
    elif isinstance(value, (list, tuple, Set)):
        yield "["
        for index, item in enumerate(value):
            if index:
                yield ", "
            yield from _pieces(item)
        yield "]"
    else:
        yield f"<{type_name(value)}>"


def show(value: Any, limit: int = SHOW_LIMIT) -> str:
    """``value`` as the author wrote it, cut to ``limit`` characters with an ellipsis."""
    text = ""
    for piece in _pieces(value):
        text += piece
        if len(text) > limit:
            return text[: limit - 1] + ELLIPSIS
    return text


class PlanInputError(ValueError):
    """Malformed planning input; the message names the offending path."""


def fail(path: str, problem: str) -> PlanInputError:
    """Build the error for ``path`` (callers ``raise fail(...)``)."""
    return PlanInputError(f"{path}: {problem}")


def as_mapping(value: Any, path: str) -> Mapping[str, Any]:
    """Return ``value`` if it is a mapping, else raise naming ``path``."""
    if not isinstance(value, Mapping):
        raise fail(path, f"expected a mapping, got {type_name(value)} {show(value)}")
    return value


def as_list(value: Any, path: str) -> list[Any]:
    """Return ``value`` as a list; strings and mappings are not lists."""
    if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
        raise fail(path, f"expected a list, got {type_name(value)} {show(value)}")
    return list(value)


def as_number(value: Any, path: str, minimum: float | None = 0, allow_equal: bool = True) -> float:
    """Return a real number (int or float, not bool) no smaller than ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise fail(path, f"expected a number, got {type_name(value)} {show(value)}")
    if not math.isfinite(value):
        raise fail(path, f"expected a finite number, got {show(value)}")
    if minimum is not None and (value < minimum or (value == minimum and not allow_equal)):
        bound = ">=" if allow_equal else ">"
        raise fail(path, f"must be {bound} {minimum}, got {show(value)}")
    return value


def as_int(value: Any, path: str, minimum: int | None = 0) -> int:
    """Return an integer (not bool, not float) no smaller than ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail(path, f"expected an integer, got {type_name(value)} {show(value)}")
    if minimum is not None and value < minimum:
        raise fail(path, f"must be >= {minimum}, got {show(value)}")
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
            raise fail(path, f"name {show(name)} appears more than once")
        seen.add(name)
    return items


def check_keys(entry: Mapping[str, Any], allowed: set[str], path: str) -> None:
    """Reject unknown keys: a typo must not silently drop a constraint."""
    unknown = sorted(set(map(str, entry)) - allowed)
    if unknown:
        raise fail(path, f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
