# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure functions for one nftables table owned by the collection.

Text in, text or dicts out; no I/O. The module never writes ``flush ruleset``: every file built
here names exactly one table, so tables of Docker (iptables-nft), Proxmox, libvirt or an operator
survive every apply and every rollback.

Transaction shape (one ``nft -f`` run, one netlink batch, so the kernel applies all or nothing)::

    table inet onprem_filter {}        # declare: creates the table if it is absent, no-op otherwise
    delete table inet onprem_filter    # so the delete below never fails on a fresh host
    table inet onprem_filter {         # the wanted content, built from nothing
        ...
    }

``add table`` + ``flush table`` was not chosen: ``flush table`` empties the chains but keeps
them and every set, so a chain or set removed from the content would stay, a base chain whose
hook or priority changed would fail to load, and a set whose type changed would clash with the
old one. Deleting and re-creating gives exactly the content; the cost is that counters and the
elements of dynamic sets start from zero, which conntrack does not depend on (established
connections keep flowing).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

FAMILIES = ("inet", "ip", "ip6", "arp", "bridge", "netdev")
# Stricter than nft's identifiers: the name also ends up in a systemd unit name and a directory.
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_INCLUDE_RE = re.compile(r"^\s*include\b", re.MULTILINE)
ABSENT_MARKERS = ("No such file or directory",)


class RulesetError(ValueError):
    """The requested table name or content cannot be used; the message says why."""


@dataclass(frozen=True)
class TableRef:
    """An nftables table: address family and name."""

    family: str
    name: str

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise RulesetError(f"family: {self.family!r} is not one of {', '.join(FAMILIES)}")
        if not _NAME_RE.match(self.name):
            raise RulesetError(
                f"name: {self.name!r} must start with a letter or '_' and hold only letters, digits and '_'"
                " (at most 64 characters)"
            )

    @property
    def spec(self) -> str:
        """``<family> <name>`` as nft expects it after ``table``."""
        return f"{self.family} {self.name}"

    @property
    def slug(self) -> str:
        """``<family>-<name>``: for the state directory and the rollback unit."""
        return f"{self.family}-{self.name}"


def _code_only(body: str) -> str:
    """``body`` with comments and quoted strings blanked out, so braces and keywords in them do not count."""
    out: list[str] = []
    in_string = False
    in_comment = False
    for char in body:
        if in_comment:
            if char == "\n":
                in_comment = False
                out.append(char)
            continue
        if in_string:
            if char == '"':
                in_string = False
            elif char == "\n":
                raise RulesetError("content: a quoted string is not closed on its line")
            continue
        if char == "#":
            in_comment = True
        elif char == '"':
            in_string = True
            out.append('""')
        else:
            out.append(char)
    if in_string:
        raise RulesetError("content: a quoted string is not closed")
    return "".join(out)


def check_body(body: str) -> None:
    """Refuse content that could step outside the owned table.

    The content is placed inside ``table <family> <name> { ... }``; a ``}`` that closes the table
    early would let the rest of the text define or delete other tables, and an ``include`` could pull
    in anything. nft itself checks everything else (``nft -c``).
    """
    code = _code_only(body)
    depth = 0
    for lineno, line in enumerate(code.splitlines(), start=1):
        for char in line:
            if char == "{":
                depth += 1
            elif char == "}":
                depth -= 1
                if depth < 0:
                    raise RulesetError(f"content: line {lineno}: '}}' closes the owned table; give only its body")
    if depth != 0:
        raise RulesetError(f"content: {depth} '{{' without a matching '}}'")
    if _INCLUDE_RE.search(code):
        raise RulesetError("content: 'include' is not allowed; the table must be self-contained")


def _indent(body: str) -> str:
    lines = body.strip("\n").splitlines()
    return "".join(f"\t{line}\n" if line.strip() else "\n" for line in lines)


def transaction(ref: TableRef, body: str | None) -> str:
    """The nft script that replaces the table with ``body`` (None: removes the table)."""
    text = f"table {ref.spec} {{}}\ndelete table {ref.spec}\n"
    if body is not None:
        check_body(body)
        text += f"table {ref.spec} {{\n{_indent(body)}}}\n"
    return text


def restore_transaction(ref: TableRef, listing: str | None) -> str:
    """The nft script that brings back a table saved with ``nft list table`` (None: it was absent)."""
    text = f"table {ref.spec} {{}}\ndelete table {ref.spec}\n"
    if listing is None:
        return text
    first = next((line.strip() for line in listing.splitlines() if line.strip()), "")
    if first != f"table {ref.spec} {{":
        raise RulesetError(f"saved listing does not start with 'table {ref.spec} {{': {first!r}")
    return text + listing.rstrip("\n") + "\n"


def persist_text(ref: TableRef, script: str) -> str:
    """The boot-time file: a comment naming its owner, then the transaction ``script``."""
    return (
        "#!/usr/sbin/nft -f\n"
        f"# Managed by onprem.gpu_server.nft_ruleset: table {ref.spec}. Changes here are overwritten.\n"
        "# It names only this table (no 'flush ruleset'): loading it at boot, again, or from an\n"
        "# include in /etc/nftables.conf leaves every other table as it is.\n"
        f"{script}"
    )


def is_absent(rc: int, stderr: str) -> bool:
    """True when ``nft list table`` failed because the table does not exist."""
    return rc != 0 and any(marker in stderr for marker in ABSENT_MARKERS)


def parse_listing(stdout: str) -> list[dict[str, Any]]:
    """The ``nftables`` array of ``nft -j list ...`` output."""
    try:
        document = json.loads(stdout)
    except ValueError as exc:
        raise RulesetError(f"nft -j printed no JSON: {exc}: {stdout[:200]!r}") from exc
    items = document.get("nftables") if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise RulesetError("nft -j output has no 'nftables' array")
    return items


def split_canonical(stdout: str) -> tuple[list[dict[str, Any]], str]:
    """Split the canonical listing run's output: one JSON line (``nft -j``), then the text listing."""
    first, _sep, rest = stdout.partition("\n")
    return parse_listing(first), rest


_STATEFUL_RESET = {"counter": {"packets": 0, "bytes": 0}, "quota": {"used": 0}}


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "handle":
                continue
            if key in _STATEFUL_RESET and isinstance(item, dict):
                item = {**item, **_STATEFUL_RESET[key]}
            out[key] = _strip(item)
        return out
    if isinstance(value, list):
        return [_strip(item) for item in value]
    return value


def normalise(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The table as comparable data: no metainfo, no handles, counters and quotas at zero.

    Elements of sets that rules fill at run time (``dynamic`` or ``timeout`` flag) are dropped: they
    are traffic state, not configuration.
    """
    out = []
    for item in items:
        if "metainfo" in item:
            continue
        item = _strip(item)
        for kind in ("set", "map"):
            body = item.get(kind)
            if isinstance(body, dict) and {"dynamic", "timeout"} & set(body.get("flags", [])):
                item = {kind: {k: v for k, v in body.items() if k != "elem"}}
        out.append(item)
    return out


def tables_in(items: list[dict[str, Any]]) -> list[str]:
    """``family name`` of every table in an ``nft -j list ruleset`` array."""
    return [f"{i['table']['family']} {i['table']['name']}" for i in items if "table" in i]


def rollback_unit(ref: TableRef) -> str:
    """Name (without suffix) of the transient timer/service pair that restores the saved table."""
    return f"onprem-nft-rollback-{ref.slug}"
