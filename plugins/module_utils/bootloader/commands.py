# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The commands kernel_cmdline runs: bootctl, update-grub, proxmox-boot-tool. Argv lists, ``LC_ALL=C``."""

from __future__ import annotations

from typing import Any

C_LOCALE = {"LC_ALL": "C", "LANG": "C", "LANGUAGE": "C"}


class CommandFailed(RuntimeError):
    """A command exited non-zero; the message carries argv, rc and stderr."""


class BootCommands:
    """One runner for the boot loader tools, bound to an AnsibleModule."""

    def __init__(self, module: Any) -> None:
        self.module = module

    def _run(self, argv: list[str]) -> tuple[int, str, str]:
        binary = self.module.get_bin_path(argv[0], opt_dirs=["/usr/sbin", "/sbin"])
        if binary is None:
            raise CommandFailed(f"{argv[0]} not found in PATH, /usr/sbin or /sbin")
        rc, out, err = self.module.run_command([binary, *argv[1:]], environ_update=C_LOCALE, check_rc=False)
        return rc, out, err

    def bootctl_is_installed(self) -> bool | None:
        """True/False from ``bootctl is-installed``; None when bootctl is not there."""
        if self.module.get_bin_path("bootctl", opt_dirs=["/usr/bin", "/bin"]) is None:
            return None
        rc, _out, _err = self._run(["bootctl", "is-installed"])
        return rc == 0

    def refresh(self, argv: list[str]) -> str:
        """Run the boot loader refresh (``update-grub`` or ``proxmox-boot-tool refresh``)."""
        rc, out, err = self._run(argv)
        if rc != 0:
            raise CommandFailed(f"{' '.join(argv)} failed (rc={rc}): {err.strip() or out.strip()}")
        return out
