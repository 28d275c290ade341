# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A self-contained HTML page for a plan report, with an inline SVG picture of the host.

The page loads nothing (no scripts, fonts or images) and is well-formed XML, so
it opens from a file share or a CI artifact as it is. Every text from the plan
goes through ``html.escape``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from html import escape
from typing import Any

from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan._common import show
from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.cpu import format_cpu_ranges

# VM colours avoid red, which the picture keeps for what is wrong.
PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#edc948", "#76b7b2", "#9c755f", "#86bcb6")
HOST_COLOUR, FREE_COLOUR, CLASH_COLOUR = "#9aa0a6", "#ffffff", "#d62728"
OK_COLOUR, WARN_COLOUR, OVER_TEXT = "#59a14f", "#ef6c00", "#b71c1c"
CELL, GAP, PAD = 24, 3, 14
BAR_LABEL, BAR_VALUE, BAR_HEIGHT = 230, 250, 22

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#202124;max-width:1280px}
h1{font-size:1.5em;margin:0 0 4px}h2{font-size:1.15em;margin:28px 0 8px}
.verdict{display:inline-block;padding:2px 10px;border-radius:4px;color:#fff;font-weight:600}
.ok{background:#2e7d32}.failed{background:#c62828}
ul.findings{list-style:none;padding:0;margin:0}
ul.findings li{border-left:4px solid;padding:4px 10px;margin:4px 0;background:#fafafa}
li.error{border-color:#c62828}li.warning{border-color:#ef6c00}li.note{border-color:#9aa0a6}
code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.92em;color:#174ea6}
.check{color:#5f6368;font-size:.85em}.assumption{color:#5f6368;font-size:.9em;display:block}
table{border-collapse:collapse;margin:6px 0 16px;font-size:.92em}
th,td{border:1px solid #dadce0;padding:3px 8px;text-align:left}th{background:#f1f3f4}
svg{max-width:100%;height:auto;border:1px solid #dadce0;background:#fff}
svg text{font-family:system-ui,sans-serif}
"""


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _text(
    x: float, y: float, body: Any, size: int = 12, weight: str = "normal", anchor: str = "start", fill: str = ""
) -> str:
    colour = f' fill="{fill}"' if fill else ""
    return (
        f'<text x="{x:.0f}" y="{y:.0f}" font-size="{size}" font-weight="{weight}" '
        f'text-anchor="{anchor}"{colour}>{_e(body)}</text>'
    )


def _rect(
    x: float, y: float, w: float, h: float, fill: str, stroke: str = "#5f6368", rx: int = 3, title: str = ""
) -> str:
    tip = f"<title>{_e(title)}</title>" if title else ""
    return (
        f'<rect x="{x:.0f}" y="{y:.0f}" width="{w:.0f}" height="{h:.0f}" rx="{rx}" fill="{fill}" '
        f'stroke="{stroke}">{tip}</rect>'
    )


def _owners(picture: Mapping[str, Any]) -> tuple[dict[int, list[str]], dict[str, str]]:
    colour = {vm["name"]: PALETTE[i % len(PALETTE)] for i, vm in enumerate(picture.get("vms") or [])}
    owners: dict[int, list[str]] = {}
    for core in picture.get("host_cores") or []:
        owners.setdefault(core, []).append("host")
    for vm in picture.get("vms") or []:
        for core in vm.get("cores") or []:
            owners.setdefault(core, []).append(vm["name"])
    return owners, colour


def _core_cell(x: float, y: float, label: Any, who: list[str], colour: Mapping[str, str]) -> list[str]:
    """One core: its owner's colour, red when two owners claim it; a host core carries an H."""
    if len(who) > 1:
        fill = CLASH_COLOUR
    elif who == ["host"]:
        fill = HOST_COLOUR
    elif who:
        fill = colour.get(who[0], FREE_COLOUR)
    else:
        fill = FREE_COLOUR
    tip = f"core {label}: {', '.join(who) if who else 'free'}"
    text_colour = "#ffffff" if len(who) > 1 else "#202124"
    parts = [_rect(x, y, CELL, CELL, fill, title=tip)]
    parts.append(_text(x + CELL / 2, y + 16, label, 9, "bold" if len(who) > 1 else "normal", "middle", text_colour))
    if "host" in who:
        parts.append(_text(x + CELL - 3, y + 8, "H", 7, "bold", "end"))
    return parts


def _nodes(picture: Mapping[str, Any], y0: float) -> tuple[list[str], float, float]:
    """The NUMA node boxes with their cores and GPUs -> (svg parts, right edge, bottom)."""
    nodes = picture.get("numa_nodes") or []
    gpus = picture.get("gpus") or []
    owners, colour = _owners(picture)
    parts: list[str] = []
    x = PAD
    node_height = 0
    boxes = []
    for node in nodes:
        cores = node.get("cores") or []
        cols = min(max(len(cores), 1), 13 if len(cores) <= 26 else 16)
        rows = -(-len(cores) // cols) if cores else 1
        node_gpus = [g for g in gpus if g.get("node") == node.get("id")]
        width = max(cols * (CELL + GAP) + 2 * PAD, 250)
        height = 46 + rows * (CELL + GAP) + 12 + len(node_gpus) * 34 + PAD
        boxes.append((node, cores, cols, node_gpus, x, width))
        node_height = max(node_height, height)
        x += width + PAD
    for node, cores, cols, node_gpus, bx, width in boxes:
        parts.append(_rect(bx, y0, width, node_height, "#f8f9fa", rx=6))
        siblings = node.get("siblings") or []
        label = f"NUMA node {node.get('id')}: {len(cores)} cores"
        parts.append(_text(bx + PAD, y0 + 20, label, 14, "bold"))
        detail = f"cores {format_cpu_ranges(cores)}" + (f", siblings {format_cpu_ranges(siblings)}" if siblings else "")
        parts.append(_text(bx + PAD, y0 + 36, detail, 11))
        for index, core in enumerate(cores):
            cx = bx + PAD + (index % cols) * (CELL + GAP)
            cy = y0 + 46 + (index // cols) * (CELL + GAP)
            parts += _core_cell(cx, cy, core, owners.get(core, []), colour)
        gy = y0 + 46 + (-(-len(cores) // cols) if cores else 1) * (CELL + GAP) + 12
        for gpu in node_gpus:
            fill = colour.get(gpu.get("vm") or "", "#e8eaed")
            text = f"{gpu['name']}  {gpu.get('model', '')}  {gpu.get('vram_gb', '')} GB  {gpu.get('pci', '')}"
            parts.append(_rect(bx + PAD, gy, width - 2 * PAD, 28, fill, title=f"{text} -> {gpu.get('vm') or 'no VM'}"))
            parts.append(_text(bx + PAD + 8, gy + 18, text, 11))
            gy += 34
    return parts, x, y0 + node_height


def _unplaced(picture: Mapping[str, Any], y: float, width: float) -> tuple[list[str], float]:
    """Cores the plan asks for that this host does not have, in red beside a dashed outline of "no core"."""
    missing = picture.get("unplaced") or []
    if not missing:
        return [], y
    total = sum(m["count"] for m in missing)
    parts = [_text(PAD, y + 14, f"Not on this host: {total} core(s) the plan asks for", 13, "bold", fill=OVER_TEXT)]
    y += 22
    x = PAD
    for entry in missing:
        owner = entry["owner"]
        cpus = entry.get("cpus") or []
        labels: list[Any] = cpus or ["H" if owner == "host" else "?"] * entry["count"]
        what = "host reserve" if owner == "host" else owner
        for label in labels:
            if x + CELL > width - PAD:
                x = PAD
                y += CELL + GAP
            tip = (
                f"CPU {label} of {what}: no such CPU in numa_nodes"
                if cpus
                else f"{what}: a core it needs is not free on any node"
            )
            parts.append(
                f'<rect x="{x:.0f}" y="{y:.0f}" width="{CELL}" height="{CELL}" rx="3" fill="{CLASH_COLOUR}" '
                f'stroke="#7f0000" stroke-dasharray="3 2"><title>{_e(tip)}</title></rect>'
            )
            parts.append(_text(x + CELL / 2, y + 16, label, 9, "bold", "middle", "#ffffff"))
            x += CELL + GAP
        text = f"{what}: {entry['count']}" + (f" (CPU {format_cpu_ranges(cpus)})" if cpus else "")
        parts.append(_text(x + 4, y + 16, text, 11))
        x += 12 + 7 * len(text)
    return parts, y + CELL + 14


def _status(value: float, limit: float, warn_at: float) -> str:
    if value > limit:
        return CLASH_COLOUR
    return WARN_COLOUR if value > warn_at * limit else OK_COLOUR


def _bar(
    y: float,
    width: float,
    label: str,
    limit: float,
    unit: str,
    segments: list[tuple[float, str, str]],
    limit_label: str,
) -> list[str]:
    """A horizontal bar of ``segments`` (value, colour, tooltip) against ``limit``; what lies beyond it is red."""
    value = sum(segment[0] for segment in segments)
    x0, right = PAD + BAR_LABEL, width - PAD - BAR_VALUE
    scale = (right - x0) / max(limit, value, 1e-9)
    over = value > limit
    parts = [_text(PAD, y + 15, label, 12)]
    parts.append(_rect(x0, y, limit * scale, BAR_HEIGHT, "#f1f3f4", rx=2, title=f"{limit:,.0f} {unit} {limit_label}"))
    x: float = x0
    for amount, fill, tip in segments:
        if amount > 0:
            parts.append(_rect(x, y + 3, amount * scale, BAR_HEIGHT - 6, fill, stroke="#ffffff", rx=0, title=tip))
            x += amount * scale
    if over:
        parts.append(
            f'<rect x="{x0 + limit * scale:.0f}" y="{y:.0f}" width="{(value - limit) * scale:.0f}" '
            f'height="{BAR_HEIGHT}" fill="{CLASH_COLOUR}" fill-opacity="0.45" stroke="{CLASH_COLOUR}" '
            f'stroke-width="2"><title>{_e(f"{value - limit:,.0f} {unit} over the {limit_label}")}</title></rect>'
        )
    lx = x0 + limit * scale
    parts.append(
        f'<line x1="{lx:.0f}" y1="{y - 4:.0f}" x2="{lx:.0f}" y2="{y + BAR_HEIGHT + 4:.0f}" '
        'stroke="#202124" stroke-width="2"/>'
    )
    share = value / limit if limit else 0
    verdict = f"{value:,.0f} of {limit:,.0f} {unit} ({share:.0%})"
    if over:
        verdict += f", {value - limit:,.0f} over"
    weight, fill = ("bold", OVER_TEXT) if over else ("normal", "#202124")
    parts.append(_text(right + 8, y + 15, verdict, 12, weight, fill=fill))
    return parts


def _budgets(picture: Mapping[str, Any], y: float, width: float) -> tuple[list[str], float]:
    """Memory demand against the installed memory, and power against PSUs, UPS and circuit."""
    memory = picture.get("memory")
    power = picture.get("power") or []
    if not memory and not power:
        return [], y
    colour = _owners(picture)[1]
    parts = [_text(PAD, y + 14, "Budgets (a black line marks each limit; red is beyond it)", 13, "bold")]
    y += 26
    if memory:
        fills = {"huge pages": "#8ab4f8", "host reserve": HOST_COLOUR, "ZFS ARC max": "#a1887f"}
        segments = [
            (part["gib"], colour.get(part.get("vm") or "", fills.get(part["label"], "#c5cae9")),
             f"{part['label']}: {part['gib']:g} GiB")
            for part in memory.get("parts") or []
            if isinstance(part.get("gib"), (int, float))
        ]
        parts += _bar(y, width, "memory demand", memory["installed_gib"], "GiB", segments, "installed")
        # Parts beyond the limit are drawn under red; the caption keeps them readable.
        all_parts = memory.get("parts") or []
        vm_gib = sum(p["gib"] for p in all_parts if p.get("vm"))
        terms = [f"VMs {show(vm_gib)}"] if any(p.get("vm") for p in all_parts) else []
        terms += [f"{p['label']} {show(p['gib'])}" for p in all_parts if not p.get("vm")]
        total = sum(p["gib"] for p in all_parts)
        parts.append(
            _text(PAD + BAR_LABEL, y + BAR_HEIGHT + 12, f"{' + '.join(terms)} = {show(total)} GiB", 10, fill="#5f6368")
        )
        y += BAR_HEIGHT + 26
    for item in power:
        fill = _status(item["value"], item["limit"], item.get("warn_at", 1.0))
        segments = [(item["value"], fill, f"{item['value']:,.0f} W")]
        parts += _bar(y, width, item["label"], item["limit"], "W", segments, item.get("limit_label", "limit"))
        y += BAR_HEIGHT + 12
    return parts, y + 4


def render_svg(picture: Mapping[str, Any]) -> str:
    """NUMA nodes with their cores (coloured by owner), the GPUs on each node, VMs, budgets and storage tiers."""
    nodes = picture.get("numa_nodes") or []
    gpus = picture.get("gpus") or []
    vms = picture.get("vms") or []
    storage = picture.get("storage") or []
    colour = _owners(picture)[1]
    parts, right, bottom = _nodes(picture, PAD)
    floating = [g for g in gpus if g.get("node") not in {n.get("id") for n in nodes}]
    total_width = max(right, 900)
    y = bottom + PAD
    if floating:
        parts.append(_text(PAD, y + 12, "GPUs without a NUMA node:", 12, "bold"))
        y += 20
        for gpu in floating:
            parts.append(_rect(PAD, y, 360, 26, colour.get(gpu.get("vm") or "", "#e8eaed")))
            parts.append(_text(PAD + 8, y + 17, f"{gpu['name']}  {gpu.get('model', '')}  {gpu.get('pci', '')}", 11))
            y += 32
    extra, y = _unplaced(picture, y, total_width)
    parts += extra
    legend = [
        (HOST_COLOUR, "host reserve (H)"),
        (FREE_COLOUR, "free"),
        (CLASH_COLOUR, "given twice / not on this host"),
    ]
    if vms:
        parts.append(_text(PAD, y + 14, "Virtual machines", 13, "bold"))
        y += 22
        for vm in vms:
            fill = colour[vm["name"]]
            parts.append(_rect(PAD, y, 18, 18, fill))
            vm_gpus = ", ".join(vm.get("gpus") or []) or "no GPU"
            nodes_of = ", ".join(str(n) for n in vm.get("nodes") or []) or "-"
            memory = vm.get("memory_gb", "?")
            if isinstance(memory, float) and not math.isfinite(memory):
                memory = show(memory)
            text = (
                f"{vm['name']}: cores {format_cpu_ranges(vm.get('cores') or []) or 'none'} (node {nodes_of}), "
                f"{memory} GiB, {vm_gpus}"
            )
            parts.append(_text(PAD + 26, y + 14, text, 12))
            y += 24
    lx = PAD
    y += 6
    for fill, label in legend:
        parts.append(_rect(lx, y, 14, 14, fill))
        parts.append(_text(lx + 20, y + 12, label, 11))
        lx += 60 + 7 * len(label)
    y += 30
    extra, y = _budgets(picture, y, total_width)
    parts += extra
    if storage:
        parts.append(_text(PAD, y + 14, "Storage", 13, "bold"))
        y += 22
        sx = PAD
        for tier in storage:
            members = tier.get("members") or []
            width = 230
            if sx + width > total_width - PAD:
                sx = PAD
                y += 66
            parts.append(_rect(sx, y, width, 58, "#e3f2fd" if tier.get("kind") == "zfs" else "#f1f8e9", rx=5))
            parts.append(_text(sx + 8, y + 18, f"{tier.get('name')} ({tier.get('kind')})", 12, "bold"))
            parts.append(_text(sx + 8, y + 34, f"{tier.get('layout')}, {len(members)} member(s)", 11))
            usable = tier.get("usable_tb")
            parts.append(
                _text(sx + 8, y + 50, f"{usable:.1f} TB usable" if isinstance(usable, (int, float)) else "", 11)
            )
            sx += width + 10
        y += 66
    height = y + PAD
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {total_width:.0f} {height:.0f}" '
        f'width="{total_width:.0f}" height="{height:.0f}" role="img" aria-label="host layout">'
        + "".join(parts)
        + "</svg>"
    )


def _findings(kind: str, items: list[Mapping[str, Any]]) -> str:
    if not items:
        return ""
    out = [f"<h2>{_e(kind.title())}s ({len(items)})</h2>", '<ul class="findings">']
    for item in items:
        assumption = item.get("assumption")
        out.append(
            f'<li class="{kind}"><code>{_e(item.get("path", ""))}</code> '
            f'<span class="check">[{_e(item.get("check", ""))}]</span><br/>{_e(item.get("message", ""))}'
            + (f'<span class="assumption">assumption: {_e(assumption)}</span>' if assumption else "")
            + "</li>"
        )
    out.append("</ul>")
    return "".join(out)


def _table(table: Mapping[str, Any]) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in table.get("columns") or [])
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in table.get("rows") or [])
    return f"<h2>{_e(table.get('title', ''))}</h2><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(report: Mapping[str, Any], host: str = "") -> str:
    """The whole page: verdict, picture, findings, tables."""
    ok = bool(report.get("ok"))
    errors = report.get("errors") or []
    warnings = report.get("warnings") or []
    notes = report.get("notes") or []
    title = f"Host plan: {host}" if host else "Host plan"
    profile = report.get("profile")
    picture = report.get("picture") or {}
    body = [
        f"<h1>{_e(title)}</h1>",
        f"<p>{'profile ' + _e(profile) + ' &#183; ' if profile else ''}"
        f'<span class="verdict {"ok" if ok else "failed"}">{"OK" if ok else "FAILED"}</span> '
        f"{len(errors)} error(s), {len(warnings)} warning(s), {len(notes)} note(s)</p>",
    ]
    if picture.get("numa_nodes"):
        body.append("<h2>Layout</h2>" + render_svg(picture))
    body.append(_findings("error", errors))
    body.append(_findings("warning", warnings))
    body.append(_findings("note", notes))
    body += [_table(t) for t in report.get("tables") or []]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"/>'
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>" + "".join(body) + "</body></html>\n"
    )
