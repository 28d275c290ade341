# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The commands vfio_pci runs: modprobe and update-initramfs (through the collection's ToolRunner)."""

from __future__ import annotations

from ansible_collections.onprem.gpu_server.plugins.module_utils.tool_runner import CommandFailed, ToolRunner

__all__ = ["CommandFailed", "PciCommands"]


class PciCommands(ToolRunner):
    """The kernel module tools, bound to an AnsibleModule; failures raise CommandFailed."""

    def load_vfio_pci(self) -> None:
        """``modprobe vfio-pci`` (needed before a function can be handed to it)."""
        self.call(["modprobe", "vfio-pci"])

    def update_initramfs(self, kernel_release: str) -> None:
        """Rebuild the running kernel's initramfs (Proxmox hooks copy it to the ESPs)."""
        self.call(["update-initramfs", "-u", "-k", kernel_release])
