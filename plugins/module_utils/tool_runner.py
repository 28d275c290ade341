# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one way modules of this collection run a system tool.

Argv lists only (no shell), ``LC_ALL=C`` so parsers see the C locale's words,
the binary looked up once per tool (PATH, then /usr/sbin and /sbin, where a
non-root PATH may not reach). Two ways to fail: ``run`` ends the module with
``fail_json`` (rc, stdout, stderr, argv), ``call`` raises ``CommandFailed`` so
the caller can phrase the error in its own words.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

C_LOCALE = {"LC_ALL": "C", "LANG": "C", "LANGUAGE": "C"}
SBIN_DIRS = ["/usr/sbin", "/sbin"]


class CommandFailed(RuntimeError):
    """A tool is missing or exited non-zero; the message carries argv, rc and stderr."""


class ToolRunner:
    """Runs argv lists whose argv[0] is a tool name, bound to an AnsibleModule."""

    def __init__(self, module: Any, required: Iterable[str] = ()) -> None:
        self.module = module
        self.paths: dict[str, str] = {}
        for tool in required:
            try:
                self.path(tool)
            except CommandFailed as exc:
                module.fail_json(msg=str(exc))

    def path(self, tool: str) -> str:
        """The tool's absolute path (looked up once); CommandFailed when it is not installed."""
        if tool not in self.paths:
            found = self.module.get_bin_path(tool, opt_dirs=SBIN_DIRS)
            if found is None:
                raise CommandFailed(f"{tool} not found in PATH, /usr/sbin or /sbin")
            self.paths[tool] = found
        return self.paths[tool]

    def has(self, tool: str) -> bool:
        try:
            self.path(tool)
        except CommandFailed:
            return False
        return True

    def execute(self, argv: list[str]) -> tuple[int, str, str]:
        """(rc, stdout, stderr) whatever the exit status; CommandFailed only when the tool is missing."""
        return self.module.run_command([self.path(argv[0]), *argv[1:]], environ_update=C_LOCALE, check_rc=False)

    def call(self, argv: list[str]) -> str:
        """stdout of a command that must succeed; CommandFailed otherwise."""
        rc, out, err = self.execute(argv)
        if rc != 0:
            raise CommandFailed(f"{' '.join(argv)} failed (rc={rc}): {err.strip() or out.strip()}")
        return out

    def run(self, argv: list[str], check: bool = True) -> tuple[int, str, str]:
        """(rc, stdout, stderr); with ``check`` a non-zero exit or a missing tool ends the module."""
        try:
            rc, out, err = self.execute(argv)
        except CommandFailed as exc:
            self.module.fail_json(msg=str(exc), cmd=argv)
        if check and rc != 0:
            self.module.fail_json(msg=f"'{' '.join(argv)}' failed (rc={rc}): {err.strip() or out.strip()}",
                                  rc=rc, stdout=out, stderr=err, cmd=argv)
        return rc, out, err
