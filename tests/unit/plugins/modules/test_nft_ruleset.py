"""nft_ruleset module: converge, check mode, commit-confirm and rollback against a faked kernel ruleset.

The fake stands in for nft and systemd only: it keeps each table's body as text, answers listings
with fresh handles and counters every time (so the module must normalise to stay idempotent), and
runs the rollback script when a test fires the timer. The module's own files (state, boot file)
are real files below a temporary root.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml
from ansible.module_utils import basic
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.testing import patch_module_args

from ansible_collections.onprem.gpu_server.plugins.module_utils.host import files as hostfiles
from ansible_collections.onprem.gpu_server.plugins.module_utils.nft import ruleset
from ansible_collections.onprem.gpu_server.plugins.module_utils.nft.runner import NftError
from ansible_collections.onprem.gpu_server.plugins.modules import nft_ruleset

DOCKER_RULESET = (Path(__file__).resolve().parents[2] / "fixtures" / "nft"
                  / "nft-j-list-ruleset_docker-host_iptables-nft_aleph-crn.json")
STATE = "var/lib/onprem-gpu-server/nft/inet-onprem_filter"
PERSIST = "/etc/nftables.d/onprem_filter.nft"
UNIT = "onprem-nft-rollback-inet-onprem_filter"
GOOD = "chain input {\n  type filter hook input priority filter; policy drop;\n  tcp dport 22 accept\n}\n"
OTHER = "chain input {\n  type filter hook input priority filter; policy drop;\n  tcp dport 2222 accept\n}\n"


class FakeKernel:
    """Tables as body text, a counter that changes handles/counters on every read, armed timers."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tables: dict[str, str | None] = {}
        self.foreign: dict[str, Any] = {}
        self.reads = 0
        self.timers: dict[str, tuple[int, str]] = {}
        self.applied: list[str] = []
        self.checked: list[str] = []
        self.fail_apply = False

    def read(self, path: str) -> str:
        return Path(hostfiles.host_path(str(self.root), path)).read_text()

    def items(self, spec: str, body: str) -> list[dict[str, Any]]:
        self.reads += 1
        family, name = spec.split()
        return [{"metainfo": {"version": "1.0.6"}},
                {"table": {"family": family, "name": name, "handle": self.reads}},
                {"rule": {"family": family, "table": name, "handle": self.reads + 7, "text": body.strip(),
                          "expr": [{"counter": {"packets": self.reads, "bytes": 60 * self.reads}}]}}]

    def run_script(self, text: str) -> None:
        """Apply a transaction the way nft would for these simple scripts: declare, delete, define."""
        header = re.match(r"table (\S+ \S+) \{\}\ndelete table (\S+ \S+)\n", text)
        assert header and header.group(1) == header.group(2), text
        spec = header.group(1)
        rest = text[header.end():]
        if not rest.strip():
            self.tables.pop(spec, None)
            return
        opening = f"table {spec} {{\n"
        assert rest.startswith(opening) and rest.rstrip().endswith("}"), rest
        body = rest[len(opening):].rstrip().removesuffix("}")
        self.tables[spec] = "\n".join(line.strip() for line in body.splitlines() if line.strip())

    def fire(self, unit: str) -> None:
        """Run the rollback script the module wrote, with real sh; its nft only hands the file to this fake."""
        _timeout, script = self.timers.pop(unit)
        done = subprocess.run(["/bin/sh", script], check=True, capture_output=True, text=True)
        assert done.stdout == "", done.stdout
        fired = self.root.parent / "bin" / "fired.nft"
        self.run_script(fired.read_text())
        fired.unlink()


class FakeRunner:
    kernel: ClassVar[FakeKernel]

    def __init__(self, module: Any) -> None:
        self.k = self.kernel

    def list_json(self, ref):
        body = self.k.tables.get(ref.spec)
        return None if body is None else self.k.items(ref.spec, body)

    def list_text(self, ref):
        body = self.k.tables.get(ref.spec)
        return None if body is None else f"table {ref.spec} {{\n{body}\n}}\n"

    def check(self, path):
        text = self.k.read(path)
        self.k.checked.append(text)
        if "acept" in text:
            raise NftError(f"{path}:6:22-22: Error: syntax error, unexpected newline")

    def apply(self, path):
        if self.k.fail_apply:
            raise NftError("Error: Could not process rule: No buffer space available")
        text = self.k.read(path)
        self.k.applied.append(text)
        self.k.run_script(text)

    def canonical(self, path, ref):
        scratch = FakeKernel(self.k.root)
        scratch.reads = 1000
        scratch.run_script(self.k.read(path))
        body = scratch.tables.get(ref.spec)
        if body is None:
            return None, ""
        return scratch.items(ref.spec, body), f"table {ref.spec} {{\n{body}\n}}\n"

    def path(self, tool):
        assert tool == "nft", tool
        return str(self.k.root.parent / "bin" / "nft")


class FakeTimer:
    """systemd's side: armed timers by unit, fired by the test."""

    kernel: ClassVar[FakeKernel]

    def __init__(self, runner: Any) -> None:
        self.k = self.kernel

    def active(self, unit):
        return unit in self.k.timers

    def disarm(self, unit):
        self.k.timers.pop(unit, None)

    def arm(self, unit, timeout, script, description):
        assert "restore the previous state" in description
        self.k.timers[unit] = (timeout, script)


@pytest.fixture
def kernel(tmp_path, monkeypatch):
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "moduletmp").mkdir()
    k = FakeKernel(root)
    # The rollback script runs this nft: it leaves the file it was given for FakeKernel.fire to load.
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "nft").write_text('#!/bin/sh\n[ "$1" = -f ] && cp "$2" "$(dirname "$0")/fired.nft"\n')
    (fake_bin / "nft").chmod(0o755)
    FakeRunner.kernel = k
    FakeTimer.kernel = k
    monkeypatch.setattr(nft_ruleset, "ROOT", str(root))
    monkeypatch.setattr(nft_ruleset, "NftRunner", FakeRunner)
    monkeypatch.setattr(nft_ruleset, "SystemdTimer", FakeTimer)
    return k


def run(kernel, args, capsys, check=False, diff=False):
    tmpdir = str(kernel.root.parent / "moduletmp")
    with patch_module_args(dict(args, _ansible_check_mode=check, _ansible_diff=diff, _ansible_tmpdir=tmpdir,
                                _ansible_remote_tmp=tmpdir, _ansible_keep_remote_files=True)), \
            pytest.raises(SystemExit):
        nft_ruleset.main()
    return json.loads(capsys.readouterr().out)


def state(kernel, name):
    path = kernel.root / STATE / name
    return path.read_text() if path.exists() else None


def persisted(kernel):
    path = kernel.root / PERSIST.lstrip("/")
    return path.read_text() if path.exists() else None


def test_apply_then_no_change_although_handles_and_counters_move(kernel, capsys):
    first = run(kernel, {"content": GOOD, "persist_path": PERSIST}, capsys)
    assert first["changed"] is True and first["rollback_armed"] is False and first["present"] is True
    assert kernel.tables["inet onprem_filter"].endswith("tcp dport 22 accept\n}")
    assert persisted(kernel) == ruleset.persist_text(ruleset.TableRef("inet", "onprem_filter"), kernel.applied[0])
    second = run(kernel, {"content": GOOD, "persist_path": PERSIST}, capsys)
    assert second["changed"] is False
    assert len(kernel.applied) == 1


def test_check_mode_validates_predicts_and_changes_nothing(kernel, capsys):
    result = run(kernel, {"content": GOOD, "persist_path": PERSIST, "confirm_timeout": 30}, capsys,
                 check=True, diff=True)
    assert result["changed"] is True and result["rollback_armed"] is True
    assert "tcp dport 22 accept" in result["diff"]["after"] and result["diff"]["before"] == ""
    assert kernel.checked, "nft -c must run in check mode"
    assert kernel.tables == {} and kernel.applied == [] and kernel.timers == {}
    assert persisted(kernel) is None and state(kernel, "pending.json") is None


def test_malformed_content_fails_with_nfts_message_and_changes_nothing(kernel, capsys):
    run(kernel, {"content": GOOD}, capsys)
    before = dict(kernel.tables)
    result = run(kernel, {"content": GOOD.replace("accept", "acept"), "confirm_timeout": 30}, capsys)
    assert result["failed"] is True
    assert "nft rejected the change to table inet onprem_filter" in result["msg"]
    assert "syntax error" in result["msg"]
    assert kernel.tables == before and len(kernel.applied) == 1 and kernel.timers == {}
    assert state(kernel, "rollback.nft") is None


def test_content_that_closes_the_table_is_refused_before_nft_runs(kernel, capsys):
    result = run(kernel, {"content": "}\ntable ip nat {\n"}, capsys)
    assert result["failed"] is True and "closes the owned table" in result["msg"]
    assert kernel.checked == [] and kernel.applied == []


def test_commit_confirm_arms_before_applying_and_persists_only_on_confirm(kernel, capsys):
    run(kernel, {"content": GOOD, "persist_path": PERSIST}, capsys)
    boot_file = persisted(kernel)
    result = run(kernel, {"content": OTHER, "persist_path": PERSIST, "confirm_timeout": 20}, capsys)
    assert result["changed"] is True and result["rollback_armed"] is True
    assert result["rollback_unit"] == f"{UNIT}.timer"
    assert kernel.timers[UNIT][0] == 20
    assert "2222" in kernel.tables["inet onprem_filter"]
    # The saved table is the previous (confirmed) one, loadable as a transaction.
    rollback = state(kernel, "rollback.nft")
    assert rollback.startswith("table inet onprem_filter {}\ndelete table inet onprem_filter\n")
    assert "tcp dport 22 accept" in rollback and "2222" not in rollback
    assert persisted(kernel) == boot_file, "the boot file changes only on confirmation"

    confirmed = run(kernel, {"confirm": True}, capsys)
    assert confirmed["changed"] is True and confirmed["confirmed"] is True
    assert kernel.timers == {}
    assert "2222" in persisted(kernel)
    assert state(kernel, "pending.json") is None and state(kernel, "rollback.nft") is None
    again = run(kernel, {"confirm": True}, capsys)
    assert again["changed"] is False and again["confirmed"] is False


def test_timer_restores_the_previous_table_and_a_late_confirm_fails(kernel, capsys):
    run(kernel, {"content": GOOD, "persist_path": PERSIST}, capsys)
    good_table = kernel.tables["inet onprem_filter"]
    boot_file = persisted(kernel)
    run(kernel, {"content": OTHER, "persist_path": PERSIST, "confirm_timeout": 20}, capsys)
    kernel.fire(UNIT)
    assert kernel.tables["inet onprem_filter"] == good_table
    assert state(kernel, "rolled-back").startswith("rolled back at ")
    assert state(kernel, "rolled-back").rstrip().endswith("nft exit 0")
    late = run(kernel, {"confirm": True}, capsys)
    assert late["failed"] is True and "the host rolled it back" in late["msg"], late["msg"]
    assert persisted(kernel) == boot_file
    assert state(kernel, "pending.json") is None and state(kernel, "rollback.nft") is None
    # The record of what the host did stays for the operator.
    assert state(kernel, "rolled-back") is not None


def test_rollback_of_a_first_apply_removes_the_table(kernel, capsys):
    run(kernel, {"content": GOOD, "confirm_timeout": 20}, capsys)
    assert state(kernel, "rollback.nft") == ruleset.transaction(ruleset.TableRef("inet", "onprem_filter"), None)
    kernel.fire(UNIT)
    assert "inet onprem_filter" not in kernel.tables


def test_a_second_unconfirmed_change_keeps_the_first_save(kernel, capsys):
    run(kernel, {"content": GOOD}, capsys)
    run(kernel, {"content": OTHER, "confirm_timeout": 20}, capsys)
    saved = state(kernel, "rollback.nft")
    third = OTHER.replace("2222", "2223")
    result = run(kernel, {"content": third, "confirm_timeout": 30}, capsys)
    assert result["changed"] is True and result["rollback_armed"] is True
    assert state(kernel, "rollback.nft") == saved
    assert kernel.timers[UNIT][0] == 30
    kernel.fire(UNIT)
    assert "tcp dport 22 accept" in kernel.tables["inet onprem_filter"]


def test_unchanged_table_with_armed_rollback_reports_it_without_change(kernel, capsys):
    run(kernel, {"content": OTHER, "confirm_timeout": 20}, capsys)
    result = run(kernel, {"content": OTHER, "confirm_timeout": 20}, capsys)
    assert result["changed"] is False and result["rollback_armed"] is True
    assert result["rollback_at"] is not None


def test_apply_without_confirm_timeout_while_armed_is_refused(kernel, capsys):
    run(kernel, {"content": OTHER, "confirm_timeout": 20}, capsys)
    result = run(kernel, {"content": GOOD}, capsys)
    assert result["failed"] is True and "waits for confirmation" in result["msg"]
    assert "2222" in kernel.tables["inet onprem_filter"] and UNIT in kernel.timers


def test_stale_pending_change_is_reported_and_applied_again(kernel, capsys, monkeypatch):
    # Ansible keeps warnings process-wide; capture this module's own.
    warned: list[str] = []
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda module, text: warned.append(text))
    run(kernel, {"content": GOOD}, capsys)
    run(kernel, {"content": OTHER, "confirm_timeout": 20}, capsys)
    kernel.fire(UNIT)
    result = run(kernel, {"content": OTHER, "confirm_timeout": 20}, capsys)
    assert result["changed"] is True and result["rollback_armed"] is True
    assert any(w.startswith("an unconfirmed change to table inet onprem_filter") for w in warned), warned
    assert "tcp dport 22 accept" in state(kernel, "rollback.nft")


def test_failed_apply_disarms_and_clears_the_saved_state(kernel, capsys):
    run(kernel, {"content": GOOD}, capsys)
    kernel.fail_apply = True
    result = run(kernel, {"content": OTHER, "confirm_timeout": 20}, capsys)
    assert result["failed"] is True and "No buffer space" in result["msg"]
    assert kernel.timers == {} and state(kernel, "pending.json") is None and state(kernel, "rollback.nft") is None
    assert "tcp dport 22 accept" in kernel.tables["inet onprem_filter"]


def test_only_the_boot_file_lagging_behind_is_written_without_touching_the_table(kernel, capsys):
    run(kernel, {"content": GOOD}, capsys)
    result = run(kernel, {"content": GOOD, "persist_path": PERSIST, "confirm_timeout": 20}, capsys)
    assert result["changed"] is True and result["rollback_armed"] is False
    assert persisted(kernel) is not None and len(kernel.applied) == 1


def test_state_absent_removes_table_and_boot_file(kernel, capsys):
    run(kernel, {"content": GOOD, "persist_path": PERSIST}, capsys)
    result = run(kernel, {"state": "absent", "persist_path": PERSIST}, capsys)
    assert result["changed"] is True and result["present"] is False
    assert "inet onprem_filter" not in kernel.tables and persisted(kernel) is None
    assert run(kernel, {"state": "absent", "persist_path": PERSIST}, capsys)["changed"] is False


def test_docker_tables_are_never_touched(kernel, capsys):
    docker = ruleset.parse_listing(DOCKER_RULESET.read_text())
    for spec in ruleset.tables_in(docker):
        kernel.tables[spec] = f"recorded Docker table {spec}"
    foreign = {k: v for k, v in kernel.tables.items()}
    run(kernel, {"content": GOOD, "confirm_timeout": 20}, capsys)
    kernel.fire(UNIT)
    run(kernel, {"content": OTHER}, capsys)
    run(kernel, {"state": "absent"}, capsys)
    assert kernel.tables == foreign
    rollback_script = ruleset.restore_transaction(ruleset.TableRef("inet", "onprem_filter"), None)
    for script in [*kernel.applied, *kernel.checked, rollback_script]:
        named = set(re.findall(r"^(?:delete |flush |add )?table (\S+ \S+)", script, re.MULTILINE))
        assert named == {"inet onprem_filter"}, script
        assert "flush ruleset" not in script


@pytest.mark.parametrize(("args", "message"), [
    ({"content": GOOD, "name": "bad-name"}, "name: 'bad-name'"),
    ({"content": GOOD, "confirm_timeout": -1}, "confirm_timeout: -1"),
    ({}, "content: required with state=present"),
])
def test_bad_input_names_the_option(kernel, capsys, args, message):
    result = run(kernel, args, capsys)
    assert result["failed"] is True and message in result["msg"]
    assert kernel.applied == []


def _spec_from_doc(options):
    return {name: {k: opt[k] for k in ("type", "elements", "choices", "required", "default") if k in opt}
            for name, opt in options.items()}


def test_documentation_matches_argument_spec():
    doc = yaml.safe_load(nft_ruleset.DOCUMENTATION)
    assert doc["module"] == "nft_ruleset"
    assert set(doc["attributes"]) == {"check_mode", "diff_mode", "platform"}
    assert _spec_from_doc(doc["options"]) == nft_ruleset.ARGUMENT_SPEC
    yaml.safe_load(nft_ruleset.RETURN)


MODULE_EXAMPLES = [t for t in yaml.safe_load(nft_ruleset.EXAMPLES) if "onprem.gpu_server.nft_ruleset" in t]


@pytest.mark.parametrize("task", MODULE_EXAMPLES, ids=lambda t: t["name"])
def test_examples_validate(task):
    args = task["onprem.gpu_server.nft_ruleset"]
    result = ArgumentSpecValidator(nft_ruleset.ARGUMENT_SPEC).validate(args)
    assert not result.error_messages, result.error_messages
