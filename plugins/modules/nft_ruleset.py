#!/usr/bin/python
# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: nft_ruleset
short_description: Manage one nftables table atomically, with an automatic rollback unless confirmed
version_added: 0.1.0
description:
  - Owns exactly one nftables table (default C(inet onprem_filter)). It never runs C(flush ruleset), so the
    tables and chains of Docker (iptables-nft), Proxmox, libvirt or an operator are left as they are.
  - "Reads the live table with C(nft -j list table), builds one transaction file (C(table X {}),
    C(delete table X), then the wanted table), validates it with C(nft -c -f) and applies it with one
    C(nft -f) run: the kernel commits all of it or nothing."
  - The wanted table is loaded into a throw-away network namespace (C(unshare --net)) and listed back, so the
    comparison with the live table uses the kernel's own form and ignores formatting, handles and counter
    values. The host's ruleset is not touched by this step.
  - "Commit-confirm: with O(confirm_timeout), the current table (or its absence) is saved under O(state_dir)
    and a transient systemd timer is armed before the change, which restores the saved table after that many
    seconds unless a later call with O(confirm=true) stops it. The timer runs on the host itself, so it fires
    when the controller has lost its connection."
  - With O(persist_path), the applied table is also written to a file that can be loaded at boot (the
    C(onprem.gpu_server.firewall) role loads it with its own oneshot unit). Under commit-confirm the file is
    only written on confirmation, so a reboot during the window brings back the last confirmed table.
author:
  - onprem.gpu_server maintainers (@onprem)
options:
  name:
    description:
      - Table name. Letters, digits and C(_), starting with a letter or C(_), at most 64 characters.
    type: str
    default: onprem_filter
  family:
    description:
      - Address family of the table.
    type: str
    choices: [inet, ip, ip6, arp, bridge, netdev]
    default: inet
  content:
    description:
      - The body of the table, that is what goes between C(table <family> <name> {) and C(}) (sets, chains,
        rules). A C(}) that would close the table early and C(include) statements are refused, so the content
        cannot reach other tables.
      - Required with O(state=present) unless O(confirm=true).
    type: str
  state:
    description:
      - V(present) makes the table equal O(content); V(absent) deletes the table (and O(persist_path)).
    type: str
    choices: [present, absent]
    default: present
  confirm_timeout:
    description:
      - Seconds after which the host restores the previous table by itself unless the change is confirmed.
        V(0) applies without a rollback.
      - Used only when the table changes; RV(rollback_armed) says whether a confirmation is awaited.
    type: int
    default: 0
  confirm:
    description:
      - Confirm the change that an earlier call applied with O(confirm_timeout) - stop the rollback timer,
        check that the live table is still the applied one, write O(persist_path). O(content) and O(state)
        are not used. Fails when the rollback has already restored the previous table.
    type: bool
    default: false
  persist_path:
    description:
      - File that receives the applied transaction (loadable with C(nft -f)), for loading at boot. Not
        written when unset. With O(state=absent) the file is removed.
    type: path
  state_dir:
    description:
      - Directory for the saved table and the pending-confirmation record (one subdirectory per table).
    type: path
    default: /var/lib/onprem-gpu-server/nft
attributes:
  check_mode:
    support: full
    description: Runs C(nft -c) and the scratch-namespace comparison; applies, arms, confirms and writes nothing.
  diff_mode:
    support: full
    description: The live table and the wanted table as C(nft list table) prints them.
  platform:
    support: full
    platforms: debian
    description: Linux hosts with nftables (C(nft) 0.9.3 or later for JSON), util-linux C(unshare) and systemd.
notes:
  - "Docker coexistence: Docker's chains live in its own tables (C(ip filter), C(ip nat) through iptables-nft).
    A packet must be accepted by every base chain on its hook; a drop in any of them is final. A base chain
    here with policy C(drop) on the forward hook would therefore also drop container traffic: keep forward
    chains at policy C(accept) and drop only what must not pass."
  - The table is deleted and re-created on each change, so counters and dynamic set elements restart from zero;
    conntrack entries are not part of a table and established connections keep flowing.
  - "Content that refers to interfaces by index (C(iif), C(oif)) cannot be loaded into the scratch namespace;
    use C(iifname)/C(oifname)."
seealso:
  - name: nft(8) manual
    description: Ruleset syntax, C(-c) check mode and atomic C(-f) loading.
    link: https://www.netfilter.org/projects/nftables/manpage.html
"""

EXAMPLES = r"""
- name: Apply a table that the host rolls back by itself unless confirmed within 30 s
  onprem.gpu_server.nft_ruleset:
    content: |
      chain input {
        type filter hook input priority filter; policy drop;
        ct state established,related accept
        iifname "lo" accept
        tcp dport 22 accept
      }
    confirm_timeout: 30
    persist_path: /etc/nftables.d/onprem_filter.nft
  register: fw

- name: Drop the SSH connection so that the next task opens a new one through the new table
  ansible.builtin.meta: reset_connection

- name: Reconnect
  ansible.builtin.wait_for_connection:
    timeout: 15

- name: Keep the new table
  onprem.gpu_server.nft_ruleset:
    confirm: true
  when: fw.rollback_armed

- name: Remove the table (and its boot file)
  onprem.gpu_server.nft_ruleset:
    name: onprem_filter
    state: absent
    persist_path: /etc/nftables.d/onprem_filter.nft
"""

RETURN = r"""
table:
  description: The managed table, C(<family> <name>).
  returned: always
  type: str
  sample: inet onprem_filter
present:
  description: Whether the table exists after the call (with O(confirm=true) not returned).
  returned: unless O(confirm=true)
  type: bool
rollback_armed:
  description: A rollback timer is armed and waits for O(confirm=true) (in check mode, would be armed).
  returned: always
  type: bool
rollback_unit:
  description: The transient systemd timer that restores the previous table.
  returned: always
  type: str
  sample: onprem-nft-rollback-inet-onprem_filter.timer
rollback_at:
  description: When the armed rollback fires, seconds since the epoch on the host's clock; null when none is armed.
  returned: always
  type: float
confirmed:
  description: With O(confirm=true), whether a pending change was confirmed (false when none was waiting).
  returned: when O(confirm=true)
  type: bool
persist_path:
  description: The boot file written (or, under commit-confirm, to be written on confirmation).
  returned: always
  type: str
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.onprem.gpu_server.plugins.module_utils.host import files as hostfiles
from ansible_collections.onprem.gpu_server.plugins.module_utils.host.commit_confirm import SystemdTimer
from ansible_collections.onprem.gpu_server.plugins.module_utils.nft import ruleset
from ansible_collections.onprem.gpu_server.plugins.module_utils.nft.runner import NftError, NftRunner
from ansible_collections.onprem.gpu_server.plugins.module_utils.nft.table import OwnedTable, Refused
from ansible_collections.onprem.gpu_server.plugins.module_utils.tool_runner import CommandFailed

# Everything is read and written below ROOT; tests point it at a temporary tree.
ROOT = "/"


ARGUMENT_SPEC = dict(
    name=dict(type="str", default="onprem_filter"),
    family=dict(type="str", default="inet", choices=list(ruleset.FAMILIES)),
    content=dict(type="str"),
    state=dict(type="str", default="present", choices=["present", "absent"]),
    confirm_timeout=dict(type="int", default=0),
    confirm=dict(type="bool", default=False),
    persist_path=dict(type="path"),
    state_dir=dict(type="path", default="/var/lib/onprem-gpu-server/nft"),
)


def run_module():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    try:
        ref = ruleset.TableRef(params["family"], params["name"])
    except ruleset.RulesetError as exc:
        module.fail_json(msg=str(exc))
    if params["confirm_timeout"] < 0:
        module.fail_json(msg=f"confirm_timeout: {params['confirm_timeout']} must be 0 (no rollback) or more")
    if not params["confirm"] and params["state"] == "present" and params["content"] is None:
        module.fail_json(msg="content: required with state=present (unless confirm=true)")

    runner = NftRunner(module)
    table = OwnedTable(runner, hostfiles.RootFiles(module, ROOT), ref, params["state_dir"], SystemdTimer(runner),
                       root=ROOT)
    try:
        if params["confirm"]:
            result = table.confirm(module.check_mode)
        else:
            body = params["content"] if params["state"] == "present" else None
            fd, script_path = tempfile.mkstemp(prefix="nft-", suffix=".nft", dir=module.tmpdir)
            os.close(fd)
            result = table.converge(body, script_path, params["persist_path"], params["confirm_timeout"],
                                    module.check_mode)
    except ruleset.RulesetError as exc:
        module.fail_json(msg=str(exc), table=ref.spec)
    except NftError as exc:
        module.fail_json(msg=f"nft rejected the change to table {ref.spec}; the ruleset is unchanged: {exc}",
                         table=ref.spec)
    except (Refused, CommandFailed) as exc:
        module.fail_json(msg=str(exc), table=ref.spec)

    diff = result.pop("diff", None)
    for warning in table.warnings:
        module.warn(warning)
    if module._diff and diff and result["changed"]:
        result["diff"] = diff
    module.exit_json(**result)


def main():
    run_module()


if __name__ == "__main__":
    main()
