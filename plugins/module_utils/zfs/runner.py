# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one place ``zfs_pool`` runs zpool/zfs: argv lists, ``LC_ALL=C``, parsed results."""

from __future__ import annotations

from typing import Any

from ansible_collections.onprem.gpu_server.plugins.module_utils.tool_runner import ToolRunner
from ansible_collections.onprem.gpu_server.plugins.module_utils.zfs.parsers import (
    parse_get,
    parse_zfs_version,
    parse_zpool_import,
    parse_zpool_status,
)


class ZfsRunner(ToolRunner):
    """Runs ``zpool``/``zfs`` argv lists (argv[0] is the tool name; both must be installed)."""

    VERSION_FILE = "/sys/module/zfs/version"

    def __init__(self, module: Any) -> None:
        super().__init__(module, required=("zpool", "zfs"))

    def status(self) -> dict[str, Any]:
        """All imported pools, with full device paths (``zpool status -P``)."""
        return parse_zpool_status(self.run(["zpool", "status", "-P"])[1])

    def importable(self) -> list[dict[str, Any]]:
        """Exported pools ``zpool import`` can see (rc 1 with no output means none)."""
        rc, out, err = self.run(["zpool", "import"], check=False)
        if rc != 0 and "no pools available" not in (out + err) and out.strip():
            self.module.fail_json(msg=f"'zpool import' failed (rc={rc}): {err.strip() or out.strip()}")
        return parse_zpool_import(out)

    def pool_properties(self, name: str) -> dict[str, dict[str, str]]:
        return parse_get(self.run(["zpool", "get", "-H", "-p", "-o", "property,value,source", "all", name])[1])

    def filesystem_properties(self, name: str) -> dict[str, dict[str, str]]:
        return parse_get(self.run(["zfs", "get", "-H", "-p", "-o", "property,value,source", "all", name])[1])

    def version(self) -> tuple[int, ...] | None:
        """The loaded kernel module's version (sysfs), else the ``zfs-kmod`` line of ``zfs version``."""
        try:
            with open(self.VERSION_FILE, encoding="utf-8") as handle:
                found = parse_zfs_version(handle.read())
        except OSError:
            found = None
        if found is None:
            rc, out, _err = self.run(["zfs", "version"], check=False)
            found = parse_zfs_version(out) if rc == 0 else None
        return found
