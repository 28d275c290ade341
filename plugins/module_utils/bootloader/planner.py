# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Compute what kernel_cmdline changes: which file, its new text, and whether a reboot is due.

Pure: the caller reads the files and ``/proc/cmdline`` and passes their text in.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field

from .cmdline import Wanted, apply_request, differing_keys, duplicates, render_token, split_cmdline, values_of
from .detect import GRUB, SYSTEMD_BOOT
from .grub import MARKER, GrubFile, dropin_tokens, evaluate, render_dropin

GRUB_DEFAULT_FILE = "/etc/default/grub"
GRUB_DROPIN_DIR = "/etc/default/grub.d"
KERNEL_CMDLINE_FILE = "/etc/kernel/cmdline"


class PlanError(RuntimeError):
    """The request cannot be applied safely; nothing was changed."""


@dataclass
class Plan:
    """The outcome: ``after`` is None when the file is to be removed (or stays absent)."""

    path: str
    before: str | None
    after: str | None
    configured: list[str]
    running: list[str]
    reboot_keys: list[str]
    warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.before != self.after

    @property
    def reboot_required(self) -> bool:
        return bool(self.reboot_keys)


def dropin_path(name: str) -> str:
    """Where the module's GRUB drop-in lives."""
    return posixpath.join(GRUB_DROPIN_DIR, f"{name}.cfg")


def _show(tokens: list[str], key: str) -> str:
    return " ".join(t for t in tokens if values_of([t], key)) or "(not set)"


def _check_outcome(configured: list[str], wanted: Mapping[str, Wanted], state: str,
                   added_by: Mapping[str, list[str]], removed_by: Mapping[str, list[str]],
                   own: str) -> tuple[list[str], list[str]]:
    """Return (refusals, warnings) about how other files interact with the request."""
    refusals: list[str] = []
    warnings: list[str] = []
    for key, item in wanted.items():
        values = values_of(configured, key)
        others = {path: [t for t in tokens if values_of([t], key)] for path, tokens in added_by.items() if path != own}
        others = {path: tokens for path, tokens in others.items() if tokens}
        if state == "present":
            if values[-len(item.values):] != item.values:
                refusals.append(
                    f"{item.name}: wanted {' '.join(item.tokens())} but the files would give "
                    f"{_show(configured, key)}; a file sourced after {own} overrides it: "
                    + ", ".join(sorted({p for p, t in removed_by.items() if values_of(t, key)} | set(others))
                                or ["(unknown)"])
                )
                continue
            for path, tokens in others.items():
                if values_of(tokens, key) != item.values:
                    warnings.append(
                        f"{item.name}: {path} also sets {' '.join(tokens)}; {own} comes later on the "
                        f"command line, so {' '.join(item.tokens())} wins"
                    )
        else:
            left = [v for v in values if not item.values or v in item.values]
            if left:
                warnings.append(
                    f"{item.name}: still set by {', '.join(sorted(others)) or 'another file'} "
                    f"({_show(configured, key)}); this module only edits {own}"
                )
    return refusals, warnings


def plan_grub(wanted: Mapping[str, Wanted], state: str, name: str, default_text: str | None,
              dropins: Mapping[str, str], running: list[str]) -> Plan:
    """Plan the GRUB drop-in. ``dropins`` maps every ``grub.d/*.cfg`` path (ours included) to its text."""
    own = dropin_path(name)
    before = dropins.get(own)
    if before is not None and not before.startswith(MARKER):
        raise PlanError(f"{own} exists but is not managed by this module (no '{MARKER}' header); pick another name")
    current = dropin_tokens(before) if before is not None else []
    tokens = apply_request(current, wanted, state)
    after = render_dropin(tokens) if tokens else None
    files = [GrubFile(GRUB_DEFAULT_FILE, default_text)] if default_text is not None else []
    for path in sorted(set(dropins) | {own}, key=lambda p: p.encode()):
        text = after if path == own else dropins[path]
        if text is not None:
            files.append(GrubFile(path, text))
    evaluation = evaluate(files)
    refusals, warnings = _check_outcome(evaluation.tokens, wanted, state, evaluation.added_by,
                                        evaluation.removed_by, own)
    warnings = [*evaluation.problems, *warnings]
    if refusals:
        raise PlanError("; ".join(refusals))
    return Plan(own, before, after, evaluation.tokens, running,
                differing_keys(evaluation.tokens, running, wanted), warnings)


def plan_kernel_cmdline_file(wanted: Mapping[str, Wanted], state: str, text: str | None,
                             running: list[str]) -> Plan:
    """Plan ``/etc/kernel/cmdline`` (systemd-boot through proxmox-boot-tool): one line, edited in place."""
    path = KERNEL_CMDLINE_FILE
    if text is None:
        raise PlanError(
            f"{path} does not exist; it must hold the root= parameters of this host, so it is not created "
            "from scratch (proxmox-boot-tool hosts have it from the installer)"
        )
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) > 1:
        raise PlanError(f"{path} has {len(lines)} non-empty lines; it must be a single line")
    current = split_cmdline(lines[0] if lines else "", stop_at_dashdash=False)
    warnings = [
        f"{wanted[key].name}: {path} had {' '.join(render_token(wanted[key].name, v) for v in values)}; "
        "rewritten to the requested value"
        for key, values in duplicates(current, wanted).items()
        if state == "present"
    ]
    tokens = apply_request(current, wanted, state)
    after = " ".join(tokens) + "\n"
    if after == text or " ".join(current) == " ".join(tokens):
        after = text
    return Plan(path, text, after, tokens, running, differing_keys(tokens, running, wanted), warnings)


def plan(loader_name: str, wanted: Mapping[str, Wanted], state: str, running_text: str, name: str,
         grub_default: str | None = None, grub_dropins: Mapping[str, str] | None = None,
         kernel_cmdline: str | None = None) -> Plan:
    """Dispatch on the boot loader."""
    running = split_cmdline(running_text)
    if loader_name == GRUB:
        return plan_grub(wanted, state, name, grub_default, grub_dropins or {}, running)
    if loader_name == SYSTEMD_BOOT:
        return plan_kernel_cmdline_file(wanted, state, kernel_cmdline, running)
    raise PlanError(f"unknown boot loader {loader_name!r}")
