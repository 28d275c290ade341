# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Merge wanted settings into Docker's /etc/docker/daemon.json without losing anyone else's keys.

daemon.json is shared: users, other roles and packages add keys to it. Only the keys a caller asks for
change; every other key, and the order of the keys already there, stays as it was. Pure functions, no I/O.
"""

from __future__ import annotations

import copy
import json
from typing import Any


class DaemonJsonError(ValueError):
    """The existing daemon.json, or the wanted settings, cannot be merged."""


def parse_daemon_json(text: Any, source: str = "/etc/docker/daemon.json") -> dict[str, Any]:
    """Parse daemon.json text; an empty or whitespace-only file is an empty object.

    A dictionary is taken as already parsed. Anything but a JSON object is refused, naming the
    line and column where parsing failed, so that a broken file is never overwritten.
    """
    if isinstance(text, dict):
        return copy.deepcopy(text)
    if text is None:
        return {}
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    if not isinstance(text, str):
        raise DaemonJsonError(f"{source}: expected the file's text or a dictionary, got {type(text).__name__}")
    if not text.strip():
        return {}
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DaemonJsonError(
            f"{source} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
            "dockerd would not start with it either. Fix the file by hand: it is left untouched."
        ) from None
    if not isinstance(doc, dict):
        raise DaemonJsonError(
            f"{source} must hold a JSON object, found a JSON {type(doc).__name__}; it is left untouched."
        )
    return doc


def _merge(
    current: dict[str, Any], wanted: dict[str, Any], overwrite: bool, path: str, changes: list[dict[str, Any]]
) -> None:
    for key, value in wanted.items():
        where = f"{path}.{key}" if path else key
        if key not in current:
            current[key] = copy.deepcopy(value)
            changes.append({"key": where, "action": "added", "after": value})
        elif isinstance(current[key], dict) and isinstance(value, dict):
            _merge(current[key], value, overwrite, where, changes)
        elif overwrite and current[key] != value:
            changes.append({"key": where, "action": "changed", "before": current[key], "after": value})
            current[key] = copy.deepcopy(value)


def merge_daemon_json(
    existing: Any, wanted: Any = None, defaults: Any = None, source: str = "/etc/docker/daemon.json"
) -> dict[str, Any]:
    """Deep-merge ``wanted`` (enforced) and ``defaults`` (only where missing) into ``existing``.

    Objects merge key by key at every depth; any other value in ``wanted`` (a list, a string, a
    number) replaces the value found. ``defaults`` fill in keys that are absent and never change a
    value someone set. Returns ``config`` (the merged object), ``changed`` (the merged object differs
    from the existing one, compared as data, not as text), ``changes`` (one record per key added or
    changed, with dotted key paths) and ``text`` (the merged object as indented JSON with a final
    newline, existing keys in their order, new keys after them).
    """
    for name, value in (("wanted", wanted), ("defaults", defaults)):
        if value is not None and not isinstance(value, dict):
            raise DaemonJsonError(f"{name} must be a dictionary, got {type(value).__name__}")
    before = parse_daemon_json(existing, source)
    merged = copy.deepcopy(before)
    changes: list[dict[str, Any]] = []
    _merge(merged, wanted or {}, True, "", changes)
    _merge(merged, defaults or {}, False, "", changes)
    return {
        "config": merged,
        "changed": merged != before,
        "changes": changes,
        "text": json.dumps(merged, indent=2, ensure_ascii=False) + "\n",
    }
