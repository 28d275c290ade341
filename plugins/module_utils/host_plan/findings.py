# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Findings of a plan report: what is wrong, where in the inventory, and on which assumption."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# Words the calculations use for what the inventory calls otherwise.
_RENAMES = (
    ("populated_dimms", "dimms_populated"),
    ("installed_gib", "total_gb"),
    ("claimed_tokens_per_s", "claimed_tok_s"),
)
_PREFIX = re.compile(r"^([A-Za-z_][\w.\-\[\]]*): (.*)$", re.S)


def split_prefix(message: str) -> tuple[str | None, str]:
    """``"vms.a.cores: text"`` -> ``("vms.a.cores", "text")``; no path prefix -> ``(None, message)``."""
    match = _PREFIX.match(message)
    if not match:
        return None, message
    return match.group(1), match.group(2)


def rename(text: str) -> str:
    """Replace calculation vocabulary with the inventory's key names."""
    for old, new in _RENAMES:
        text = text.replace(old, new)
    return text


class Findings:
    """Collects errors, warnings and notes; each names the plan variable it is about."""

    def __init__(self) -> None:
        self.errors: list[dict[str, Any]] = []
        self.warnings: list[dict[str, Any]] = []
        self.notes: list[dict[str, Any]] = []

    @staticmethod
    def _item(path: str, check: str, message: str, assumption: str | None) -> dict[str, Any]:
        item: dict[str, Any] = {"path": path, "check": check, "message": rename(message)}
        if assumption:
            item["assumption"] = assumption
        return item

    def error(self, path: str, check: str, message: str, assumption: str | None = None) -> None:
        """A plan that cannot work as written."""
        self.errors.append(self._item(path, check, message, assumption))

    def warning(self, path: str, check: str, message: str, assumption: str | None = None) -> None:
        """A plan that works but not as the design says, or costs performance."""
        self.warnings.append(self._item(path, check, message, assumption))

    def note(self, path: str, check: str, message: str) -> None:
        """What was assumed or could not be checked; never fails a plan."""
        self.notes.append(self._item(path, check, message, None))

    def absorb(
        self,
        result: Mapping[str, Any],
        check: str,
        locate: Any,
        assumption: str | None = None,
    ) -> None:
        """Move a filter result's ``errors``/``warnings`` in, mapping each message's path with ``locate``.

        ``locate(prefix, rest)`` returns ``(plan_path, message)``; ``prefix`` is
        the calculation's own path (``vms.a``) or None.
        """
        for kind in ("errors", "warnings"):
            for raw in result.get(kind) or []:
                prefix, rest = split_prefix(str(raw))
                path, message = locate(prefix, rest)
                if kind == "errors":
                    self.error(path, check, message, assumption)
                else:
                    self.warning(path, check, message, assumption)


def locate_common(default: str) -> Any:
    """A ``locate`` for filters whose paths are vms.*, gpus.*, memory, power.*, host_reserve, numa_nodes."""

    def locate(prefix: str | None, rest: str) -> tuple[str, str]:
        if prefix is None:
            return default, rest
        head = prefix.split(".")[0].split("[")[0]
        if head == "vms":
            return f"host_plan.intent.{prefix}", rest
        if head in ("gpus", "numa_nodes"):
            return f"host_plan.hardware.{prefix}", rest
        if head == "host_reserve":
            return "host_plan.intent.host_reserve.cores", rest
        if head == "power":
            return f"host_plan.hardware.{prefix}", rest
        if head == "memory":
            if "populated_dimms" in rest:
                return "host_plan.hardware.memory.dimms_populated", rest
            if "over budget" in rest:
                return "host_plan.intent.vms", f"memory {rest}"
            if "installed_gib" in rest:
                return "host_plan.hardware.memory.total_gb", rest
            return "host_plan.hardware.memory.dimms", rest
        return default, f"{prefix}: {rest}"

    return locate
