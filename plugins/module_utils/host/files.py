# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading and writing small configuration files below a root (``/`` on a host, a tree in tests).

Shared by kernel_cmdline, vfio_pci, nft_ruleset, commit_files and nic_tuning. Writes go to a temporary
file in the target's directory and are moved into place with ``module.atomic_move``, so a reader never
sees a half-written file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
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
        # atomic_move gives a new file the umask's mode and an existing one its old mode: create the target
        # with the wanted mode first (so it is never more open than that) and set the mode again after the move.
        with contextlib.suppress(FileExistsError):
            os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))
        module.atomic_move(tmp, target)
        os.chmod(target, mode)
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


class RootFiles:
    """The files a module owns below ``root`` (``/`` on a host, a tree in tests), for commit-confirm."""

    def __init__(self, module: Any, root: str) -> None:
        self.module = module
        self.root = root

    def read(self, path: str) -> str | None:
        return read_text(self.root, path)

    def write(self, path: str, text: str, mode: int = 0o644) -> None:
        write_text(self.module, self.root, path, text, mode)

    def remove(self, path: str) -> None:
        remove(self.root, path)

    def mode(self, path: str) -> int | None:
        """Permission bits, or None when the file does not exist."""
        try:
            return os.stat(host_path(self.root, path)).st_mode & 0o7777
        except FileNotFoundError:
            return None

    def ensure_dir(self, path: str) -> None:
        os.makedirs(host_path(self.root, path), mode=0o700, exist_ok=True)

    def save(self, path: str, copy: str) -> None:
        """Copy ``path`` (content, mode, owner, times) to ``copy``."""
        target = host_path(self.root, copy)
        os.makedirs(os.path.dirname(target), mode=0o700, exist_ok=True)
        shutil.copy2(host_path(self.root, path), target)
        stat = os.stat(host_path(self.root, path))
        os.chown(target, stat.st_uid, stat.st_gid)
