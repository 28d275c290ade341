# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What to send to ``PUT /nodes/{node}/qemu/{vmid}/config`` so a VM matches its definition.

``GET .../config`` answers in Proxmox's own spelling: numbers as strings,
booleans as 0/1, property strings with keys in its order, disks as volume ids
with a size, NICs as ``virtio=<MAC>``. Both sides are normalised before they
are compared so a VM that matches yields no change, and a second run is quiet.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.cpu import parse_cpu_ranges
from ansible_collections.onprem.gpu_server.plugins.module_utils.proxmox.propstring import (
    DEFAULT_KEYS,
    option_base,
    parse,
    render,
)

# Only in the GET answer (or only in the request): never compared, never sent.
IGNORED = frozenset(("digest", "vmid", "node", "meta", "vmgenid", "smbios1", "lock", "pending", "snaptime", "parent"))
DISKS = frozenset(("scsi", "virtio", "sata", "ide", "efidisk", "tpmstate"))
# Options a running VM takes at once; anything else waits for the next start.
# net[n] is hot while its model stays (Proxmox re-plugs bridge/tag/rate live).
HOT = frozenset(("name", "description", "tags", "onboot", "startup", "protection"))
# Proxmox lets only root@pam (no API token, whatever its privileges) set these.
ROOT_ONLY = frozenset(("args", "hostpci", "affinity", "hugepages", "keephugepages"))
# Subkeys Proxmox fills in itself; a definition that leaves them out accepts any value.
GENERATED = {"net": ("macaddr",), "scsi": ("size",), "virtio": ("size",), "sata": ("size",), "ide": ("size",)}
_ALLOCATE = re.compile(r"^([A-Za-z][A-Za-z0-9_.-]*):(\d+(?:\.\d+)?)$")
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)([KMGT]?)$")
_SIZE_GIB = {"": 1 / 1024**3, "K": 1 / 1024**2, "M": 1 / 1024, "G": 1, "T": 1024}


def _scalar(value: Any) -> str:
    """``True``/``1``/``"1"`` -> ``"1"``; ``16``/``"16"``/``16.0`` -> ``"16"``."""
    if isinstance(value, bool):
        return "1" if value else "0"
    text = str(value).strip()
    if re.fullmatch(r"-?\d+\.0+", text):
        text = text.split(".", maxsplit=1)[0]
    return text


def _fields(key: str, value: Any) -> dict[str, str]:
    return {name: _scalar(text) for name, text in parse(key, value).items()}


def _size_gib(text: str) -> float | None:
    match = _SIZE.match(text or "")
    return float(match.group(1)) * _SIZE_GIB[match.group(2)] if match else None


def _disk_problem(key: str, current: Any, desired: Any) -> str | None:
    """Compare an existing disk with its definition; a difference is a message, never a change."""
    have, want = _fields(key, current), _fields(key, desired)
    allocate = _ALLOCATE.match(want.get("file", ""))
    if allocate:
        storage, size = allocate.group(1), float(allocate.group(2))
        if not have.get("file", "").startswith(f"{storage}:"):
            return f"is on {have.get('file')!r}, the plan wants storage {storage!r}; moving disks is not done here"
        have_size = _size_gib(have.get("size", ""))
        if option_base(key) != "efidisk" and have_size is not None and abs(have_size - size) > 0.001:
            return (
                f"is {have_size:g} GiB, the plan wants {size:g} GiB; resize it with the resize API (never shrunk here)"
            )
    elif have.get("file") != want.get("file"):
        return f"is {have.get('file')!r}, the plan wants {want.get('file')!r}; disks are never swapped here"
    options = {k: v for k, v in want.items() if k != "file" and have.get(k) != v}
    if options:
        text = ", ".join(f"{k}={v}" for k, v in sorted(options.items()))
        return f"options differ ({text}); disk options are not changed on an existing disk here"
    return None


def same(key: str, current: Any, desired: Any) -> bool:
    """True when ``current`` (as GET returns it) means what ``desired`` asks for."""
    base = option_base(key)
    if key == "affinity":
        return parse_cpu_ranges(_scalar(current)) == parse_cpu_ranges(_scalar(desired))
    if key == "args":
        return " ".join(str(current).split()) == " ".join(str(desired).split())
    if base in DEFAULT_KEYS or (base == "numa" and key != base):
        have, want = _fields(key, current), _fields(key, desired)
        for generated in GENERATED.get(base, ()):
            if generated not in want:
                have.pop(generated, None)
        if base == "hostpci":
            have["host"] = have.get("host", "").lower()
            want["host"] = want.get("host", "").lower()
        return have == want
    return _scalar(current) == _scalar(desired)


def _send_value(key: str, current: Any, desired: Any) -> Any:
    """The value to PUT; a NIC keeps the MAC address Proxmox gave it."""
    if option_base(key) == "net" and current not in (None, ""):
        have, want = parse(key, current), parse(key, desired)
        if "macaddr" in have and "macaddr" not in want and have.get("model") == want.get("model"):
            want["macaddr"] = have["macaddr"]
            return render(key, want)
    return desired


def _model(key: str, value: Any) -> str | None:
    return parse(key, value).get("model")


def root_only(key: str, value: Any) -> bool:
    """True for options Proxmox refuses to every API token."""
    base = option_base(key)
    if base == "hostpci":
        return "mapping" not in parse(key, value)
    if base in DISKS - {"efidisk", "tpmstate"}:
        return str(parse(key, value).get("file", "")).startswith("/")
    return base in ROOT_ONLY


def config_diff(
    current: Mapping[str, Any] | None, desired: Mapping[str, Any], running: bool = False, allow_pending: bool = False
) -> dict[str, Any]:
    """Compare a VM's config (``GET .../config``; empty when the VM is missing) with its definition.

    Returns ``changes`` (key -> value to send: every desired key for a new VM),
    split into ``api_changes`` and ``root_changes`` (options only root@pam may
    set), ``pending`` (changes that apply at the next VM start), ``refused``
    (``"key: reason"`` for what this comparison will not change), ``conflict``
    (the vmid belongs to a VM of another name; nothing may be changed) and
    ``unmanaged`` (device options the VM has but the definition does not list;
    never removed). Nothing is ever deleted.
    """
    current = dict(current or {})
    creating = not current
    result: dict[str, Any] = {
        "create": creating,
        "changes": {},
        "api_changes": {},
        "root_changes": {},
        "pending": [],
        "refused": [],
        "conflict": None,
        "unmanaged": [],
    }
    name = desired.get("name")
    if not creating and name and current.get("name") not in (None, name):
        result["conflict"] = (
            f"vmid {desired.get('vmid', '?')} is the VM {current.get('name')!r}, not {name!r}; "
            "choose another id in proxmox_guests_vmids"
        )
        return result
    for key, want in desired.items():
        if key in IGNORED:
            continue
        have = current.get(key)
        if have is not None and same(key, have, want):
            continue
        base = option_base(key)
        if not creating and have is not None and base in DISKS:
            problem = _disk_problem(key, have, want)
            if problem:
                result["refused"].append(f"{key}: {problem}")
            continue
        hot = base in HOT or (
            base == "net" and have is not None and parse(key, have).get("model") == parse(key, want).get("model")
        )
        if running and not hot:
            if not allow_pending:
                result["refused"].append(
                    f"{key}: the VM is running and {key} only takes effect at its next start; "
                    "set proxmox_guests_allow_pending to queue it as a pending change"
                )
                continue
            result["pending"].append(key)
        value = _send_value(key, have, want)
        result["changes"][key] = value
        result["root_changes" if root_only(key, value) else "api_changes"][key] = value
    managed = ("hostpci", "net", "numa", "scsi", "virtio", "sata", "ide")
    result["unmanaged"] = sorted(
        k for k in current if option_base(k) in managed and k != option_base(k) and k not in desired
    )
    return result
