"""The commit-confirm primitive (plugins/module_utils/host/commit_confirm.py).

The rollback scripts run with the real /bin/sh on a temporary tree (``root``); systemd is faked by a
recorder of argv lists (SystemdTimer) or a dict of armed units (CommitConfirm), which the tests "fire"
by running the script the primitive wrote.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
from pathlib import Path

import pytest

from ansible_collections.onprem.gpu_server.plugins.module_utils.host import files as hostfiles
from ansible_collections.onprem.gpu_server.plugins.module_utils.host.commit_confirm import (
    ERRORS,
    MARKER,
    PENDING,
    SCRIPT,
    Command,
    CommitConfirm,
    Refused,
    Restore,
    RolledBack,
    SystemdTimer,
    rollback_script,
    timer_argv,
)

STATE = "/var/lib/onprem-gpu-server/commit/test"
MARKER_LINE = re.compile(r"^rolled back at \d+, (\S+) exit (\d+)\n$")


# -- helpers ----------------------------------------------------------------------------------------
def host(root: Path, path: str) -> Path:
    return Path(hostfiles.host_path(str(root), path))


def put(root: Path, path: str, text: str, mode: int = 0o644) -> Path:
    target = host(root, path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    target.chmod(mode)
    return target


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def run_sh(script_text: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """Run a rollback script with the real /bin/sh, from ``tmp_path`` (so a stray ``touch`` would land there)."""
    script = tmp_path / "script.sh"
    script.write_text(script_text)
    done = subprocess.run(["/bin/sh", str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done
    return done


def counting_command(counter: Path, fail_times: int, message: str) -> tuple[str, ...]:
    """sh that counts its attempts in ``counter`` and fails the first ``fail_times`` ones with ``message``."""
    body = ('n=$(cat "$1" 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" > "$1"; '
            '[ "$n" -gt "$2" ] && { echo "attempt $n ok"; exit 0; }; echo "$3" >&2; exit 1')
    return ("/bin/sh", "-c", body, "counter", str(counter), str(fail_times), message)


def attempts(counter: Path) -> int:
    return int(counter.read_text()) if counter.exists() else 0


def marker(root: Path) -> str:
    return host(root, f"{STATE}/{MARKER}").read_text()


def errors(root: Path) -> str:
    return host(root, f"{STATE}/{ERRORS}").read_text()


# -- rollback_script --------------------------------------------------------------------------------
@pytest.fixture
def root(tmp_path):
    """A host tree with the owner's state directory (the rollback script lives there)."""
    host(tmp_path / "root", STATE).mkdir(parents=True)
    return tmp_path / "root"


def test_saved_file_is_copied_back_with_content_and_mode(tmp_path, root):
    put(root, f"{STATE}/saved/0-0", "old content\n", 0o640)
    target = put(root, "/etc/app.conf", "new content\n", 0o644)
    script = rollback_script(STATE, [Restore("/etc/app.conf", f"{STATE}/saved/0-0")], [], root=str(root))
    run_sh(script, tmp_path)
    assert target.read_text() == "old content\n"
    assert mode_of(target) == 0o640
    # Copied next to the target and renamed over it: no temporary is left.
    assert sorted(p.name for p in target.parent.iterdir()) == ["app.conf"]
    assert MARKER_LINE.match(marker(root)).groups() == ("none", "0")


def test_file_that_did_not_exist_is_removed_or_emptied(tmp_path, root):
    removed = put(root, "/etc/new.conf", "added by the change\n")
    emptied = put(root, "/etc/included.conf", "added by the change\n", 0o600)
    script = rollback_script(STATE, [Restore("/etc/new.conf", None),
                                     Restore("/etc/included.conf", None, absent="empty")], [], root=str(root))
    run_sh(script, tmp_path)
    assert not removed.exists()
    assert emptied.exists() and emptied.read_text() == ""
    # Removing a file that is already gone is no failure.
    run_sh(script, tmp_path)
    assert MARKER_LINE.match(marker(root)).groups() == ("none", "0")


def test_busy_command_is_retried_while_its_output_says_so(tmp_path, root):
    counter = tmp_path / "count"
    command = Command(counting_command(counter, 2, "Another instance is running"), retries=5, delay=0,
                      retry_when="Another instance")
    run_sh(rollback_script(STATE, [], [command], root=str(root)), tmp_path)
    assert attempts(counter) == 3
    assert MARKER_LINE.match(marker(root)).groups() == ("sh", "0")
    # Every attempt's output lands in rollback.err.
    assert errors(root).count("Another instance is running") == 2
    assert "attempt 3 ok" in errors(root)


def test_retries_stop_after_the_given_number(tmp_path, root):
    counter = tmp_path / "count"
    command = Command(counting_command(counter, 10, "Another instance is running"), retries=2, delay=0,
                      retry_when="Another instance")
    run_sh(rollback_script(STATE, [], [command], root=str(root)), tmp_path)
    assert attempts(counter) == 3  # the first try and two retries
    assert MARKER_LINE.match(marker(root)).groups() == ("sh", "1")


def test_failure_without_the_retry_text_is_not_retried(tmp_path, root):
    counter = tmp_path / "count"
    command = Command(counting_command(counter, 2, "error: bad configuration"), retries=5, delay=0,
                      retry_when="Another instance")
    run_sh(rollback_script(STATE, [], [command], root=str(root)), tmp_path)
    assert attempts(counter) == 1
    assert MARKER_LINE.match(marker(root)).groups() == ("sh", "1")
    assert errors(root) == "error: bad configuration\n"


def test_without_retry_text_any_failure_is_retried(tmp_path, root):
    counter = tmp_path / "count"
    command = Command(counting_command(counter, 1, "whatever went wrong"), retries=3, delay=0)
    run_sh(rollback_script(STATE, [], [command], root=str(root)), tmp_path)
    assert attempts(counter) == 2
    assert MARKER_LINE.match(marker(root)).groups() == ("sh", "0")


def test_retry_text_with_glob_characters_matches_literally(tmp_path, root):
    counter = tmp_path / "count"
    # "*" in the text must not turn into a pattern that matches anything.
    command = Command(counting_command(counter, 2, "plain failure"), retries=5, delay=0, retry_when="busy*")
    run_sh(rollback_script(STATE, [], [command], root=str(root)), tmp_path)
    assert attempts(counter) == 1


def test_marker_names_the_last_command_and_its_exit_status(tmp_path, root):
    put(root, f"{STATE}/{ERRORS}", "left over from an earlier rollback\n")
    commands = [Command(("/bin/sh", "-c", "echo first ran")),
                Command(("/bin/false",))]
    run_sh(rollback_script(STATE, [], commands, root=str(root)), tmp_path)
    assert MARKER_LINE.match(marker(root)).groups() == ("false", "1")
    # rollback.err starts empty for this run and collects the commands' output.
    assert errors(root) == "first ran\n"


def test_files_are_restored_before_the_commands_run(tmp_path, root):
    put(root, f"{STATE}/saved/0-0", "old\n")
    target = put(root, "/etc/app.conf", "new\n")
    seen = tmp_path / "seen"
    command = Command(("/bin/sh", "-c", 'cat "$1" > "$2"', "sh", str(target), str(seen)))
    run_sh(rollback_script(STATE, [Restore("/etc/app.conf", f"{STATE}/saved/0-0")], [command], root=str(root)),
           tmp_path)
    assert seen.read_text() == "old\n"


def test_paths_and_arguments_with_shell_metacharacters_are_quoted(tmp_path, root):
    state = "/var/lib/state dir;$(touch pwned)"
    nasty = "/etc/a b;$(touch pwned) `touch pwned` 'q' \"d\""
    gone = "/etc/new $HOME;rm -rf x"
    put(root, f"{state}/saved/0 $(touch pwned)", "saved 'content'\n", 0o600)
    target = put(root, nasty, "changed\n")
    added = put(root, gone, "added\n")
    echoed = tmp_path / "echoed"
    command = Command(("/bin/sh", "-c", 'printf "%s\\n" "$1" > "$2"', "sh", "$(touch pwned); 'x' \"y\"",
                       str(echoed)))
    # The retry text is matched literally, quotes and all.
    counter = tmp_path / "count"
    busy = Command(counting_command(counter, 1, "it's \"$(touch pwned)\" busy"), retries=3, delay=0,
                   retry_when="it's \"$(touch pwned)\"")
    script = rollback_script(state, [Restore(nasty, f"{state}/saved/0 $(touch pwned)"), Restore(gone, None)],
                             [command, busy], root=str(root))
    run_sh(script, tmp_path)
    assert attempts(counter) == 2
    assert target.read_text() == "saved 'content'\n" and mode_of(target) == 0o600
    assert not added.exists()
    assert echoed.read_text() == "$(touch pwned); 'x' \"y\"\n"
    assert MARKER_LINE.match(host(root, f"{state}/{MARKER}").read_text()).groups() == ("sh", "0")
    assert not [p for p in tmp_path.rglob("*") if p.name == "pwned"]


def test_a_failed_restore_copy_is_recorded_in_rollback_err(tmp_path, root):
    target = put(root, "/etc/app.conf", "new\n")
    script = rollback_script(STATE, [Restore("/etc/app.conf", f"{STATE}/saved/missing")], [], root=str(root))
    done = run_sh(script, tmp_path)
    assert target.read_text() == "new\n"
    assert MARKER_LINE.match(marker(root)).groups() == ("none", "1")
    assert done.stderr == ""
    assert "missing" in errors(root)


# -- timer_argv -------------------------------------------------------------------------------------
def test_timer_argv_runs_the_script_with_sh_after_the_timeout():
    argv = timer_argv("onprem-x-rollback", 90, "/var/lib/x/rollback.sh", "x: restore")
    assert argv[0] == "systemd-run"
    assert "--unit=onprem-x-rollback" in argv
    assert "--on-active=90s" in argv
    assert "--timer-property=AccuracySec=1s" in argv
    assert "--description=x: restore" in argv
    assert argv[-2:] == ["/bin/sh", "/var/lib/x/rollback.sh"]


@pytest.mark.parametrize("timeout", [0, -5])
def test_timer_argv_refuses_a_timeout_below_one_second(timeout):
    with pytest.raises(Refused, match=f"confirm_timeout: {timeout} must be at least 1 second"):
        timer_argv("onprem-x-rollback", timeout, "/s", "d")


@pytest.mark.parametrize("unit", ["", "-leading-dash", "a/b", "a b", "x;reboot", "ü"])
def test_timer_argv_refuses_a_bad_unit_name(unit):
    with pytest.raises(Refused, match="rollback unit name"):
        timer_argv(unit, 30, "/s", "d")


# -- SystemdTimer -----------------------------------------------------------------------------------
class RecordingTools:
    def __init__(self, answers=None):
        self.calls: list[list[str]] = []
        self.answers = answers or {}

    def execute(self, argv):
        self.calls.append(list(argv))
        return self.answers.get(argv[0], (0, "", ""))


def test_systemd_timer_active_asks_systemctl_about_the_timer():
    tools = RecordingTools()
    assert SystemdTimer(tools).active("u") is True
    assert tools.calls == [["systemctl", "is-active", "--quiet", "u.timer"]]
    assert SystemdTimer(RecordingTools({"systemctl": (3, "", "")})).active("u") is False


def test_systemd_timer_disarms_before_it_arms():
    tools = RecordingTools()
    SystemdTimer(tools).arm("u", 30, "/s.sh", "d")
    assert tools.calls == [
        ["systemctl", "stop", "u.timer", "u.service"],
        ["systemctl", "reset-failed", "u.timer", "u.service"],
        timer_argv("u", 30, "/s.sh", "d"),
    ]


@pytest.mark.parametrize(("answer", "shown"), [
    ((1, "", "Failed to start transient timer unit: Unit u.timer already exists.\n"), "Unit u.timer already exists."),
    ((1, "only on stdout\n", ""), "only on stdout"),
])
def test_systemd_timer_arm_failure_raises_with_the_output(answer, shown):
    tools = RecordingTools({"systemd-run": answer})
    with pytest.raises(Refused, match="arming the rollback failed") as raised:
        SystemdTimer(tools).arm("u", 30, "/s.sh", "d")
    assert shown in str(raised.value) and "(rc=1)" in str(raised.value)


def test_systemd_timer_refuses_bad_arguments_before_running_anything():
    tools = RecordingTools()
    with pytest.raises(Refused):
        SystemdTimer(tools).arm("u", 0, "/s.sh", "d")
    assert tools.calls == []


# -- CommitConfirm ----------------------------------------------------------------------------------
class TreeFiles:
    """Real files below a root."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def read(self, path):
        return hostfiles.read_text(str(self.root), path)

    def write(self, path, text, mode=0o644):
        target = host(self.root, path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        target.chmod(mode)

    def remove(self, path):
        hostfiles.remove(str(self.root), path)


class FakeTimer:
    """systemd's side: armed units, fired by the test with the real /bin/sh."""

    def __init__(self) -> None:
        self.armed: dict[str, tuple[int, str, str]] = {}
        self.disarmed: list[str] = []

    def active(self, unit):
        return unit in self.armed

    def disarm(self, unit):
        self.disarmed.append(unit)
        self.armed.pop(unit, None)

    def arm(self, unit, timeout, script, description):
        timer_argv(unit, timeout, script, description)
        self.armed[unit] = (timeout, script, description)

    def fire(self, unit):
        _timeout, script, _description = self.armed.pop(unit)
        subprocess.run(["/bin/sh", script], check=True, capture_output=True, timeout=60)


UNIT = "onprem-test-rollback"


@pytest.fixture
def cc(root):
    return CommitConfirm(FakeTimer(), TreeFiles(root), UNIT, STATE, "test (/etc/app.conf)", clock=lambda: 1000.0,
                         root=str(root))


def arm_app_change(cc: CommitConfirm, reload: tuple[str, ...] = ("/bin/sh", "-c", "echo reloaded")) -> float:
    """The way commit_files does it: save the file, arm, then change it."""
    root = Path(cc.root)
    put(root, "/etc/app.conf", "confirmed\n")
    put(root, f"{STATE}/saved/0-0", "confirmed\n")
    script = cc.script([Restore("/etc/app.conf", f"{STATE}/saved/0-0")], [Command(reload)], owner="tests")
    deadline = cc.arm(30, script, {"saved_files": [f"{STATE}/saved/0-0"]})
    put(root, "/etc/app.conf", "changed\n")
    return deadline


def state_files(cc: CommitConfirm) -> list[str]:
    directory = host(Path(cc.root), STATE)
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())


def test_arm_writes_the_script_and_the_record_and_arms_the_timer(cc):
    deadline = arm_app_change(cc)
    root = Path(cc.root)
    assert deadline == 1030.0
    script = host(root, f"{STATE}/{SCRIPT}")
    assert mode_of(script) == 0o700 and script.read_text().startswith("#!/bin/sh\n# Written by tests")
    record = json.loads(host(root, f"{STATE}/{PENDING}").read_text())
    assert record == {"saved_files": [f"{STATE}/saved/0-0"], "subject": "test (/etc/app.conf)",
                      "confirm_timeout": 30, "armed_at": 1000.0, "rollback_at": 1030.0,
                      "rollback_unit": f"{UNIT}.timer"}
    assert mode_of(host(root, f"{STATE}/{PENDING}")) == 0o600
    timeout, path, description = cc.timer.armed[UNIT]
    assert (timeout, path) == (30, str(script))
    assert description.startswith("test (/etc/app.conf): restore the previous state")
    assert cc.pending() == record


def test_waiting_is_true_while_the_timer_is_active(cc):
    assert cc.waiting(False) is False
    arm_app_change(cc)
    assert cc.waiting(False) is True and cc.waiting(True) is True
    assert cc.warnings == []


def test_fired_timer_restores_and_waiting_reports_what_it_recorded(cc):
    root = Path(cc.root)
    arm_app_change(cc, reload=("/bin/sh", "-c", "echo reload said this >&2; exit 3"))
    cc.timer.fire(UNIT)
    assert host(root, "/etc/app.conf").read_text() == "confirmed\n"
    assert cc.waiting(False) is False
    [warning] = cc.warnings
    assert warning.startswith("an unconfirmed change to test (/etc/app.conf) (applied at 1000.0) was not confirmed")
    assert re.search(r"the host rolled it back \(rolled back at \d+, sh exit 3; its output: reload said this\)",
                     warning), warning
    # The pending change is forgotten, the record of what the host did stays.
    assert state_files(cc) == [ERRORS, MARKER]
    assert cc.pending() is None and cc.rolled_back() is not None


def test_waiting_in_check_mode_warns_and_keeps_the_state(cc):
    arm_app_change(cc)
    cc.timer.fire(UNIT)
    before = state_files(cc)
    assert cc.waiting(True) is False
    assert len(cc.warnings) == 1 and "the host rolled it back" in cc.warnings[0]
    assert state_files(cc) == before and PENDING in before


def test_timer_gone_without_a_record_is_reported(cc):
    arm_app_change(cc)
    cc.timer.armed.clear()  # a reboot: the transient timer is gone, nothing ran
    assert cc.waiting(False) is False
    [warning] = cc.warnings
    assert "test (/etc/app.conf)" in warning and "without a rollback record" in warning
    assert state_files(cc) == []
    assert host(Path(cc.root), "/etc/app.conf").read_text() == "changed\n"


def test_confirm_with_nothing_pending_returns_none(cc):
    assert cc.confirm(False) is None
    assert cc.timer.disarmed == [] and cc.warnings == []


def test_confirm_stops_the_timer_and_returns_the_record(cc):
    arm_app_change(cc)
    record = cc.confirm(False)
    assert record["rollback_at"] == 1030.0 and record["saved_files"] == [f"{STATE}/saved/0-0"]
    assert cc.timer.armed == {} and cc.timer.disarmed == [UNIT]
    assert cc.warnings == []
    # The caller forgets the record once it has done its own checks.
    cc.clear(record["saved_files"])
    assert state_files(cc) == []


def test_confirm_in_check_mode_leaves_the_timer_armed(cc):
    arm_app_change(cc)
    assert cc.confirm(True)["armed_at"] == 1000.0
    assert UNIT in cc.timer.armed and cc.timer.disarmed == []


def test_confirm_after_the_rollback_ran_raises_rolled_back(cc):
    arm_app_change(cc)
    cc.timer.fire(UNIT)
    with pytest.raises(RolledBack) as raised:
        cc.confirm(False)
    message = str(raised.value)
    assert "the change to test (/etc/app.conf) applied at 1000.0 is no longer live" in message
    assert re.search(r"rolled it back at its deadline 1030.0 \(rolled back at \d+, sh exit 0; its output: reloaded\)",
                     message), message
    assert isinstance(raised.value, Refused)
    assert state_files(cc) == [ERRORS, MARKER]


def test_confirm_in_check_mode_after_the_rollback_keeps_the_state(cc):
    arm_app_change(cc)
    cc.timer.fire(UNIT)
    before = state_files(cc)
    with pytest.raises(RolledBack):
        cc.confirm(True)
    assert state_files(cc) == before


def test_confirm_with_the_timer_gone_and_no_record_warns_and_keeps_the_change(cc):
    arm_app_change(cc)
    cc.timer.armed.clear()
    record = cc.confirm(False)
    assert record is not None and record["armed_at"] == 1000.0
    [warning] = cc.warnings
    assert "the rollback timer of test (/etc/app.conf) was gone" in warning and "it is kept" in warning


def test_arm_removes_the_record_of_an_earlier_rollback(cc):
    arm_app_change(cc)
    cc.timer.fire(UNIT)
    assert cc.rolled_back() is not None
    arm_app_change(cc)
    assert cc.rolled_back() is None
    assert MARKER not in state_files(cc) and ERRORS not in state_files(cc)


def test_abort_stops_the_timer_and_forgets_the_saved_state_on_request(cc):
    arm_app_change(cc)
    cc.abort(forget=False)
    assert cc.timer.armed == {} and cc.pending() is not None
    arm_app_change(cc)
    cc.abort(forget=True)
    assert cc.timer.armed == {} and state_files(cc) == []


def test_rewrite_puts_a_record_back(cc):
    arm_app_change(cc)
    record = cc.pending()
    cc.files.write(os.path.join(STATE, PENDING), "{}", 0o600)
    cc.rewrite(record)
    assert cc.pending() == record
