# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The commands kernel_cmdline runs: bootctl, update-grub, proxmox-boot-tool. Argv lists, ``LC_ALL=C``."""

from __future__ import annotations

from ansible_collections.onprem.gpu_server.plugins.module_utils.tool_runner import CommandFailed, ToolRunner

__all__ = ["BootCommands", "CommandFailed"]


class BootCommands(ToolRunner):
    """The boot loader tools, bound to an AnsibleModule; failures raise CommandFailed."""

    def bootctl_is_installed(self) -> bool | None:
        """True/False from ``bootctl is-installed``; None when bootctl is not there."""
        if not self.has("bootctl"):
            return None
        rc, _out, _err = self.execute(["bootctl", "is-installed"])
        return rc == 0

    def refresh(self, argv: list[str]) -> str:
        """Run the boot loader refresh (``update-grub`` or ``proxmox-boot-tool refresh``)."""
        return self.call(argv)
