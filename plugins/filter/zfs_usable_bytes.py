# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja2 filter zfs_usable_bytes (documentation in zfs_usable_bytes.yml beside this file)."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan._common import PlanInputError
from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.zfs import zfs_space


def zfs_usable_bytes(
    disks_bytes: Any,
    layout: str = "stripe",
    ashift: Any = 12,
    vdevs: Any = 1,
    whole_disk: bool = True,
    recordsize: Any = 131072,
    details: bool = False,
) -> Any:
    """Bytes a new pool offers to datasets (what ``zfs list`` shows as USED + AVAIL), or the full breakdown."""
    try:
        space = zfs_space(disks_bytes, layout, ashift, vdevs, whole_disk, recordsize)
    except PlanInputError as exc:
        raise AnsibleFilterError(f"zfs_usable_bytes: {exc}") from None
    return space if details else space["usable_bytes"]


class FilterModule:
    """The zfs_usable_bytes filter."""

    def filters(self) -> dict[str, Any]:
        return {"zfs_usable_bytes": zfs_usable_bytes}
