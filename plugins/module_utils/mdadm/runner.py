# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one place ``md_array`` runs mdadm (and update-initramfs): argv lists, ``LC_ALL=C``."""

from __future__ import annotations

from typing import Any

from ansible_collections.onprem.gpu_server.plugins.module_utils.mdadm.parsers import parse_mdadm_export, parse_mdstat

C_LOCALE = {"LC_ALL": "C", "LANG": "C"}


class MdadmRunner:
    """Runs ``mdadm`` argv lists (argv[0] is the tool name; the real path is looked up on first use)."""

    def __init__(self, module: Any) -> None:
        self.module = module
        self.paths: dict[str, str] = {"mdadm": module.get_bin_path("mdadm", required=True)}

    def run(self, argv: list[str], check: bool = True) -> tuple[int, str, str]:
        if argv[0] not in self.paths:
            self.paths[argv[0]] = self.module.get_bin_path(argv[0], required=True)
        rc, out, err = self.module.run_command([self.paths[argv[0]], *argv[1:]], environ_update=C_LOCALE)
        if check and rc != 0:
            self.module.fail_json(msg=f"'{' '.join(argv)}' failed (rc={rc}): {err.strip() or out.strip()}",
                                  rc=rc, stdout=out, stderr=err, cmd=argv)
        return rc, out, err

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
