# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check VM parameters against the published Proxmox VE API schema (``apidata.js`` as JSON).

The schema is passed in as data; the collection ships none of it. Checked:
every key exists (``hostpci3`` matches ``hostpci[n]`` and its index range),
types, enums, ranges, patterns, lengths, and for property strings every
subkey and its value. Formats given in the schema as objects are checked
from the object; formats given only by name (``pve-qm-hostpci``,
``pve-vm-cpu-conf``) are rebuilt from the option's ``typetext``. Named value
formats (volume ids, MAC addresses, CPU sets) are checked with the close
approximations in VALUE_FORMATS; other named formats accept any string.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

QEMU_CREATE = ("/nodes/{node}/qemu", "POST")
QEMU_CONFIG_SET = ("/nodes/{node}/qemu/{vmid}/config", "PUT")

# Index ranges the schema text does not state: qemu-server's limits
# (MAX_HOSTPCI_DEVICES 16, MAX_NETS 32, MAX_NUMA 8, MAX_UNUSED_DISKS 256, virtiofs 10).
INDEX_LIMITS = {"hostpci": 16, "net": 32, "ipconfig": 32, "numa": 8, "unused": 256, "virtiofs": 10}

_PCI = r"(?:[a-f0-9]{4,}:)?[a-f0-9]{2}:[a-f0-9]{2}(?:\.[a-f0-9])?"
_CPUSET = r"\d+(?:-\d+)?(?:,\d+(?:-\d+)?)*"
VALUE_FORMATS = {
    "pve-cpuset": _CPUSET,
    "dns-name": r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?\.)*[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?",
    "pve-bridge-id": r"[-_.\w\d]+",
    "mac-addr": r"[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}",
    "disk-size": r"\d+(?:\.\d+)?[KMGT]?",
    "pve-volume-id-or-qm-path": r"(?:[a-zA-Z][\w.-]*:.+|/.+|none|cdrom)",
    "pve-storage-id": r"[a-zA-Z][\w.-]*",
}
_TYPETEXT_ITEM = re.compile(r"(\[?),?(\[?)([A-Za-z0-9_-]+)=(\]?)<([^>]*)>")
_INDEX_TEXT = re.compile(r"n is (\d+) to (\d+)")
_INDEX_MORE = re.compile(r"n can be up to (\d+)")
_INDEXED = re.compile(r"^([a-z][a-z_-]*?)(\d+)$")
_BOOLEAN_WORDS = ("1", "0", "on", "off", "yes", "no", "true", "false")


def properties(schema: Mapping[str, Any], path: str, method: str) -> dict[str, Any]:
    """The parameter specs of one endpoint; KeyError when the schema lacks it."""
    return dict(schema[path][method]["parameters"]["properties"])


def _regex(pattern: str) -> re.Pattern[str]:
    # Perl's (?^:...) is a group with default flags; Proxmox anchors every pattern.
    return re.compile(pattern.replace("(?^:", "(?:").replace("(?^i:", "(?i:"))


def _index_limit(base: str, spec: Mapping[str, Any]) -> tuple[int, int]:
    text = f"{spec.get('description', '')} {spec.get('verbose_description', '')}"
    found = _INDEX_TEXT.search(text)
    if found:
        more = _INDEX_MORE.search(text)
        return int(found.group(1)), int(more.group(1)) if more else int(found.group(2))
    return 0, INDEX_LIMITS.get(base, 0) - 1


def _lookup(props: Mapping[str, Any], key: str) -> tuple[dict[str, Any] | None, str | None]:
    if key in props:
        return props[key], None
    match = _INDEXED.match(key)
    if match and f"{match.group(1)}[n]" in props:
        spec = props[f"{match.group(1)}[n]"]
        low, high = _index_limit(match.group(1), spec)
        index = int(match.group(2))
        if not low <= index <= high:
            return spec, f"index {index} is outside {match.group(1)}[n]'s range {low}..{high}"
        return spec, None
    return None, "is not a parameter of this endpoint"


def _typetext_format(typetext: str) -> dict[str, Any]:
    """Rebuild a property-string format from text such as ``[[host=]<ID>] [,pcie=<1|0>]``."""
    fmt: dict[str, Any] = {}
    for match in _TYPETEXT_ITEM.finditer(typetext):
        key, default, value = match.group(3), match.group(4) == "]", match.group(5)
        spec: dict[str, Any] = {"optional": 1, "type": "string", "typetext_value": value}
        if default:
            spec["default_key"] = 1
        fmt[key] = spec
    return fmt


def _typetext_value_problem(spec_text: str, text: str) -> str | None:
    if spec_text == "1|0":
        return None if text in _BOOLEAN_WORDS else f"{text!r} is not a boolean (1|0)"
    if "|" in spec_text:
        for alternative in spec_text.split("|"):
            bounds = re.fullmatch(r"(\d+)-(\d+)", alternative)
            if alternative == text or (
                bounds and text.isdigit() and int(bounds.group(1)) <= int(text) <= int(bounds.group(2))
            ):
                return None
        return f"{text!r} is not one of {spec_text}"
    if spec_text == "integer":
        return None if re.fullmatch(r"-?\d+", text) else f"{text!r} is not an integer"
    if spec_text == "hex id":
        return None if re.fullmatch(r"(?:0x)?[0-9a-fA-F]+", text) else f"{text!r} is not a hex id"
    if spec_text.startswith("HOSTPCIID"):
        ok = re.fullmatch(f"{_PCI}(?:;{_PCI})*", text)
        return None if ok else f"{text!r} is not a PCI id list (DDDD:BB:DD[.F], lower-case hex)"
    return None


def _text_problem(spec: Mapping[str, Any], text: str) -> str | None:
    """Check one property-string value (always text) against its subkey spec."""
    if "typetext_value" in spec:
        return _typetext_value_problem(spec["typetext_value"], text)
    kind = spec.get("type")
    if kind == "boolean":
        return None if text.lower() in _BOOLEAN_WORDS else f"{text!r} is not a boolean"
    if kind in ("integer", "number"):
        pattern = r"-?\d+" if kind == "integer" else r"-?\d+(?:\.\d+)?"
        if not re.fullmatch(pattern, text):
            return f"{text!r} is not an {kind}"
        return _range_problem(spec, float(text))
    return _string_problem(spec, text)


def _range_problem(spec: Mapping[str, Any], number: float) -> str | None:
    low, high = spec.get("minimum"), spec.get("maximum")
    if low is not None and number < float(low):
        return f"{number:g} is below the minimum {low}"
    if high is not None and number > float(high):
        return f"{number:g} is above the maximum {high}"
    return None


def _string_problem(spec: Mapping[str, Any], text: str) -> str | None:
    if "enum" in spec and text not in spec["enum"]:
        return f"{text!r} is not one of {', '.join(spec['enum'])}"
    if "maxLength" in spec and len(text) > int(spec["maxLength"]):
        return f"is longer than {spec['maxLength']} characters"
    if "pattern" in spec and not _regex(spec["pattern"]).fullmatch(text):
        return f"{text!r} does not match {spec['pattern']}"
    named = spec.get("format")
    if isinstance(named, str) and named in VALUE_FORMATS and not re.fullmatch(VALUE_FORMATS[named], text):
        return f"{text!r} is not a valid {named}"
    return None


def _property_string_problems(fmt: Mapping[str, Any], value: str) -> list[str]:
    problems: list[str] = []
    seen: dict[str, str] = {}
    default_key = next((k for k, s in fmt.items() if s.get("default_key")), None)
    for item in value.split(","):
        if not item:
            continue
        name, sep, text = item.partition("=")
        if not sep:
            if default_key is None or default_key in seen:
                problems.append(f"{item!r} has no key and there is no free default key")
                continue
            name, text = default_key, item
        spec = fmt.get(name)
        if spec is None:
            problems.append(f"unknown key {name!r} (known: {', '.join(sorted(fmt))})")
            continue
        if "keyAlias" in spec:
            # ``virtio=<MAC>``: the key names the model, the value is the MAC address.
            seen[spec["keyAlias"]] = name
            name, spec = spec["alias"], fmt[spec["alias"]]
        elif "alias" in spec:
            name, spec = spec["alias"], fmt[spec["alias"]]
        if name in seen:
            problems.append(f"{name!r} is given twice")
        seen[name] = text
        problem = _text_problem(spec, text)
        if problem:
            problems.append(f"{name}: {problem}")
    for name, spec in fmt.items():
        required = not spec.get("optional") and "default" not in spec and "alias" not in spec
        if required and name not in seen:
            problems.append(f"{name} is required")
    return problems


def value_problems(spec: Mapping[str, Any], value: Any) -> list[str]:
    """Problems of one top-level parameter value; empty when Proxmox would accept it."""
    kind = spec.get("type")
    if kind == "integer":
        if isinstance(value, bool) or not (isinstance(value, int) or re.fullmatch(r"-?\d+", str(value))):
            return [f"expected an integer, got {value!r}"]
        problem = _range_problem(spec, float(value))
        return [problem] if problem else []
    if kind == "number":
        if isinstance(value, bool) or not re.fullmatch(r"-?\d+(?:\.\d+)?", str(value)):
            return [f"expected a number, got {value!r}"]
        problem = _range_problem(spec, float(value))
        return [problem] if problem else []
    if kind == "boolean":
        if isinstance(value, bool) or value in (0, 1) or str(value).lower() in _BOOLEAN_WORDS:
            return []
        return [f"expected a boolean, got {value!r}"]
    if not isinstance(value, str):
        return [f"expected a string, got {type(value).__name__} {value!r}"]
    fmt = spec.get("format")
    if isinstance(fmt, Mapping):
        return _property_string_problems(fmt, value)
    if isinstance(fmt, str) and "=" in str(spec.get("typetext", "")):
        return _property_string_problems(_typetext_format(spec["typetext"]), value)
    problem = _string_problem(spec, value)
    return [problem] if problem else []


def check_parameters(
    schema: Mapping[str, Any], params: Mapping[str, Any], endpoint: tuple[str, str] = QEMU_CREATE
) -> list[str]:
    """Every problem of ``params`` for ``endpoint`` as ``"key: problem"``; empty when all are valid.

    Path parameters (``node``, and ``vmid`` for the config endpoint) may be left out.
    """
    props = properties(schema, *endpoint)
    errors: list[str] = []
    for key, value in params.items():
        spec, problem = _lookup(props, key)
        if problem:
            errors.append(f"{key}: {problem}")
        if spec is None:
            continue
        errors += [f"{key}: {p}" for p in value_problems(spec, value)]
    return errors
