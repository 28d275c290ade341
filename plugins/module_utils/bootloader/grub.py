# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""GRUB defaults: read ``/etc/default/grub`` + ``grub.d/*.cfg`` and write the module's drop-in.

``grub-mkconfig`` sources ``/etc/default/grub`` and then every ``/etc/default/grub.d/*.cfg``
in name order, and puts ``$GRUB_CMDLINE_LINUX $GRUB_CMDLINE_LINUX_DEFAULT`` on the normal
boot entries. Instead of running a shell, the files are read with a small interpreter that
understands plain assignments (``NAME=value``, ``export NAME=value``; single and double
quotes; ``$NAME`` and ``${NAME}``). A line that touches a ``GRUB_CMDLINE_LINUX`` variable in
any other way (command substitution, conditionals on one line, ``+=``) is reported, not guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .cmdline import split_cmdline

LINUX = "GRUB_CMDLINE_LINUX"
DEFAULT = "GRUB_CMDLINE_LINUX_DEFAULT"
MARKER = "# Managed by onprem.gpu_server.kernel_cmdline"
_ASSIGN = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


class ShellSyntax(ValueError):
    """A value this reader does not evaluate."""


def _expand_var(text: str, pos: int, env: dict[str, str]) -> tuple[str, int]:
    match = _VAR.match(text, pos)
    if not match:
        raise ShellSyntax(f"unsupported expansion at {text[pos:pos + 8]!r}")
    return env.get(match.group(1) or match.group(2), ""), match.end()


def shell_value(text: str, env: dict[str, str]) -> str:
    """Evaluate the right-hand side of a POSIX shell assignment (one word, then a comment or nothing)."""
    out: list[str] = []
    pos = 0
    while pos < len(text):
        char = text[pos]
        if char == "'":
            end = text.find("'", pos + 1)
            if end < 0:
                raise ShellSyntax("unterminated single quote")
            out.append(text[pos + 1:end])
            pos = end + 1
        elif char == '"':
            pos += 1
            while True:
                if pos >= len(text):
                    raise ShellSyntax("unterminated double quote")
                char = text[pos]
                if char == '"':
                    pos += 1
                    break
                if char == "\\" and pos + 1 < len(text) and text[pos + 1] in '\\"$`':
                    out.append(text[pos + 1])
                    pos += 2
                elif char == "$":
                    value, pos = _expand_var(text, pos, env)
                    out.append(value)
                elif char == "`":
                    raise ShellSyntax("command substitution")
                else:
                    out.append(char)
                    pos += 1
        elif char == "$":
            value, pos = _expand_var(text, pos, env)
            out.append(value)
        elif char == "\\" and pos + 1 < len(text):
            out.append(text[pos + 1])
            pos += 2
        elif char.isspace():
            rest = text[pos:].strip()
            if rest and not rest.startswith("#"):
                raise ShellSyntax(f"unexpected text after the value: {rest!r}")
            break
        elif char in "`;&|()<>":
            raise ShellSyntax(f"unsupported shell syntax {char!r}")
        else:
            out.append(char)
            pos += 1
    return "".join(out)


@dataclass
class GrubFile:
    """One sourced file: its path and text."""

    path: str
    text: str


@dataclass
class Evaluation:
    """The GRUB command line the files produce, and what each file added."""

    tokens: list[str]
    added_by: dict[str, list[str]] = field(default_factory=dict)
    removed_by: dict[str, list[str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _cmdline(env: dict[str, str]) -> list[str]:
    return split_cmdline(f"{env.get(LINUX, '')} {env.get(DEFAULT, '')}", stop_at_dashdash=False)


def _run_file(grub_file: GrubFile, env: dict[str, str], problems: list[str]) -> None:
    for number, line in enumerate(grub_file.text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _ASSIGN.match(line)
        if match:
            try:
                env[match.group(1)] = shell_value(match.group(2), env)
                continue
            except ShellSyntax as exc:
                if LINUX in match.group(1):
                    problems.append(f"{grub_file.path}:{number}: cannot evaluate ({exc}): {stripped}")
                continue
        if LINUX in line:
            problems.append(f"{grub_file.path}:{number}: not a plain assignment, not evaluated: {stripped}")


def evaluate(files: list[GrubFile]) -> Evaluation:
    """Source ``files`` in order; record the tokens each one added to the boot command line."""
    env: dict[str, str] = {}
    problems: list[str] = []
    added: dict[str, list[str]] = {}
    removed: dict[str, list[str]] = {}
    for grub_file in files:
        before = _cmdline(env)
        _run_file(grub_file, env, problems)
        after = _cmdline(env)
        remaining = list(before)
        new = []
        for token in after:
            if token in remaining:
                remaining.remove(token)
            else:
                new.append(token)
        added[grub_file.path] = new
        removed[grub_file.path] = remaining
    return Evaluation(_cmdline(env), added, removed, problems)


def dropin_tokens(text: str) -> list[str]:
    """The parameters the module's own drop-in adds (it is evaluated on an empty environment)."""
    return evaluate([GrubFile("dropin", text)]).tokens


def _shell_quote_inner(token: str) -> str:
    return re.sub(r'([\\"$`])', r"\\\1", token)


def render_dropin(tokens: list[str]) -> str:
    """The drop-in text: append ``tokens`` to GRUB_CMDLINE_LINUX_DEFAULT."""
    words = " ".join(_shell_quote_inner(token) for token in tokens)
    return (
        f"{MARKER}; local edits are overwritten.\n"
        "# Appends to the default entry's kernel command line; applied by update-grub or\n"
        "# proxmox-boot-tool refresh, active after the next boot.\n"
        f'{DEFAULT}="${{{DEFAULT}}} {words}"\n'
    )
