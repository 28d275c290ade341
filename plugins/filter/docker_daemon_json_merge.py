# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja2 filter docker_daemon_json_merge (documentation in docker_daemon_json_merge.yml beside this file)."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.onprem.gpu_server.plugins.module_utils.docker.daemon_json import (
    DaemonJsonError,
    merge_daemon_json,
)


def docker_daemon_json_merge(
    existing: Any, wanted: Any = None, defaults: Any = None, source: str = "/etc/docker/daemon.json"
) -> dict[str, Any]:
    """Merge wanted and default settings into the text of an existing daemon.json, keeping every other key."""
    try:
        return merge_daemon_json(existing, wanted, defaults, source)
    except DaemonJsonError as exc:
        raise AnsibleFilterError(f"docker_daemon_json_merge: {exc}") from None


class FilterModule:
    """The docker_daemon_json_merge filter."""

    def filters(self) -> dict[str, Any]:
        return {"docker_daemon_json_merge": docker_daemon_json_merge}
