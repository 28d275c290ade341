# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading and writing small configuration files below a root (``/`` on a host, a tree in tests).

Shared by kernel_cmdline, vfio_pci, nft_ruleset and nic_tuning. Writes go to a temporary file in the target's
directory and are moved into place with ``module.atomic_move``, so a reader never sees a
half-written file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Any


def host_path(root: str, path: str) -> str:
    """``path`` (absolute on the host) below ``root``."""
    return os.path.join(root, path.lstrip("/"))


def read_text(root: str, path: str) -> str | None:
    """The file's text, or None when it does not exist."""
    try:
        with open(host_path(root, path), encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def write_text(module: Any, root: str, path: str, text: str, mode: int = 0o644) -> None:
    """Write ``text`` through a temporary file and ``atomic_move`` (creating the directory if needed)."""
    target = host_path(root, path)
    directory = os.path.dirname(target)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".ansible-tmp-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        module.atomic_move(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def remove(root: str, path: str) -> None:
    """Remove a file the module owns; a missing file is fine."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(host_path(root, path))


def file_diff(path: str, before: str | None, after: str | None) -> dict[str, str]:
    """One entry of Ansible's ``diff`` list (an absent file shows as empty text)."""
    return {
        "before_header": path if before is not None else f"{path} (absent)",
        "after_header": path if after is not None else f"{path} (absent)",
        "before": before or "",
        "after": after or "",
    }
