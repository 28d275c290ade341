# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Converge one owned table, with an optional commit-confirm, through an NftRunner and a file store.

Commit-confirm through ``host/commit_confirm`` (the collection's one implementation), per table, state in
``<state_dir>/<family>-<name>/``:

1. ``rollback.nft``: the table as it was before the unconfirmed change (or its absence), saved with
   ``nft list table`` and checked with ``nft -c``; kept across further unconfirmed changes, so it is
   always the last confirmed state.
2. ``pending.json``: what was applied (normalised) and what to persist once it is confirmed.
3. A transient systemd timer ``onprem-nft-rollback-<family>-<name>.timer`` runs ``rollback.sh``
   (``nft -f rollback.nft``, then the ``rolled-back`` marker) when it elapses. It is armed before the new
   table is applied, so a connection that dies during the apply is covered as well.

The boot-time file is only written on confirmation: a host that reboots during the window comes
up with the last confirmed table. Confirming stops the timer, then compares the live table with
the one applied: if the rollback already ran, confirmation fails instead of persisting a table
that is no longer live.
"""

from __future__ import annotations

import os
import time
from typing import Any, Protocol

from ansible_collections.onprem.gpu_server.plugins.module_utils.host import commit_confirm
from ansible_collections.onprem.gpu_server.plugins.module_utils.host.commit_confirm import Files, Refused, Timer
from ansible_collections.onprem.gpu_server.plugins.module_utils.nft import ruleset

__all__ = ["OwnedTable", "Refused"]


class Runner(Protocol):
    def list_json(self, ref: ruleset.TableRef) -> list[dict[str, Any]] | None: ...

    def list_text(self, ref: ruleset.TableRef) -> str | None: ...

    def check(self, path: str) -> None: ...

    def apply(self, path: str) -> None: ...

    def canonical(self, path: str, ref: ruleset.TableRef) -> tuple[list[dict[str, Any]] | None, str]: ...

    def path(self, tool: str) -> str: ...


class OwnedTable:
    """One table: read, compare, apply, arm/confirm the rollback, persist."""

    def __init__(self, runner: Runner, files: Files, ref: ruleset.TableRef, state_dir: str, timer: Timer,
                 clock: Any = time.time, root: str = "/") -> None:
        self.runner = runner
        self.files = files
        self.ref = ref
        self.dir = os.path.join(state_dir, ref.slug)
        self.unit = ruleset.rollback_unit(ref)
        self.rollback_path = os.path.join(self.dir, "rollback.nft")
        self.commit = commit_confirm.CommitConfirm(timer, files, self.unit, self.dir, f"table {ref.spec}",
                                                   clock, root)
        self.warnings = self.commit.warnings

    # -- state files -------------------------------------------------------------------------
    def _clear_state(self) -> None:
        self.commit.clear([self.rollback_path])

    def _live(self) -> list[dict[str, Any]] | None:
        items = self.runner.list_json(self.ref)
        return None if items is None else ruleset.normalise(items)

    # -- converge ------------------------------------------------------------------------------
    def converge(self, body: str | None, script_path: str, persist_path: str | None, confirm_timeout: int,
                 check_mode: bool) -> dict[str, Any]:
        """Make the live table equal ``body`` (None: absent). ``script_path`` receives the transaction.

        Raises ruleset.RulesetError, runner.NftError or Refused before any change to the ruleset.
        """
        script = ruleset.transaction(self.ref, body)
        self.files.write(script_path, script, 0o600)
        # nft's own validation first: a malformed table fails here with nft's message.
        self.runner.check(script_path)

        pending = self.commit.pending()
        armed = self.commit.waiting(check_mode)
        if armed and not confirm_timeout:
            raise Refused(
                f"a change to table {self.ref.spec} waits for confirmation (rollback unit {self.unit}.timer): "
                "confirm it (confirm=true) or apply with confirm_timeout, so the rollback stays consistent"
            )

        desired, desired_text = self.runner.canonical(script_path, self.ref) if body is not None else (None, "")
        wanted = None if desired is None else ruleset.normalise(desired)
        current = self._live()
        table_changed = wanted != current

        persist = ruleset.persist_text(self.ref, script) if body is not None else None
        persist_changed = bool(persist_path) and self.files.read(persist_path or "") != persist
        before_text = self.runner.list_text(self.ref) if table_changed else None

        result: dict[str, Any] = {
            "changed": False,
            "table": self.ref.spec,
            "present": wanted is not None,
            "rollback_armed": armed,
            "rollback_unit": f"{self.unit}.timer",
            "rollback_at": pending.get("rollback_at") if armed and pending else None,
            "persist_path": persist_path,
            "diff": {"before_header": f"table {self.ref.spec} (live)", "before": before_text or "",
                     "after_header": f"table {self.ref.spec} (wanted)", "after": desired_text},
        }
        use_confirm = bool(confirm_timeout) and table_changed
        if table_changed:
            result["changed"] = True
        elif persist_changed and not armed:
            # The live table is already right (and confirmed); only the boot file lags behind.
            result["changed"] = True
            if not check_mode:
                self._persist(persist_path, persist)
        if check_mode or not table_changed:
            result["rollback_armed"] = armed or (use_confirm and check_mode)
            return result

        if use_confirm:
            result["rollback_at"] = self._arm_and_apply(script_path, before_text, wanted, armed,
                                                        persist_path, persist, confirm_timeout)
            result["rollback_armed"] = True
        else:
            self.runner.apply(script_path)
            self._persist(persist_path, persist)
        return result

    def _arm_and_apply(self, script_path: str, before_text: str | None, wanted: Any, armed: bool,
                       persist_path: str | None, persist: str | None, timeout: int) -> float:
        if not armed:
            # Save the last confirmed state; a second unconfirmed change keeps the first one's save.
            restore = ruleset.restore_transaction(self.ref, before_text)
            self.files.write(self.rollback_path, restore, 0o600)
            try:
                self.runner.check(self.rollback_path)
            except Exception:
                self._clear_state()
                raise
        saved = os.path.join(self.commit.root, self.rollback_path.lstrip("/"))
        rollback = self.commit.script([], [commit_confirm.Command((self.runner.path("nft"), "-f", saved))],
                                      owner="onprem.gpu_server.nft_ruleset")
        record = {
            "table": self.ref.spec,
            "applied": wanted,
            "persist_path": persist_path,
            "persist_text": persist,
            "saved_files": [self.rollback_path],
        }
        rollback_at = self.commit.arm(timeout, rollback, record)
        try:
            self.runner.apply(script_path)
        except Exception:
            self.commit.abort(forget=False)
            if not armed:
                self._clear_state()
            raise
        return rollback_at

    def _persist(self, path: str | None, text: str | None) -> None:
        if not path:
            return
        if text is None:
            self.files.remove(path)
        else:
            self.files.write(path, text, 0o644)

    # -- confirm -------------------------------------------------------------------------------
    def confirm(self, check_mode: bool) -> dict[str, Any]:
        """Keep the unconfirmed change: stop the rollback, check the live table is the applied one, persist."""
        result: dict[str, Any] = {
            "changed": False,
            "table": self.ref.spec,
            "confirmed": False,
            "rollback_armed": False,
            "rollback_unit": f"{self.unit}.timer",
            "rollback_at": None,
            "persist_path": None,
        }
        # A rollback that already ran raises RolledBack; the record (rollback.nft among its saved files) is gone.
        pending = self.commit.confirm(check_mode)
        if pending is None:
            return result
        result["persist_path"] = pending.get("persist_path")
        live = self._live()
        if live != pending.get("applied"):
            if not check_mode:
                self._clear_state()
            raise Refused(
                f"table {self.ref.spec} is no longer the one applied at {pending.get('armed_at')}: the rollback "
                f"(due at {pending.get('rollback_at')}) already restored the previous table, or the host rebooted. "
                "Nothing was persisted; apply again."
            )
        result.update(changed=True, confirmed=True)
        if not check_mode:
            self._persist(pending.get("persist_path"), pending.get("persist_text"))
            self._clear_state()
        return result
