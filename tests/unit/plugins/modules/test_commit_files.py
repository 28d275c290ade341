"""commit_files module: writes, validation, reload, commit-confirm and the host's rollback.

The files are real files below a temporary root (the module's ROOT); the validate and reload commands
are real ``sh -c`` commands that leave traces in the temporary directory. Only systemd is faked: the
timer records the armed unit and the test "fires" it by running the rollback script the module wrote
with the real /bin/sh.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import stat
import subprocess
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml
from ansible.module_utils import basic
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.testing import patch_module_args

from ansible_collections.onprem.gpu_server.plugins.module_utils.host import commit_confirm
from ansible_collections.onprem.gpu_server.plugins.module_utils.host import files as hostfiles
from ansible_collections.onprem.gpu_server.plugins.module_utils.host.commit_confirm import Refused
from ansible_collections.onprem.gpu_server.plugins.modules import commit_files

NAME = "networks"
UNIT = f"onprem-{NAME}-rollback"
STATE = f"/var/lib/onprem-gpu-server/commit/{NAME}"
IFACES = "/etc/network/interfaces"
DROPIN = "/etc/network/interfaces.d/onprem-networks"
OLD = "auto lo\niface lo inet loopback\n"
NEW = OLD + "auto eth1\niface eth1 inet static\n    address 10.0.0.2/24\n"
NEWER = OLD + "auto eth1\niface eth1 inet static\n    address 10.0.0.3/24\n"
VLAN = "auto eth1.10\niface eth1.10 inet manual\n"
MARKER_LINE = re.compile(r"^rolled back at \d+, (\S+) exit (\d+)\n$")


class Box:
    """The temporary host: a root tree, armed timers, and where the commands leave their traces."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.root = tmp_path / "root"
        self.timers: dict[str, tuple[int, str]] = {}
        self.arm_error: str | None = None
        self.reloads_file = tmp_path / "reloads"

    # -- the commands ---------------------------------------------------------------------------
    @property
    def reload(self) -> list[str]:
        return ["sh", "-c", f"echo reload >> {shlex.quote(str(self.reloads_file))}"]

    def reload_failing_on(self, word: str, path: str) -> list[str]:
        """A reload that counts itself and fails while ``path`` contains ``word``."""
        target = shlex.quote(str(self.host(path)))
        return ["sh", "-c", f"echo reload >> {shlex.quote(str(self.reloads_file))}; "
                            f"if grep -q {word} {target}; then echo 'reload failed: {word} address' >&2; exit 1; fi"]

    def counting(self, counter: Path, fail_times: int, message: str) -> list[str]:
        """sh that counts its attempts in ``counter`` and fails the first ``fail_times`` ones with ``message``."""
        body = ('n=$(cat "$1" 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" > "$1"; '
                '[ "$n" -gt "$2" ] && exit 0; echo "$3" >&2; exit 1')
        return ["sh", "-c", body, "counter", str(counter), str(fail_times), message]

    @property
    def reloads(self) -> int:
        return len(self.reloads_file.read_text().splitlines()) if self.reloads_file.exists() else 0

    # -- the files ------------------------------------------------------------------------------
    def host(self, path: str) -> Path:
        return Path(hostfiles.host_path(str(self.root), path))

    def put(self, path: str, text: str, mode: int = 0o644) -> None:
        target = self.host(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        target.chmod(mode)

    def read(self, path: str) -> str | None:
        return hostfiles.read_text(str(self.root), path)

    def mode(self, path: str) -> int:
        return stat.S_IMODE(self.host(path).stat().st_mode)

    def state(self, name: str) -> str | None:
        return self.read(f"{STATE}/{name}")

    def saved(self) -> list[str]:
        directory = self.host(f"{STATE}/{commit_confirm.SAVED}")
        return sorted(p.name for p in directory.iterdir()) if directory.exists() else []

    def tree(self) -> list[str]:
        return sorted(str(p.relative_to(self.root)) for p in self.root.rglob("*") if p.is_file())

    # -- systemd --------------------------------------------------------------------------------
    def fire(self, unit: str = UNIT) -> None:
        """The deadline passed: run the module's rollback script with real sh, as the timer's service would."""
        _timeout, script = self.timers.pop(unit)
        done = subprocess.run(["/bin/sh", script], cwd=self.tmp, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and done.stdout == "" and done.stderr == "", done


class FakeTimer:
    """systemd's side of commit-confirm; checks the arguments the way systemd-run's argv would."""

    box: ClassVar[Box]

    def __init__(self, tools: Any) -> None:
        self.b = self.box

    def active(self, unit):
        return unit in self.b.timers

    def disarm(self, unit):
        self.b.timers.pop(unit, None)

    def arm(self, unit, timeout, script, description):
        commit_confirm.timer_argv(unit, timeout, script, description)
        assert "restore the previous state" in description
        self.disarm(unit)
        if self.b.arm_error:
            raise Refused(f"arming the rollback failed: {self.b.arm_error}")
        self.b.timers[unit] = (timeout, script)


@pytest.fixture
def box(tmp_path, monkeypatch):
    b = Box(tmp_path)
    b.root.mkdir()
    (tmp_path / "moduletmp").mkdir()
    FakeTimer.box = b
    monkeypatch.setattr(commit_files, "ROOT", str(b.root))
    monkeypatch.setattr(commit_files, "SystemdTimer", FakeTimer)
    # atomic_move gives new files the umask's mode unless write_text sets it: make the umask the usual one.
    old_umask = os.umask(0o022)
    yield b
    os.umask(old_umask)


@pytest.fixture
def warned(monkeypatch):
    """This module's own warnings (Ansible keeps warnings process-wide)."""
    texts: list[str] = []
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda module, text: texts.append(text))
    return texts


def run(box: Box, args: dict[str, Any], capsys, check: bool = False, diff: bool = False) -> dict[str, Any]:
    tmpdir = str(box.tmp / "moduletmp")
    with patch_module_args(dict(args, _ansible_check_mode=check, _ansible_diff=diff, _ansible_tmpdir=tmpdir,
                                _ansible_remote_tmp=tmpdir, _ansible_keep_remote_files=True)), \
            pytest.raises(SystemExit):
        commit_files.main()
    return json.loads(capsys.readouterr().out)


def change(box: Box, ifaces: str = NEW, **extra: Any) -> dict[str, Any]:
    """The change most tests make: the interfaces file (it exists) and a drop-in (it does not)."""
    return dict({"name": NAME, "reload": box.reload,
                 "files": [{"path": IFACES, "content": ifaces, "mode": "0640"},
                           {"path": DROPIN, "content": VLAN}]}, **extra)


@pytest.fixture
def confirmed(box):
    """The last confirmed state: the interfaces file only, mode 0640."""
    box.put(IFACES, OLD, 0o640)
    return box


# -- plain apply ------------------------------------------------------------------------------------
def test_apply_writes_the_files_and_reloads_then_changes_nothing(confirmed, capsys):
    box = confirmed
    first = run(box, change(box), capsys)
    assert first["changed"] is True and first["reloaded"] is True
    assert first["files"] == [IFACES, DROPIN]
    assert first["rollback_armed"] is False and first["rollback_at"] is None
    assert first["rollback_unit"] == f"{UNIT}.timer"
    assert box.read(IFACES) == NEW and box.mode(IFACES) == 0o640
    assert box.read(DROPIN) == VLAN and box.mode(DROPIN) == 0o644
    assert box.reloads == 1
    assert box.timers == {} and not box.host(STATE).exists()

    second = run(box, change(box), capsys)
    assert second["changed"] is False and second["reloaded"] is False and second["files"] == []
    assert box.reloads == 1


def test_only_the_changed_file_is_reported(confirmed, capsys):
    box = confirmed
    run(box, change(box), capsys)
    result = run(box, change(box, NEWER), capsys)
    assert result["changed"] is True and result["files"] == [IFACES]
    assert box.read(IFACES) == NEWER and box.reloads == 2


def test_check_mode_reports_the_change_and_writes_nothing(confirmed, capsys):
    box = confirmed
    before = box.tree()
    result = run(box, change(box, confirm_timeout=60), capsys, check=True, diff=True)
    assert result["changed"] is True and result["reloaded"] is True and result["rollback_armed"] is True
    assert result["files"] == [IFACES, DROPIN]
    by_path = {entry["after_header"]: entry for entry in result["diff"]}
    assert by_path[IFACES]["before"] == OLD and by_path[IFACES]["after"] == NEW
    assert by_path[DROPIN]["before_header"] == f"{DROPIN} (absent)" and by_path[DROPIN]["after"] == VLAN
    assert box.tree() == before and box.read(IFACES) == OLD
    assert box.reloads == 0 and box.timers == {}


def test_diff_only_when_asked(confirmed, capsys):
    box = confirmed
    assert "diff" not in run(box, change(box), capsys, check=True)


def test_force_reloads_unchanged_files(confirmed, capsys):
    box = confirmed
    run(box, change(box), capsys)
    result = run(box, change(box, force=True), capsys)
    assert result["changed"] is True and result["reloaded"] is True and result["files"] == []
    assert box.reloads == 2 and box.read(IFACES) == NEW


def test_force_with_confirm_timeout_arms_a_rollback_of_the_reload(confirmed, capsys):
    box = confirmed
    run(box, change(box), capsys)
    result = run(box, change(box, force=True, confirm_timeout=30), capsys)
    assert result["changed"] is True and result["rollback_armed"] is True and UNIT in box.timers
    box.fire()
    assert box.read(IFACES) == NEW and box.reloads == 3


# -- commit-confirm ---------------------------------------------------------------------------------
def test_commit_confirm_saves_arms_and_makes_the_change_live(confirmed, capsys):
    box = confirmed
    result = run(box, change(box, confirm_timeout=45), capsys)
    assert result["changed"] is True and result["rollback_armed"] is True
    assert result["rollback_unit"] == f"{UNIT}.timer"
    pending = json.loads(box.state("pending.json"))
    assert result["rollback_at"] == pending["rollback_at"] == pending["armed_at"] + 45
    timeout, script = box.timers[UNIT]
    assert timeout == 45 and script == str(box.host(f"{STATE}/rollback.sh"))
    # The previous copy of the existing file is saved (content and mode); the new file has nothing to save.
    [copy] = pending["saved_files"]
    assert box.read(copy) == OLD and box.mode(copy) == 0o640
    assert pending["saved"] == {IFACES: copy, DROPIN: None}
    # The change is live now.
    assert box.read(IFACES) == NEW and box.read(DROPIN) == VLAN and box.reloads == 1


def test_confirm_stops_the_timer_and_keeps_the_change(confirmed, capsys):
    box = confirmed
    run(box, change(box, confirm_timeout=45), capsys)
    result = run(box, {"name": NAME, "confirm": True}, capsys)
    assert result["changed"] is True and result["confirmed"] is True and result["rollback_armed"] is False
    assert box.timers == {}
    assert box.state("pending.json") is None and box.state("rollback.sh") is None and box.saved() == []
    assert box.read(IFACES) == NEW and box.read(DROPIN) == VLAN
    again = run(box, {"name": NAME, "confirm": True}, capsys)
    assert again["changed"] is False and again["confirmed"] is False


def test_confirm_in_check_mode_keeps_the_timer(confirmed, capsys):
    box = confirmed
    run(box, change(box, confirm_timeout=45), capsys)
    result = run(box, {"name": NAME, "confirm": True}, capsys, check=True)
    assert result["changed"] is True and result["confirmed"] is True
    assert UNIT in box.timers and box.state("pending.json") is not None


def test_timer_restores_the_previous_files_reloads_and_records_it(confirmed, capsys):
    box = confirmed
    run(box, change(box, confirm_timeout=45), capsys)
    box.fire()
    assert box.read(IFACES) == OLD and box.mode(IFACES) == 0o640
    assert box.read(DROPIN) is None, "a file that did not exist is removed"
    assert box.reloads == 2, "the rollback reloads again"
    assert MARKER_LINE.match(box.state("rolled-back")).groups() == ("sh", "0")
    late = run(box, {"name": NAME, "confirm": True}, capsys)
    assert late["failed"] is True and "rolled it back" in late["msg"], late["msg"]
    assert box.state("pending.json") is None and box.saved() == []
    assert box.state("rolled-back") is not None, "the record stays for the operator"
    assert box.read(IFACES) == OLD


def test_rollback_empties_a_new_file_with_absent_as_empty(confirmed, capsys):
    box = confirmed
    args = change(box, confirm_timeout=45)
    args["files"][1]["absent_as"] = "empty"
    run(box, args, capsys)
    box.fire()
    assert box.read(DROPIN) == "" and box.read(IFACES) == OLD


def test_rollback_records_the_reload_output_and_exit_status(confirmed, capsys):
    box = confirmed
    # A reload that works with the new files and fails with the old ones.
    target = shlex.quote(str(box.host(IFACES)))
    reload = ["sh", "-c", f"grep -q eth1 {target} || {{ echo 'ifreload: eth1 missing' >&2; exit 4; }}"]
    assert run(box, change(box, confirm_timeout=45, reload=reload), capsys)["changed"] is True
    box.fire()
    assert box.read(IFACES) == OLD
    assert MARKER_LINE.match(box.state("rolled-back")).groups() == ("sh", "4")
    assert box.state("rollback.err") == "ifreload: eth1 missing\n"
    late = run(box, {"name": NAME, "confirm": True}, capsys)
    assert late["failed"] is True and "sh exit 4; its output: ifreload: eth1 missing" in late["msg"], late["msg"]


def test_second_unconfirmed_change_keeps_the_first_save(confirmed, capsys):
    box = confirmed
    run(box, change(box, confirm_timeout=45), capsys)
    first_saved = box.saved()
    result = run(box, change(box, NEWER, confirm_timeout=90), capsys)
    assert result["changed"] is True and result["rollback_armed"] is True
    assert box.timers[UNIT][0] == 90 and box.read(IFACES) == NEWER
    assert box.saved() == first_saved
    assert box.read(f"{STATE}/saved/{first_saved[0]}") == OLD
    box.fire()
    assert box.read(IFACES) == OLD and box.read(DROPIN) is None


def test_second_change_adding_a_file_saves_that_file_too(confirmed, capsys):
    box = confirmed
    box.put("/etc/hosts", "127.0.0.1 localhost\n")
    run(box, change(box, confirm_timeout=45), capsys)
    args = change(box, NEWER, confirm_timeout=45)
    args["files"].append({"path": "/etc/hosts", "content": "10.0.0.2 gpu1\n"})
    run(box, args, capsys)
    assert len(box.saved()) == 2
    box.fire()
    assert box.read(IFACES) == OLD and box.read(DROPIN) is None and box.read("/etc/hosts") == "127.0.0.1 localhost\n"


def test_unchanged_files_with_an_armed_rollback_report_it_without_change(confirmed, capsys):
    box = confirmed
    first = run(box, change(box, confirm_timeout=45), capsys)
    again = run(box, change(box, confirm_timeout=45), capsys)
    assert again["changed"] is False and again["rollback_armed"] is True
    assert again["rollback_at"] == first["rollback_at"] and box.reloads == 1


def test_apply_without_confirm_timeout_while_armed_is_refused(confirmed, capsys):
    box = confirmed
    run(box, change(box, confirm_timeout=45), capsys)
    pending = box.state("pending.json")
    result = run(box, change(box, NEWER), capsys)
    assert result["failed"] is True and "waits for confirmation" in result["msg"]
    assert box.read(IFACES) == NEW and box.reloads == 1
    assert UNIT in box.timers and box.state("pending.json") == pending


def test_stale_pending_change_is_warned_about_and_the_new_change_armed(confirmed, capsys, warned):
    box = confirmed
    run(box, change(box, confirm_timeout=45), capsys)
    box.fire()
    result = run(box, change(box, NEWER, confirm_timeout=45), capsys)
    assert result["changed"] is True and result["rollback_armed"] is True and UNIT in box.timers
    [warning] = warned
    assert warning.startswith(f"an unconfirmed change to {NAME} ({IFACES}, {DROPIN})"), warning
    assert re.search(r"the host rolled it back \(rolled back at \d+, sh exit 0", warning), warning
    # The new change saved the restored (confirmed) state, and the old record is gone.
    assert box.state("rolled-back") is None
    [copy] = json.loads(box.state("pending.json"))["saved_files"]
    assert box.read(copy) == OLD
    box.fire()
    assert box.read(IFACES) == OLD


def test_confirm_after_a_reboot_keeps_the_change_with_a_warning(confirmed, capsys, warned):
    box = confirmed
    run(box, change(box, confirm_timeout=45), capsys)
    box.timers.clear()  # the transient timer did not survive a reboot
    result = run(box, {"name": NAME, "confirm": True}, capsys)
    assert result["changed"] is True and result["confirmed"] is True
    assert any("rollback timer of networks was gone" in w for w in warned), warned
    assert box.read(IFACES) == NEW and box.state("pending.json") is None and box.saved() == []


def test_confirm_fails_naming_a_file_changed_after_apply(confirmed, capsys):
    box = confirmed
    run(box, change(box, confirm_timeout=45), capsys)
    box.put(DROPIN, "edited by hand\n")
    result = run(box, {"name": NAME, "confirm": True}, capsys)
    assert result["failed"] is True
    # Only the file that moved is named.
    assert result["msg"].split(" no longer hold what was written at ")[0] == DROPIN, result["msg"]
    assert box.state("pending.json") is None


# -- failures ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("timeout", [0, 45])
def test_failing_validation_puts_the_files_back_without_reload(confirmed, capsys, timeout):
    box = confirmed
    result = run(box, change(box, confirm_timeout=timeout, validate=["sh", "-c", "echo bad config >&2; exit 1"]),
                 capsys)
    assert result["failed"] is True and "bad config" in result["msg"] and "rc=1" in result["msg"]
    assert box.read(IFACES) == OLD and box.mode(IFACES) == 0o640 and box.read(DROPIN) is None
    assert box.reloads == 0 and box.timers == {}
    assert box.state("pending.json") is None and box.state("rollback.sh") is None and box.saved() == []


def test_validation_sees_the_new_files(confirmed, capsys):
    box = confirmed
    validate = ["sh", "-c", f"grep -q 10.0.0.2 {shlex.quote(str(box.host(IFACES)))}"]
    result = run(box, change(box, validate=validate), capsys)
    assert result["changed"] is True and box.reloads == 1


@pytest.mark.parametrize("timeout", [0, 45])
def test_failing_reload_puts_the_files_back_and_reloads_again(confirmed, capsys, timeout):
    box = confirmed
    result = run(box, change(box, confirm_timeout=timeout, reload=box.reload_failing_on("eth1", IFACES)), capsys)
    assert result["failed"] is True
    assert "reload failed: eth1 address" in result["msg"] and "the reload ran again (rc=0)" in result["msg"]
    assert box.read(IFACES) == OLD and box.read(DROPIN) is None
    assert box.reloads == 2
    assert box.timers == {} and box.state("pending.json") is None and box.saved() == []


def test_failing_change_on_top_of_an_unconfirmed_one_keeps_it_waiting(confirmed, capsys):
    box = confirmed
    run(box, change(box, confirm_timeout=45), capsys)
    result = run(box, change(box, NEWER, confirm_timeout=45, validate=["sh", "-c", "echo bad config >&2; exit 1"]),
                 capsys)
    assert result["failed"] is True and "bad config" in result["msg"]
    assert box.read(IFACES) == NEW, "the earlier unconfirmed change is live again"
    assert UNIT in box.timers
    # It can still be confirmed, or rolled back to the confirmed state.
    box.fire()
    assert box.read(IFACES) == OLD and box.read(DROPIN) is None


def test_busy_reload_is_retried_while_its_output_says_so(confirmed, capsys):
    box = confirmed
    counter = box.tmp / "count"
    result = run(box, change(box, confirm_timeout=45, reload=box.counting(counter, 2, "Another instance is running"),
                             reload_retries=3, reload_retry_delay=0, reload_retry_when="Another instance"), capsys)
    assert result["changed"] is True and int(counter.read_text()) == 3
    # The rollback retries the same way.
    counter.unlink()
    box.fire()
    assert int(counter.read_text()) == 3
    assert MARKER_LINE.match(box.state("rolled-back")).groups() == ("sh", "0")
    assert box.state("rollback.err").count("Another instance is running") == 2


def test_reload_failing_without_the_retry_text_is_not_retried(confirmed, capsys):
    box = confirmed
    counter = box.tmp / "count"
    result = run(box, change(box, reload=box.counting(counter, 1, "syntax error in line 3"), reload_retries=3,
                             reload_retry_delay=0, reload_retry_when="Another instance"), capsys)
    assert result["failed"] is True and "syntax error in line 3" in result["msg"]
    # Once for the change, once more after the files were put back.
    assert int(counter.read_text()) == 2
    assert box.read(IFACES) == OLD


# -- input ------------------------------------------------------------------------------------------
def _files(*paths, mode="0644"):
    return [{"path": path, "content": "x\n", "mode": mode} for path in paths]


@pytest.mark.parametrize(("args", "message"), [
    ({"name": "net/works", "files": _files(IFACES)}, "name: 'net/works'"),
    ({"files": _files("etc/network/interfaces")}, "files[0].path: 'etc/network/interfaces'"),
    ({"files": _files("/etc/network/../interfaces")}, "files[0].path: '/etc/network/../interfaces'"),
    ({"files": _files(IFACES, DROPIN, IFACES)}, f"files[2].path: {IFACES} is listed twice"),
    ({"files": _files(IFACES, mode="abc")}, "files[0].mode: 'abc'"),
    ({"files": _files(IFACES, mode="0984")}, "files[0].mode: '0984'"),
    ({"files": _files(IFACES), "confirm_timeout": -1}, "confirm_timeout: -1"),
    ({"confirm": True, "confirm_timeout": -1}, "confirm_timeout: -1"),
    ({"files": []}, "files: at least one file"),
    ({}, "files: at least one file"),
    ({"files": _files(IFACES), "reload": []}, "reload: give the command"),
    ({"files": _files(IFACES), "validate": [""]}, "validate: give the command"),
    ({"files": _files(IFACES), "reload_retries": -1}, "reload_retries: -1"),
    ({"files": _files(IFACES), "reload_retry_delay": -2}, "reload_retry_delay: -2"),
])
def test_bad_input_names_the_option(confirmed, capsys, args, message):
    box = confirmed
    before = box.tree()
    result = run(box, dict({"name": NAME, "reload": box.reload}, **args), capsys)
    assert result["failed"] is True and message in result["msg"], result["msg"]
    assert box.tree() == before and box.reloads == 0 and box.timers == {}


# -- modes and bugs -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["0600", "0755", "640"])
def test_a_new_file_gets_the_requested_mode(box, capsys, mode):
    args = {"name": NAME, "files": [{"path": "/etc/secret.conf", "content": "token\n", "mode": mode}]}
    assert run(box, args, capsys)["changed"] is True
    assert box.mode("/etc/secret.conf") == int(mode, 8)
    assert run(box, args, capsys)["changed"] is False


def test_a_mode_change_alone_lands_and_is_rolled_back(confirmed, capsys):
    box = confirmed
    args = {"name": NAME, "files": [{"path": IFACES, "content": OLD, "mode": "0600"}], "reload": box.reload,
            "confirm_timeout": 45}
    result = run(box, args, capsys)
    assert result["changed"] is True and result["files"] == [IFACES] and box.reloads == 1
    assert box.mode(IFACES) == 0o600 and box.read(IFACES) == OLD
    assert run(box, args, capsys)["changed"] is False
    box.fire()
    assert box.mode(IFACES) == 0o640


def test_a_failed_arm_leaves_no_pending_change(confirmed, capsys, warned):
    box = confirmed
    box.arm_error = "Failed to start transient timer unit: Unit onprem-networks-rollback.timer already exists."
    result = run(box, change(box, confirm_timeout=45), capsys)
    assert result["failed"] is True and "already exists" in result["msg"]
    assert box.read(IFACES) == OLD and box.read(DROPIN) is None and box.reloads == 0
    box.arm_error = None
    # Nothing went live, so nothing waits for confirmation and the next apply warns about nothing.
    assert box.state("pending.json") is None and box.saved() == []
    run(box, change(box), capsys)
    assert warned == []


def test_a_later_change_keeps_the_absent_as_of_an_earlier_unconfirmed_one(confirmed, capsys):
    box = confirmed
    args = change(box, confirm_timeout=45)
    args["files"][1]["absent_as"] = "empty"
    run(box, args, capsys)
    # The second change touches the interfaces file only; the drop-in is still the first change's.
    run(box, {"name": NAME, "reload": box.reload, "confirm_timeout": 45,
              "files": [{"path": IFACES, "content": NEWER, "mode": "0640"}]}, capsys)
    box.fire()
    assert box.read(IFACES) == OLD
    assert box.read(DROPIN) == "", "the drop-in is included unconditionally: it must stay, empty"


def test_a_failed_change_on_top_of_an_unconfirmed_one_leaves_no_stray_copy(confirmed, capsys):
    box = confirmed
    box.put("/etc/hosts", "127.0.0.1 localhost\n")
    run(box, change(box, confirm_timeout=45), capsys)
    args = change(box, NEWER, confirm_timeout=45, validate=["sh", "-c", "echo bad config >&2; exit 1"])
    args["files"].append({"path": "/etc/hosts", "content": "10.0.0.2 gpu1\n"})
    assert run(box, args, capsys)["failed"] is True
    assert box.read("/etc/hosts") == "127.0.0.1 localhost\n"
    confirmed_result = run(box, {"name": NAME, "confirm": True}, capsys)
    assert confirmed_result["confirmed"] is True and box.read(IFACES) == NEW
    assert box.saved() == []


# -- documentation ----------------------------------------------------------------------------------
def _spec_from_doc(options):
    spec = {}
    for name, opt in options.items():
        spec[name] = {k: opt[k] for k in ("type", "elements", "choices", "required", "default") if k in opt}
        if "suboptions" in opt:
            spec[name]["options"] = _spec_from_doc(opt["suboptions"])
    return spec


def test_documentation_matches_argument_spec():
    doc = yaml.safe_load(commit_files.DOCUMENTATION)
    assert doc["module"] == "commit_files"
    assert set(doc["attributes"]) == {"check_mode", "diff_mode", "platform"}
    assert _spec_from_doc(doc["options"]) == commit_files.ARGUMENT_SPEC
    returned = yaml.safe_load(commit_files.RETURN)
    assert set(returned) == {"files", "reloaded", "rollback_armed", "rollback_unit", "rollback_at", "confirmed"}


MODULE_EXAMPLES = [t for t in yaml.safe_load(commit_files.EXAMPLES) if "onprem.gpu_server.commit_files" in t]


def test_examples_are_there():
    assert len(MODULE_EXAMPLES) == 3


@pytest.mark.parametrize("task", MODULE_EXAMPLES, ids=lambda t: t["name"])
def test_examples_validate(task):
    args = task["onprem.gpu_server.commit_files"]
    result = ArgumentSpecValidator(commit_files.ARGUMENT_SPEC).validate(args)
    assert not result.error_messages, result.error_messages
    commit_files.check_params(result.validated_parameters)
