# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading sysfs attributes: the text of one file, a number, the target of a link; None when absent.

The kernel refuses some reads (EINVAL for the speed of a down link or an unknown
``name_assign_type``) and drops attributes between kernels and in virtual machines, so every
helper answers None instead of raising. Shared by the PCI and the network interface readers.
"""

from __future__ import annotations

import os


def read_attr(path: str) -> str | None:
    """An attribute's text without its newline, or None when it is missing or the read is refused."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read().strip()
    except OSError:
        return None


def to_int(text: str | None, base: int = 10) -> int | None:
    """``text`` as an integer in ``base``, or None (no text, or not a number)."""
    try:
        return int(text, base) if text is not None else None
    except ValueError:
        return None


def link_name(path: str) -> str | None:
    """The last component of a symlink's target (a driver's or a master's name), or None."""
    try:
        return os.path.basename(os.readlink(path))
    except OSError:
        return None
