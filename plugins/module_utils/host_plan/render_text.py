# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plain-text rendering of a plan report for the console: findings first, then the tables."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import Any

WIDTH = 110


def _finding_lines(mark: str, item: Mapping[str, Any]) -> list[str]:
    head = f"{mark} {item.get('path', '?')} [{item.get('check', '?')}]"
    body = textwrap.wrap(str(item.get("message", "")), WIDTH - 4) or [""]
    lines = [head] + [f"    {line}" for line in body]
    if item.get("assumption"):
        lines += [f"    {line}" for line in textwrap.wrap(f"assumption: {item['assumption']}", WIDTH - 4)]
    return lines


def render_table(table: Mapping[str, Any]) -> list[str]:
    """A table as aligned columns under its title."""
    columns = [str(c) for c in table.get("columns") or []]
    rows = [[str(c) for c in row] for row in table.get("rows") or []]
    widths = [len(c) for c in columns]
    for row in rows:
        for index, cell in enumerate(row[: len(widths)]):
            widths[index] = max(widths[index], len(cell))

    def line(cells: list[str]) -> str:
        return "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(cells[: len(widths)])).rstrip()

    out = [str(table.get("title", "")), line(columns), line(["-" * w for w in widths])]
    out += [line(row) for row in rows]
    return out


def render_text(report: Mapping[str, Any], host: str = "") -> str:
    """The report as console text (no colour, no trailing spaces)."""
    errors = report.get("errors") or []
    warnings = report.get("warnings") or []
    notes = report.get("notes") or []
    title = f"Host plan report{f' for {host}' if host else ''}"
    profile = report.get("profile")
    verdict = "OK" if report.get("ok") else "FAILED"
    lines = [
        title + (f" (profile {profile})" if profile else ""),
        f"{verdict}: {len(errors)} error(s), {len(warnings)} warning(s), {len(notes)} note(s)",
        "",
    ]
    for mark, items, label in (("E", errors, "Errors"), ("W", warnings, "Warnings"), ("N", notes, "Notes")):
        if items:
            lines.append(f"{label}:")
            for item in items:
                lines += _finding_lines(mark, item)
            lines.append("")
    for table in report.get("tables") or []:
        lines += render_table(table)
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
