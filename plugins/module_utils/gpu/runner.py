# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The nvidia-smi runner: argv lists, ``LC_ALL=C``, a time limit through coreutils ``timeout``."""

from __future__ import annotations

from typing import Any

C_LOCALE = {"LC_ALL": "C", "LANG": "C", "LANGUAGE": "C"}
SEARCH_DIRS = ["/usr/bin", "/usr/local/bin", "/usr/sbin", "/opt/nvidia/bin"]


class NvidiaSmi:
    """Runs nvidia-smi for an AnsibleModule; ``binary`` is None when it is not installed."""

    def __init__(self, module: Any, path: str | None = None, timeout: int = 30) -> None:
        self.module = module
        self.timeout = timeout
        self.binary = module.get_bin_path(path or "nvidia-smi", opt_dirs=SEARCH_DIRS)
        # A GPU that has fallen off the bus can make nvidia-smi hang for minutes; kill it instead.
        self.timeout_binary = module.get_bin_path("timeout") if timeout > 0 else None

    def __call__(self, args: list[str]) -> tuple[int, str, str]:
        argv = [self.binary, *args]
        if self.timeout_binary:
            argv = [self.timeout_binary, "--kill-after=5", str(self.timeout), *argv]
        rc, out, err = self.module.run_command(argv, environ_update=C_LOCALE, check_rc=False)
        return rc, out, err
