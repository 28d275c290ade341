#!/usr/bin/python
# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: commit_files
short_description: Write configuration files and reload a service, rolled back by the host unless confirmed
version_added: 0.2.0
description:
  - Writes a set of files (each atomically), optionally checks them with a validation command, and runs a
    reload command, for changes that can cut the controller off - network configuration, sshd.
  - "Commit-confirm: with O(confirm_timeout), the previous copy of each file is saved under O(state_dir) and a
    transient systemd timer (C(onprem-<name>-rollback.timer)) is armed before anything is written. Unless a
    later call with O(confirm=true) stops it, the host puts the saved files back (removing files that did not
    exist), runs the reload command again and writes C(rolled-back) (time, exit status) and C(rollback.err)
    into O(state_dir). The timer runs on the host, so it fires when the controller has lost its connection."
  - A failing validation or reload puts the previous files back at once (and reloads again after a failed
    reload); the task fails with the tool's own message. Nothing is left armed for a change that never went
    live.
  - The same commit-confirm implementation carries the C(onprem.gpu_server.nft_ruleset) module.
author:
  - onprem.gpu_server maintainers (@onprem)
options:
  name:
    description:
      - Name of the change's owner (for example V(networks), V(netplan), V(sshd)). The rollback unit is
        C(onprem-<name>-rollback); letters, digits, C(_) and C(-).
    type: str
    required: true
  files:
    description:
      - The files to write. Required unless O(confirm=true).
    type: list
    elements: dict
    suboptions:
      path:
        description: Absolute path of the file.
        type: path
        required: true
      content:
        description: The whole content of the file.
        type: str
        required: true
      mode:
        description: Permissions, as an octal string.
        type: str
        default: "0644"
      absent_as:
        description:
          - What the rollback leaves where the file did not exist before - V(remove) it, or an V(empty) file
            (for a file another configuration includes unconditionally).
        type: str
        choices: [remove, empty]
        default: remove
  validate:
    description:
      - Command (argv list) run after the files are written and before the reload, for example
        V([sshd, -t]). A non-zero exit puts the previous files back and fails with the command's output.
    type: list
    elements: str
  reload:
    description:
      - Command (argv list) that makes the service use the files, for example V([ifreload, --all]).
        Run only when a file changed (or with O(force=true)).
    type: list
    elements: str
  reload_retries:
    description:
      - How many more times to run O(reload) when it fails (only while its output contains
        O(reload_retry_when), when that is set). The rollback retries the same way.
    type: int
    default: 0
  reload_retry_delay:
    description: Seconds between reload attempts.
    type: int
    default: 2
  reload_retry_when:
    description:
      - Text in the reload's output that means "busy, try again" (for example ifupdown2's
        V(Another instance)). Unset - any failure is retried.
    type: str
  force:
    description:
      - Reload (under commit-confirm, when O(confirm_timeout) is set) although no file changes - for a running
        state that drifted from the files.
    type: bool
    default: false
  confirm_timeout:
    description:
      - Seconds after which the host restores the previous files by itself unless the change is confirmed.
        V(0) applies without a rollback.
    type: int
    default: 0
  confirm:
    description:
      - Confirm the change an earlier call applied with O(confirm_timeout) - stop the rollback timer and check
        that the files still hold what was written. Fails when the rollback already ran.
    type: bool
    default: false
  state_dir:
    description:
      - Directory for the saved files, the rollback script and its records. Default
        C(/var/lib/onprem-gpu-server/commit/<name>).
    type: path
attributes:
  check_mode:
    support: full
    description: Compares the files and reports the change (and whether a rollback would be armed); writes,
      validates, reloads and arms nothing.
  diff_mode:
    support: full
    description: Each changed file, before and after.
  platform:
    support: full
    platforms: debian
    description: Linux hosts with systemd (C(systemd-run)) and C(/bin/sh).
notes:
  - A host that reboots during the window keeps the new files (the transient timer does not survive a
    reboot); the next O(confirm=true) warns and keeps them, as the controller has then reached the host.
  - The rollback stops at its timer's deadline; a confirmation arriving after it fails and says what the
    host recorded.
seealso:
  - module: onprem.gpu_server.nft_ruleset
"""

EXAMPLES = r"""
- name: Write the interfaces file and reload, rolled back by the host unless confirmed within 90 s
  onprem.gpu_server.commit_files:
    name: networks
    files:
      - path: /etc/network/interfaces.d/onprem-networks
        content: "{{ lookup('ansible.builtin.template', 'onprem-networks.j2') }}"
        absent_as: empty
    reload: [ifreload, --all]
    reload_retries: 15
    reload_retry_when: Another instance
    confirm_timeout: 90
  register: net

- name: Drop the SSH connection so that the next task opens a new one through the new network
  ansible.builtin.meta: reset_connection

- name: Reconnect
  ansible.builtin.wait_for_connection:
    timeout: 30

- name: Keep the change
  onprem.gpu_server.commit_files:
    name: networks
    confirm: true
  when: net.rollback_armed

- name: An sshd drop-in, checked by sshd itself before the reload
  onprem.gpu_server.commit_files:
    name: sshd
    files:
      - path: /etc/ssh/sshd_config.d/50-onprem.conf
        content: "PasswordAuthentication no\n"
    validate: [sshd, -t]
    reload: [systemctl, reload, ssh]
    confirm_timeout: 60
"""

RETURN = r"""
files:
  description: The paths whose content or mode changed (or would change).
  returned: unless O(confirm=true)
  type: list
  elements: str
reloaded:
  description: Whether the reload command ran.
  returned: unless O(confirm=true)
  type: bool
rollback_armed:
  description: A rollback timer is armed and waits for O(confirm=true) (in check mode, would be armed).
  returned: always
  type: bool
rollback_unit:
  description: The transient systemd timer that restores the previous files.
  returned: always
  type: str
  sample: onprem-networks-rollback.timer
rollback_at:
  description: When the armed rollback fires, seconds since the epoch on the host's clock; null when none is armed.
  returned: always
  type: float
confirmed:
  description: With O(confirm=true), whether a pending change was confirmed (false when none was waiting).
  returned: when O(confirm=true)
  type: bool
"""

import hashlib
import os
import re
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.onprem.gpu_server.plugins.module_utils.host import commit_confirm
from ansible_collections.onprem.gpu_server.plugins.module_utils.host import files as hostfiles
from ansible_collections.onprem.gpu_server.plugins.module_utils.host.commit_confirm import (
    CommitConfirm,
    Refused,
    SystemdTimer,
)
from ansible_collections.onprem.gpu_server.plugins.module_utils.tool_runner import CommandFailed, ToolRunner

# Everything is read and written below ROOT; tests point it at a temporary tree.
ROOT = "/"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
MODE = re.compile(r"^0?[0-7]{3,4}$")

ARGUMENT_SPEC = dict(
    name=dict(type="str", required=True),
    files=dict(type="list", elements="dict", options=dict(
        path=dict(type="path", required=True),
        content=dict(type="str", required=True),
        mode=dict(type="str", default="0644"),
        absent_as=dict(type="str", default="remove", choices=["remove", "empty"]),
    )),
    validate=dict(type="list", elements="str"),
    reload=dict(type="list", elements="str"),
    reload_retries=dict(type="int", default=0),
    reload_retry_delay=dict(type="int", default=2),
    reload_retry_when=dict(type="str"),
    force=dict(type="bool", default=False),
    confirm_timeout=dict(type="int", default=0),
    confirm=dict(type="bool", default=False),
    state_dir=dict(type="path"),
)


def sha256(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_params(params):
    """Every bad input named by its option, before anything is read or written."""
    if not NAME.match(params["name"]):
        raise Refused(f"name: {params['name']!r} must be letters, digits, _ and - (at most 64), starting with a "
                      "letter or digit")
    if params["confirm_timeout"] < 0:
        raise Refused(f"confirm_timeout: {params['confirm_timeout']} must be 0 (no rollback) or more")
    if params["confirm"]:
        return
    if not params["files"]:
        raise Refused("files: at least one file is required (unless confirm=true)")
    for option in ("reload_retries", "reload_retry_delay"):
        if params[option] < 0:
            raise Refused(f"{option}: {params[option]} must be 0 or more")
    for option in ("validate", "reload"):
        if params[option] is not None and (not params[option] or not params[option][0]):
            raise Refused(f"{option}: give the command as a non-empty argv list")
    seen = set()
    for index, item in enumerate(params["files"]):
        path = item["path"]
        if not os.path.isabs(path) or os.path.normpath(path) != path:
            raise Refused(f"files[{index}].path: {path!r} must be an absolute, normalised path")
        if path in seen:
            raise Refused(f"files[{index}].path: {path} is listed twice")
        seen.add(path)
        if not MODE.match(item["mode"]):
            raise Refused(f"files[{index}].mode: {item['mode']!r} must be octal, for example '0644'")


class FileCommit:
    """The files of one owner, their reload, and the host's rollback."""

    def __init__(self, tools, files, commit, params):
        self._new_copies = []
        self.tools = tools
        self.files = files
        self.commit = commit
        self.p = params

    def _reload_command(self):
        if not self.p["reload"]:
            return []
        return [commit_confirm.Command(tuple([self.tools.path(self.p["reload"][0]), *self.p["reload"][1:]]),
                                       self.p["reload_retries"], self.p["reload_retry_delay"],
                                       self.p["reload_retry_when"])]

    def _run(self, argv, retries=0, delay=0, retry_when=None):
        """(rc, output) of argv, retried like the rollback does; a missing tool raises CommandFailed."""
        attempt = 0
        while True:
            rc, out, err = self.tools.execute(list(argv))
            output = (err.strip() + "\n" + out.strip()).strip()
            if rc == 0 or attempt >= retries or (retry_when is not None and retry_when not in output):
                return rc, output
            attempt += 1
            time.sleep(delay)

    def _put_back(self, before):
        """Write the content each file had before this call (or remove/empty it)."""
        for item in self.p["files"]:
            old, mode = before[item["path"]]
            if old is not None:
                self.files.write(item["path"], old, mode)
            elif item["absent_as"] == "empty":
                self.files.write(item["path"], "", int(item["mode"], 8))
            else:
                self.files.remove(item["path"])

    def apply(self, check_mode):
        p = self.p
        waiting = self.commit.waiting(check_mode)
        before = {}
        changed = []
        diff = []
        for item in p["files"]:
            old = self.files.read(item["path"])
            mode = self.files.mode(item["path"])
            before[item["path"]] = (old, mode)
            if old != item["content"] or mode != int(item["mode"], 8):
                changed.append(item["path"])
                diff.append(hostfiles.file_diff(item["path"], old, item["content"]))
        pending = self.commit.pending() if waiting else None
        result = {
            "changed": False,
            "files": changed,
            "reloaded": False,
            "rollback_armed": waiting,
            "rollback_unit": f"{self.commit.unit}.timer",
            "rollback_at": pending.get("rollback_at") if pending else None,
            "diff": diff,
        }
        if not changed and not p["force"]:
            return result
        if waiting and not p["confirm_timeout"]:
            raise Refused(
                f"a change to {self.commit.subject} waits for confirmation (rollback unit {self.commit.unit}.timer): "
                "confirm it (confirm=true) or apply with confirm_timeout, so the rollback stays consistent"
            )
        use_confirm = bool(p["confirm_timeout"])
        result["changed"] = True
        result["reloaded"] = bool(p["reload"])
        if check_mode:
            result["rollback_armed"] = waiting or use_confirm
            return result

        reload = self._reload_command()
        if use_confirm:
            try:
                result["rollback_at"] = self._arm(pending, before, reload)
            except Exception:
                # Nothing was written; an earlier unconfirmed change keeps its own record and copies.
                if waiting:
                    for copy in self._new_copies:
                        self.files.remove(copy)
                raise
            result["rollback_armed"] = True
        try:
            for item in p["files"]:
                if item["path"] in changed:
                    self.files.write(item["path"], item["content"], int(item["mode"], 8))
            if p["validate"]:
                rc, output = self._run([self.tools.path(p["validate"][0]), *p["validate"][1:]])
                if rc != 0:
                    raise Refused(f"{' '.join(p['validate'])} rejected the new files (rc={rc}): {output[-1500:]}; "
                                  "the previous files are back and nothing was reloaded")
            for command in reload:
                rc, output = self._run(command.argv, command.retries, command.delay, command.retry_when)
                if rc != 0:
                    self._put_back(before)
                    again, again_output = self._run(command.argv, command.retries, command.delay,
                                                    command.retry_when)
                    raise Refused(
                        f"{' '.join(p['reload'])} failed (rc={rc}): {output[-1500:]}; the previous files are back "
                        f"and the reload ran again (rc={again}{': ' + again_output[-500:] if again else ''})")
        except (Refused, CommandFailed):
            self._put_back(before)
            if use_confirm and waiting and pending:
                # The earlier unconfirmed change is live again and still waits (the timer, re-armed, still
                # returns to the last confirmed state): its own record comes back, copies made now go.
                for copy in self._new_copies:
                    self.files.remove(copy)
                self.commit.rewrite(dict(pending, rollback_at=result["rollback_at"]))
            elif use_confirm:
                self.commit.abort(forget=True)
            raise
        return result

    def _arm(self, pending, before, reload):
        """Save what is not saved yet (the last confirmed state), write the rollback script, arm the timer.

        An earlier unconfirmed change's saves, ``absent_as`` and written files are kept in the record, so
        the rollback returns every file either change touched to its last confirmed state.
        """
        pending = pending or {}
        saved = dict(pending.get("saved", {}))
        absent = dict(pending.get("absent_as", {}))
        written = dict(pending.get("files", {}))
        self._new_copies = []
        self.files.ensure_dir(self.commit.dir)
        for index, item in enumerate(self.p["files"]):
            path = item["path"]
            written[path] = sha256(item["content"])
            if path in saved:
                continue
            absent[path] = item["absent_as"]
            if before[path][0] is None:
                saved[path] = None
                continue
            copy = os.path.join(self.commit.dir, commit_confirm.SAVED, f"{len(saved)}-{index}")
            self.files.save(path, copy)
            self._new_copies.append(copy)
            saved[path] = copy
        restores = [commit_confirm.Restore(path, copy, absent.get(path, "remove")) for path, copy in saved.items()]
        script = self.commit.script(restores, reload, owner=f"onprem.gpu_server.commit_files ({self.p['name']})")
        record = {
            "files": written,
            "saved": saved,
            "absent_as": absent,
            "saved_files": [copy for copy in saved.values() if copy],
        }
        return self.commit.arm(self.p["confirm_timeout"], script, record)

    def confirm(self, check_mode):
        result = {
            "changed": False,
            "confirmed": False,
            "rollback_armed": False,
            "rollback_unit": f"{self.commit.unit}.timer",
            "rollback_at": None,
        }
        pending = self.commit.confirm(check_mode)
        if pending is None:
            return result
        moved = [path for path, digest in pending.get("files", {}).items()
                 if sha256(self.files.read(path) or "") != digest]
        if not check_mode:
            self.commit.clear(pending.get("saved_files", []))
        if moved:
            raise Refused(
                f"{', '.join(moved)} no longer hold what was written at {pending.get('armed_at')}: the rollback "
                "started, or something else changed them. Nothing was kept; apply again."
            )
        result.update(changed=True, confirmed=True)
        return result


def run_module():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    try:
        check_params(params)
    except Refused as exc:
        module.fail_json(msg=str(exc))
    state_dir = params["state_dir"] or f"/var/lib/onprem-gpu-server/commit/{params['name']}"
    tools = ToolRunner(module)
    files = hostfiles.RootFiles(module, ROOT)
    subject = f"{params['name']} ({', '.join(item['path'] for item in params['files'] or [])})" \
        if params["files"] else params["name"]
    commit = CommitConfirm(SystemdTimer(tools), files, f"onprem-{params['name']}-rollback", state_dir, subject,
                           root=ROOT)
    worker = FileCommit(tools, files, commit, params)
    try:
        result = worker.confirm(module.check_mode) if params["confirm"] else worker.apply(module.check_mode)
    except (Refused, CommandFailed) as exc:
        for warning in commit.warnings:
            module.warn(warning)
        module.fail_json(msg=str(exc), rollback_unit=f"{commit.unit}.timer")
    for warning in commit.warnings:
        module.warn(warning)
    diff = result.pop("diff", None)
    if module._diff and diff and result["changed"]:
        result["diff"] = diff
    module.exit_json(**result)


def main():
    run_module()


if __name__ == "__main__":
    main()
