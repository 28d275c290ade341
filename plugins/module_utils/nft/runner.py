# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one place nft_ruleset runs nft and unshare: argv lists, ``LC_ALL=C``."""

from __future__ import annotations

from typing import Any

from ansible_collections.onprem.gpu_server.plugins.module_utils.nft import ruleset
from ansible_collections.onprem.gpu_server.plugins.module_utils.tool_runner import ToolRunner

# Loads a script into the fresh, empty network namespace unshare made, then lists the table there
# twice (JSON for the comparison, text for the diff). Two nft runs are needed: a "list" inside the
# loaded script would print nft's parse cache, not what the kernel holds. Everything variable is a
# positional argument; nothing is pasted into the script.
CANONICAL_SCRIPT = '"$1" -f "$2" && "$1" -j list table "$3" "$4" && "$1" list table "$3" "$4"'


class NftError(RuntimeError):
    """nft refused a script or failed; the message is nft's own."""


class NftRunner(ToolRunner):
    """nft, and unshare for the scratch namespace."""

    def __init__(self, module: Any) -> None:
        super().__init__(module, required=("nft",))

    def list_json(self, ref: ruleset.TableRef) -> list[dict[str, Any]] | None:
        """The table as ``nft -j`` items, or None when it does not exist."""
        rc, out, err = self.execute(["nft", "-j", "list", "table", ref.family, ref.name])
        if ruleset.is_absent(rc, err):
            return None
        if rc != 0:
            raise NftError(f"nft -j list table {ref.spec} failed (rc={rc}): {err.strip()}")
        return ruleset.parse_listing(out)

    def list_text(self, ref: ruleset.TableRef) -> str | None:
        """``nft list table`` text (loadable with ``nft -f``), or None when the table does not exist."""
        rc, out, err = self.execute(["nft", "list", "table", ref.family, ref.name])
        if ruleset.is_absent(rc, err):
            return None
        if rc != 0:
            raise NftError(f"nft list table {ref.spec} failed (rc={rc}): {err.strip()}")
        return out

    def check(self, path: str) -> None:
        """``nft -c -f``: parse and validate against the running kernel without committing."""
        rc, out, err = self.execute(["nft", "-c", "-f", path])
        if rc != 0:
            raise NftError(err.strip() or out.strip() or f"nft -c -f {path} failed (rc={rc})")

    def apply(self, path: str) -> None:
        """``nft -f``: one atomic transaction."""
        rc, out, err = self.execute(["nft", "-f", path])
        if rc != 0:
            raise NftError(err.strip() or out.strip() or f"nft -f {path} failed (rc={rc})")

    def canonical(self, path: str, ref: ruleset.TableRef) -> tuple[list[dict[str, Any]] | None, str]:
        """Load ``path`` into a throw-away network namespace and read back how the kernel holds it.

        The same nft and kernel produce the host's listing, so comparing the two is exact and ignores
        formatting. The namespace starts with an empty ruleset and vanishes with the process; the
        host's ruleset is never touched. (None, "") when the script leaves no table (removal).
        """
        argv = ["unshare", "--net", "--", self.path("sh"), "-c", CANONICAL_SCRIPT, "onprem-nft-canonical",
                self.path("nft"), path, ref.family, ref.name]
        rc, out, err = self.execute(argv)
        if ruleset.is_absent(rc, err):
            return None, ""
        if rc != 0:
            raise NftError(err.strip() or out.strip() or f"loading {path} in a scratch network namespace failed")
        return ruleset.split_canonical(out)
