# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one place ``md_array`` runs mdadm (and update-initramfs): argv lists, ``LC_ALL=C``."""

from __future__ import annotations

from typing import Any

from ansible_collections.onprem.gpu_server.plugins.module_utils.mdadm.parsers import parse_mdadm_export, parse_mdstat
from ansible_collections.onprem.gpu_server.plugins.module_utils.tool_runner import ToolRunner


class MdadmRunner(ToolRunner):
    """Runs ``mdadm`` (and update-initramfs) argv lists; mdadm must be installed."""

    def __init__(self, module: Any) -> None:
        super().__init__(module, required=("mdadm",))

    def mdstat(self) -> dict[str, Any]:
        try:
            with open("/proc/mdstat", encoding="utf-8") as handle:
                return parse_mdstat(handle.read())
        except OSError:
            return {"personalities": [], "arrays": {}}

    def detail(self, device: str) -> dict[str, Any]:
        return parse_mdadm_export(self.run(["mdadm", "--detail", "--export", device])[1])

    def examine(self, device: str) -> dict[str, Any]:
        """The md superblock on a device, or {} when it has none (mdadm exits non-zero then)."""
        rc, out, _err = self.run(["mdadm", "--examine", "--export", device], check=False)
        return parse_mdadm_export(out) if rc == 0 else {}
