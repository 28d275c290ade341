# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kernel command line tokens: parse, compare and edit them, pure functions only.

A token is kept as it is written (``foo="a b"``); comparisons use the parameter key
(name with ``-`` and ``_`` treated alike, as the kernel's own ``parameq`` does) and
the value with surrounding double quotes removed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


class CmdlineError(ValueError):
    """A requested parameter cannot be written as a kernel command line token."""


def split_cmdline(text: str, stop_at_dashdash: bool = True) -> list[str]:
    """Split a command line the way the kernel does: on whitespace, except inside double quotes.

    ``--`` ends the kernel's own parameters (the rest goes to init); with
    ``stop_at_dashdash`` those trailing arguments are dropped.
    """
    tokens: list[str] = []
    current: list[str] = []
    in_quotes = False
    for char in text:
        if char == '"':
            in_quotes = not in_quotes
            current.append(char)
        elif char.isspace() and not in_quotes:
            if current:
                tokens.append("".join(current))
                current = []
        else:
            current.append(char)
    if current:
        tokens.append("".join(current))
    if stop_at_dashdash and "--" in tokens:
        tokens = tokens[: tokens.index("--")]
    return tokens


def param_key(name: str) -> str:
    """The kernel treats ``-`` and ``_`` in parameter names as the same character."""
    return name.replace("-", "_")


def parse_token(token: str) -> tuple[str, str | None]:
    """Return ``(name, value)``; ``value`` is None for a flag such as ``quiet``."""
    if "=" not in token:
        return token, None
    name, value = token.split("=", 1)
    if len(value) >= 2 and value.startswith('"') and value.endswith('"'):
        value = value[1:-1]
    return name, value


def render_token(name: str, value: str | None) -> str:
    """Write one parameter; values with blanks are double-quoted like the kernel expects."""
    if value is None:
        return name
    if any(char.isspace() for char in value):
        return f'{name}="{value}"'
    return f"{name}={value}"


def values_of(tokens: Iterable[str], key: str) -> list[str | None]:
    """Every value given to ``key`` in order (the kernel normally uses the last one)."""
    found = []
    for token in tokens:
        name, value = parse_token(token)
        if param_key(name) == key:
            found.append(value)
    return found


@dataclass
class Wanted:
    """One requested parameter: its name as the user wrote it and its values.

    ``values`` lists every occurrence (``console`` may legitimately repeat). For
    ``state=absent`` an empty list means "remove every occurrence".
    """

    name: str
    values: list[str | None] = field(default_factory=list)

    @property
    def key(self) -> str:
        return param_key(self.name)

    def tokens(self) -> list[str]:
        return [render_token(self.name, value) for value in self.values]


def _check_name(name: Any, where: str) -> str:
    if not isinstance(name, str) or not name:
        raise CmdlineError(f"{where}: a parameter name must be a non-empty string, got {name!r}")
    if "=" in name or '"' in name or any(char.isspace() for char in name):
        raise CmdlineError(f"{where}: invalid parameter name {name!r} (no blanks, '=' or quotes)")
    return name


def _check_value(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise CmdlineError(
            f"{where}: {value!r} is a YAML boolean and ambiguous on a kernel command line; "
            "quote the value you mean (\"on\", \"1\", \"y\") or use null for a flag"
        )
    if isinstance(value, (int, float)):
        value = str(value)
    if not isinstance(value, str):
        raise CmdlineError(f"{where}: expected a string, number or null, got {type(value).__name__}")
    if '"' in value or "\n" in value:
        raise CmdlineError(f"{where}: a value cannot contain double quotes or newlines: {value!r}")
    return value


def _add(wanted: dict[str, Wanted], name: str, values: list[str | None], where: str) -> None:
    key = param_key(name)
    if key in wanted:
        raise CmdlineError(f"{where}: parameter {name!r} is given more than once (as {wanted[key].name!r})")
    wanted[key] = Wanted(name, values)


def normalize_params(params: Any, state: str = "present") -> dict[str, Wanted]:
    """Turn the module's ``params`` (a mapping and/or a list) into ``{key: Wanted}``.

    Mapping form: ``{intel_iommu: "on", quiet: null, console: [tty0, ttyS0]}``.
    List form: ``["intel_iommu=on", "quiet", {iommu: pt}]``. With ``state=absent`` a bare
    name removes every occurrence and ``name=value`` only that value.
    """
    wanted: dict[str, Wanted] = {}
    if isinstance(params, Mapping):
        items: list[Any] = [params]
    elif isinstance(params, (list, tuple)):
        items = list(params)
    else:
        raise CmdlineError(f"params: expected a mapping or a list, got {type(params).__name__}")
    for index, item in enumerate(items):
        if isinstance(item, Mapping):
            for name, raw in item.items():
                where = f"params.{name}"
                _check_name(name, where)
                raw_values = list(raw) if isinstance(raw, (list, tuple)) else [raw]
                if not raw_values:
                    raise CmdlineError(f"{where}: an empty list of values")
                values = [_check_value(value, where) for value in raw_values]
                if state == "absent" and values == [None]:
                    values = []
                _add(wanted, name, values, where)
        elif isinstance(item, str):
            where = f"params[{index}]"
            name, value = parse_token(item.strip())
            _check_name(name, where)
            value = _check_value(value, where)
            values = [] if state == "absent" and value is None else [value]
            _add(wanted, name, values, where)
        else:
            raise CmdlineError(f"params[{index}]: expected a string or a mapping, got {type(item).__name__}")
    if not wanted:
        raise CmdlineError("params: at least one parameter is required")
    return wanted


def apply_request(tokens: list[str], wanted: Mapping[str, Wanted], state: str) -> list[str]:
    """Return a new token list with ``wanted`` applied; the input list is not modified.

    present: the first occurrence of a key is replaced in place by the wanted token(s),
    later occurrences of the same key are dropped, a missing key is appended.
    absent: every occurrence (or every occurrence with a listed value) is dropped.
    """
    result: list[str] = []
    placed: set[str] = set()
    for token in tokens:
        name, value = parse_token(token)
        key = param_key(name)
        item = wanted.get(key)
        if item is None:
            result.append(token)
        elif state == "absent":
            if item.values and value not in item.values:
                result.append(token)
        elif key not in placed:
            result.extend(item.tokens())
            placed.add(key)
    if state == "present":
        for key, item in wanted.items():
            if key not in placed:
                result.extend(item.tokens())
    return result


def differing_keys(configured: list[str], running: list[str], keys: Iterable[str]) -> list[str]:
    """Keys whose values on the configured command line differ from the running one."""
    return [key for key in keys if values_of(configured, key) != values_of(running, key)]


def duplicates(tokens: list[str], keys: Iterable[str]) -> dict[str, list[str | None]]:
    """Managed keys that occur more than once with different values: ``{key: values}``."""
    found = {}
    for key in keys:
        values = values_of(tokens, key)
        if len(set(values)) > 1:
            found[key] = values
    return found
