# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""CPU list syntax as used by Linux (``/sys/.../cpulist``, ``taskset -c``, Proxmox ``affinity``)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan._common import fail, show, type_name
from ansible_collections.onprem.gpu_server.plugins.module_utils.nic.irq import format_cpulist

_ITEM = re.compile(r"^(\d+)(?:-(\d+))?$")


def parse_cpu_ranges(value: Any, path: str = "cpu_ranges") -> list[int]:
    """Parse ``"0-15,32-47"`` into a sorted list of CPU numbers.

    An integer is accepted as a single CPU and an empty string as no CPUs.
    Reversed ranges, negative numbers, junk and CPUs named twice are errors,
    because a pinning plan that names a CPU twice is almost always a typo.
    """
    if isinstance(value, bool):
        raise fail(path, f"expected a CPU list string, got {type_name(value)} {show(value)}")
    if isinstance(value, int):
        if value < 0:
            raise fail(path, f"CPU numbers cannot be negative, got {value}")
        return [value]
    if not isinstance(value, str):
        raise fail(path, f"expected a CPU list string such as '0-15,32-47', got {type_name(value)} {show(value)}")
    text = value.strip()
    if not text:
        return []
    seen: set[int] = set()
    for raw in text.split(","):
        item = raw.strip()
        match = _ITEM.match(item)
        if not match:
            raise fail(path, f"cannot read {show(item)} in {show(value)}: expected N or N-M with N, M >= 0")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        if last < first:
            raise fail(path, f"range {show(item)} is reversed in {show(value)}")
        span = set(range(first, last + 1))
        twice = span & seen
        if twice:
            raise fail(path, f"CPU(s) {format_cpu_ranges(sorted(twice))} listed more than once in {show(value)}")
        seen |= span
    return sorted(seen)


def format_cpu_ranges(cpus: Iterable[Any], path: str = "cpus") -> str:
    """Format CPU numbers as the canonical Linux list, e.g. ``[0, 1, 2, 5] -> "0-2,5"``.

    Runs of two or more become ``a-b`` (the kernel's own form); the result is
    the shortest such string and is independent of the input order.
    """
    if isinstance(cpus, (str, bytes)) or not hasattr(cpus, "__iter__"):
        raise fail(path, f"expected a list of CPU numbers, got {type_name(cpus)} {show(cpus)}")
    numbers: list[int] = []
    for index, cpu in enumerate(cpus):
        if isinstance(cpu, bool) or not isinstance(cpu, int):
            raise fail(f"{path}[{index}]", f"expected an integer CPU number, got {type_name(cpu)} {show(cpu)}")
        if cpu < 0:
            raise fail(f"{path}[{index}]", f"CPU numbers cannot be negative, got {cpu}")
        numbers.append(cpu)
    if len(set(numbers)) != len(numbers):
        dupes = sorted({n for n in numbers if numbers.count(n) > 1})
        raise fail(path, f"CPU(s) {dupes} listed more than once")
    return format_cpulist(numbers)
