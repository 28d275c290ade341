"""Fakes shared by the zfs_pool and md_array module tests: a scripted command table instead of the system.

No tests here; the module tests import ``install_fake`` and ``run_module``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from ansible.module_utils import _internal, basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.onprem.gpu_server.plugins.module_utils.blockdev import probe as blockdev_probe
from ansible_collections.onprem.gpu_server.plugins.module_utils.zfs.runner import ZfsRunner

CLEAN = {"signatures": [], "mounts": {}, "holders": {}, "md_arrays": []}


class FakeSystem:
    """Answers run_command from a table keyed by argv (tool name first); records every call."""

    def __init__(self, table: dict[tuple[str, ...], Any]) -> None:
        self.table = table
        self.calls: list[list[str]] = []
        self.probes: dict[str, dict[str, Any]] = {}

    def run_command(self, module: Any, args: list[str], **kwargs: Any) -> tuple[int, str, str]:
        assert isinstance(args, list), "argv lists only, never shell strings"
        assert kwargs.get("environ_update", {}).get("LC_ALL") == "C"
        argv = [args[0].rsplit("/", 1)[-1], *args[1:]]
        self.calls.append(argv)
        answer = self.table.get(tuple(argv))
        if answer is None:
            raise AssertionError(f"unexpected command {argv}")
        return answer(self) if callable(answer) else answer

    def ran(self, prefix: list[str]) -> list[list[str]]:
        return [c for c in self.calls if c[: len(prefix)] == prefix]


def install_fake(monkeypatch) -> FakeSystem:
    """Install a FakeSystem; probe() returns clean findings unless a test sets ``probes``."""
    # The module version comes from ``zfs version`` here, never from the test host's /sys.
    system = FakeSystem({("zfs", "version"): (0, "zfs-2.3.2-2~bpo12+2\nzfs-kmod-2.3.2-2~bpo12+2\n", "")})
    monkeypatch.setattr(ZfsRunner, "VERSION_FILE", "/nonexistent/zfs/version")

    def run_command(self, args, **kw):
        return system.run_command(self, args, **kw)

    def get_bin_path(self, name, required=False, opt_dirs=None):
        return f"/usr/sbin/{name}"

    # Other tests import controller code, which routes module warnings to the display instead of the result.
    monkeypatch.setattr(_internal, "is_controller", False)
    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", get_bin_path)
    monkeypatch.setattr(blockdev_probe.BlockdevRunner, "resolve",
                        lambda self, path: {"real": path, "disk": blockdev_probe.fallback_parent(path)})

    def probe(self, path):
        system.calls.append(["probe", path])
        return {**CLEAN, "real": path, **system.probes.get(path, {})}

    monkeypatch.setattr(blockdev_probe.BlockdevRunner, "probe", probe)
    return system


def run_module(main, args: dict[str, Any], capsys) -> dict[str, Any]:
    with patch_module_args(args), pytest.raises(SystemExit):
        main()
    return json.loads(capsys.readouterr().out)
