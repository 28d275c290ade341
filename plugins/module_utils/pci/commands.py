# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The commands vfio_pci runs: modprobe and update-initramfs. Argv lists, ``LC_ALL=C``."""

from __future__ import annotations

from typing import Any

C_LOCALE = {"LC_ALL": "C", "LANG": "C", "LANGUAGE": "C"}


class CommandFailed(RuntimeError):
    """A command exited non-zero; the message carries argv, rc and stderr."""


class PciCommands:
    """One runner for the kernel module tools, bound to an AnsibleModule."""

    def __init__(self, module: Any) -> None:
        self.module = module

    def _run(self, argv: list[str]) -> str:
        binary = self.module.get_bin_path(argv[0], opt_dirs=["/usr/sbin", "/sbin"])
        if binary is None:
            raise CommandFailed(f"{argv[0]} not found in PATH, /usr/sbin or /sbin")
        rc, out, err = self.module.run_command([binary, *argv[1:]], environ_update=C_LOCALE, check_rc=False)
        if rc != 0:
            raise CommandFailed(f"{' '.join(argv)} failed (rc={rc}): {err.strip() or out.strip()}")
        return out

    def load_vfio_pci(self) -> None:
        """``modprobe vfio-pci`` (needed before a function can be handed to it)."""
        self._run(["modprobe", "vfio-pci"])

    def update_initramfs(self, kernel_release: str) -> None:
        """Rebuild the running kernel's initramfs (Proxmox hooks copy it to the ESPs)."""
        self._run(["update-initramfs", "-u", "-k", kernel_release])
