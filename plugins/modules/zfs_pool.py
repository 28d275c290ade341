#!/usr/bin/python
# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: zfs_pool
short_description: Create, import, extend and tune a ZFS pool without ever removing a vdev
version_added: 0.1.0
description:
  - Makes sure a ZFS pool with the given vdev topology and properties exists.
  - Disks are compared by resolved path, so C(/dev/disk/by-id/...) names match what C(zpool status -P) reports;
    the C(-part1) partition zpool makes on a whole disk counts as that disk.
  - An exported pool with the requested name is imported instead of being created over.
  - A vdev that the pool has and the request does not list is an error; this module never removes a vdev.
  - Disks that carry any signature (partition table, filesystem, another pool's label, md superblock) are
    refused unless O(force=true); disks that are in use (mounted, active swap, held, in an active md array, in
    another imported pool) are always refused.
  - Before any command runs, refuses a pool name zpool reserves or cannot take (see O(name)), an O(ashift)
    outside 9-16 (0 lets zpool detect it), a topology below the collection's minimum disks, and one disk listed
    under two names (C(/dev/disk/by-id/...) and C(/dev/sdX) resolve to the same node) or together with one of its
    partitions.
  - In check mode the topology is still validated with C(zpool create -n) or C(zpool add -n).
  - See C(docs/storage-modules.md) in the collection for every refusal message.
author:
  - onprem.gpu_server maintainers (@onprem)
options:
  name:
    description:
      - Pool name. At most 239 letters, digits and C(_ - . :), beginning with a letter (OpenZFS's rules, without
        the space OpenZFS also allows).
      - Refused, before any command runs, are the names zpool reserves (C(mirror), C(raidz), C(draid), C(spare),
        C(log) and any name beginning with C(mirror), C(raidz), C(draid) or C(spare)), names beginning with C(c)
        and a digit (Solaris disk names), and the vdev class words C(cache), C(special) and C(dedup).
    type: str
    required: true
  state:
    description:
      - V(present) creates, imports or updates the pool; V(absent) destroys it (needs O(allow_destroy=true)).
    type: str
    choices: [present, absent]
    default: present
  vdevs:
    description:
      - The complete vdev topology, a list of dicts. Required with O(state=present).
      - A V(stripe) entry with several disks means one single-disk vdev per disk.
      - Minimum disks per vdev V(mirror) 2, V(raidz1) 3, V(raidz2) 4, V(raidz3) 5 (parity plus two data disks;
        with fewer, a mirror holds as much); a disk may appear once, under one name.
    type: list
    elements: dict
    suboptions:
      role:
        description: Allocation class of the vdev.
        type: str
        choices: [data, special, dedup, log, cache]
        default: data
      type:
        description:
          - Redundancy of the vdev.
          - V(cache) vdevs are always V(stripe); V(log), V(special), V(dedup) are V(stripe) or V(mirror).
        type: str
        choices: [stripe, mirror, raidz1, raidz2, raidz3]
        default: stripe
      disks:
        description: Disks of the vdev, preferably by stable id (C(/dev/disk/by-id/...)).
        type: list
        elements: str
        required: true
  ashift:
    description:
      - Sector size exponent (12 for 4K sectors), 9 to 16, or 0 to let zpool detect it. Required to create a
        pool; passed to C(zpool add) too.
      - On an existing pool a different value is reported as a warning, since existing vdevs keep theirs.
    type: int
  properties:
    description:
      - Pool properties (C(zpool create -o), C(zpool set)). Values that differ are set; read-only ones that
        differ are an error.
    type: dict
    default: {}
  filesystem_properties:
    description:
      - Properties of the pool's root dataset (C(zpool create -O), C(zfs set)), for example C(compression=lz4),
        C(atime=off), C(xattr=sa). Creation-only or read-only ones that differ are an error.
    type: dict
    default: {}
  force:
    description:
      - Use disks that carry signatures (passes C(-f) to zpool). Never overrides a disk in use.
    type: bool
    default: false
  allow_expand:
    description: Add requested vdevs the pool lacks (C(zpool add), validated with C(zpool add -n) first).
    type: bool
    default: false
  allow_destroy:
    description: Allow O(state=absent) to run C(zpool destroy).
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Runs only read-only commands and the C(-n) dry runs of zpool create/add.
  diff_mode:
    support: full
    description: Shows the topology and the requested properties before and after.
  platform:
    support: full
    platforms: posix
    description: Linux with OpenZFS 2.x (zpool, zfs, wipefs).
requirements:
  - OpenZFS command line tools (zpool, zfs)
  - util-linux wipefs
seealso:
  - module: community.general.zpool
    description: Removes vdevs missing from its list; this module refuses instead.
notes:
  - Spares are reported but not managed.
"""

EXAMPLES = r"""
- name: Data lake, 8 disks in RAIDZ2 with lz4
  onprem.gpu_server.zfs_pool:
    name: tank
    ashift: 12
    vdevs:
      - type: raidz2
        disks:
          - /dev/disk/by-id/wwn-0x5000c50000ab0001
          - /dev/disk/by-id/wwn-0x5000c50000ab0002
          - /dev/disk/by-id/wwn-0x5000c50000ab0003
          - /dev/disk/by-id/wwn-0x5000c50000ab0004
          - /dev/disk/by-id/wwn-0x5000c50000ab0005
          - /dev/disk/by-id/wwn-0x5000c50000ab0006
          - /dev/disk/by-id/wwn-0x5000c50000ab0007
          - /dev/disk/by-id/wwn-0x5000c50000ab0008
    properties:
      autotrim: "on"
    filesystem_properties:
      compression: lz4
      atime: "off"
      xattr: sa

- name: Add a mirrored special vdev to an existing pool
  onprem.gpu_server.zfs_pool:
    name: tank
    ashift: 12
    allow_expand: true
    vdevs:
      - type: raidz2
        disks: "{{ tank_disks }}"
      - role: special
        type: mirror
        disks:
          - /dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_LABNVME000
          - /dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_LABNVME001

- name: Destroy a scratch pool
  onprem.gpu_server.zfs_pool:
    name: scratch
    state: absent
    allow_destroy: true
"""

RETURN = r"""
action:
  description: What was done (or would be in check mode), one of V(none), V(create), V(import), V(update), V(destroy).
  returned: always
  type: str
  sample: create
commands:
  description: The commands that changed (or would change) the system, as argv lists.
  returned: always
  type: list
  elements: list
  sample: [["zpool", "set", "autotrim=on", "tank"]]
pool:
  description: The pool after the run (in check mode, as predicted).
  returned: when O(state=present)
  type: dict
  contains:
    name:
      description: Pool name.
      type: str
      returned: always
    health:
      description: Pool state from C(zpool status).
      type: str
      returned: when the pool exists
    vdevs:
      description: Topology, each vdev with role, type, name, state and disks (path, state).
      type: list
      elements: dict
      returned: when the pool exists
    properties:
      description: Pool properties (C(zpool get -p) values).
      type: dict
      returned: when the pool exists
    filesystem_properties:
      description: Root dataset properties (C(zfs get -p) values).
      type: dict
      returned: when the pool exists
  sample: {"name": "tank", "health": "ONLINE", "vdevs": [], "properties": {}, "filesystem_properties": {}}
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.validation import check_type_dict

from ansible_collections.onprem.gpu_server.plugins.module_utils.blockdev.probe import BlockdevRunner, fallback_parent
from ansible_collections.onprem.gpu_server.plugins.module_utils.zfs.planner import (
    PlanError,
    check_request,
    disks_to_probe,
    plan_pool,
)
from ansible_collections.onprem.gpu_server.plugins.module_utils.zfs.rules import vdevs_shape_problem
from ansible_collections.onprem.gpu_server.plugins.module_utils.zfs.runner import ZfsRunner

ARGUMENT_SPEC: dict[str, Any] = {
    "name": {"type": "str", "required": True},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
    "vdevs": {"type": "list", "elements": "dict", "options": {
        "role": {"type": "str", "choices": ["data", "special", "dedup", "log", "cache"], "default": "data"},
        "type": {"type": "str", "choices": ["stripe", "mirror", "raidz1", "raidz2", "raidz3"], "default": "stripe"},
        "disks": {"type": "list", "elements": "str", "required": True},
    }},
    "ashift": {"type": "int"},
    "properties": {"type": "dict", "default": {}},
    "filesystem_properties": {"type": "dict", "default": {}},
    "force": {"type": "bool", "default": False},
    "allow_expand": {"type": "bool", "default": False},
    "allow_destroy": {"type": "bool", "default": False},
}


class PoolModule(AnsibleModule):
    """AnsibleModule whose argument check names ``vdevs`` when it is not a list of dicts.

    Ansible rejects ``vdevs: foo`` with 'dictionary requested, could not parse JSON or
    key=value' and no option name. The raw value is gone once Ansible has validated it, so it
    is looked at when the parameters are loaded, and the message is replaced when Ansible's
    check then fails.
    """

    _vdevs_problem: str | None = None

    def _load_params(self) -> None:
        super()._load_params()
        vdevs = self.params.get("vdevs")
        if isinstance(vdevs, str) or (isinstance(vdevs, list) and any(isinstance(v, str) for v in vdevs)):
            # Strings Ansible can read as dicts ('disks=...', JSON) pass its check; only the others fail.
            self._vdevs_problem = _unreadable_vdevs(vdevs)

    def fail_json(self, msg: str, **kwargs: Any) -> None:
        problem, self._vdevs_problem = self._vdevs_problem, None
        super().fail_json(msg=problem or msg, **kwargs)


def _unreadable_vdevs(vdevs: str | list[Any]) -> str | None:
    """The message for vdevs when Ansible cannot turn it into a list of dicts, else None."""
    items = vdevs.split(",") if isinstance(vdevs, str) else vdevs
    for item in items:
        if isinstance(item, str):
            try:
                check_type_dict(item)
            except TypeError:
                return vdevs_shape_problem(vdevs)
    return None


def read_state(runner: ZfsRunner, name: str) -> dict[str, Any]:
    pools = runner.status()
    state: dict[str, Any] = {"pool": pools.get(name),
                             "other_pools": {k: v for k, v in pools.items() if k != name},
                             "zfs_version": runner.version()}
    if state["pool"] is not None:
        state["properties"] = runner.pool_properties(name)
        state["filesystem_properties"] = runner.filesystem_properties(name)
    else:
        state["importable"] = runner.importable()
    return state


def resolve_all(blk: BlockdevRunner, request: dict[str, Any], state: dict[str, Any]) -> dict[str, dict[str, str]]:
    paths = {d for v in request.get("vdevs") or [] for d in v["disks"]}
    for status in [state.get("pool"), *(state.get("other_pools") or {}).values()]:
        for vdev in (status or {}).get("vdevs", []):
            paths.update(d["path"] for d in vdev["disks"])
    return {p: blk.resolve(p) if p.startswith("/") else {"real": p, "disk": fallback_parent(p)} for p in paths}


def describe(state: dict[str, Any], name: str) -> dict[str, Any]:
    pool = state.get("pool")
    if pool is None:
        return {"name": name}
    return {"name": name, "health": pool["state"], "vdevs": pool["vdevs"],
            "properties": {k: v["value"] for k, v in (state.get("properties") or {}).items()},
            "filesystem_properties": {k: v["value"] for k, v in (state.get("filesystem_properties") or {}).items()}}


def plan_once(module: AnsibleModule, runner: ZfsRunner, blk: BlockdevRunner, state: dict[str, Any]):
    request = module.params
    devices = resolve_all(blk, request, state)
    probes = {}
    importing = state.get("pool") is None and any(p["name"] == request["name"] for p in state.get("importable") or [])
    if request["state"] == "present" and not importing:
        try:
            probes = {d: blk.probe(d) for d in disks_to_probe(request, state, devices)}
        except PlanError as exc:
            module.fail_json(msg=str(exc))
    try:
        plan = plan_pool(request, state, devices, probes)
    except PlanError as exc:
        module.fail_json(msg=str(exc))
    for argv in plan.validate:
        runner.run(argv)  # dry run (-n): validates the topology, changes nothing
    if not module.check_mode:
        for argv in plan.commands:
            runner.run(argv)
    return plan


def main() -> None:
    module = PoolModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True,
                        required_if=[("state", "present", ["vdevs"])])
    runner, blk = ZfsRunner(module), BlockdevRunner(module)
    name = module.params["name"]
    try:
        # Before any command: name, ashift, topology, and each disk listed once by its resolved node.
        requested = {d for v in module.params.get("vdevs") or [] for d in v["disks"] if d.startswith("/")}
        check_request(module.params, {p: blk.resolve(p) for p in requested})
    except PlanError as exc:
        module.fail_json(msg=str(exc))
    state = read_state(runner, name)
    plan = plan_once(module, runner, blk, state)
    plans = [plan]
    if plan.action == "import" and not module.check_mode:
        state = read_state(runner, name)
        plans.append(plan_once(module, runner, blk, state))
    commands = [argv for p in plans for argv in p.commands]
    result: dict[str, Any] = {
        "changed": bool(commands),
        "action": plans[0].action,
        "commands": commands,
    }
    for warning in [w for p in plans for w in p.warnings]:
        module.warn(warning)
    if module.params["state"] == "present":
        if commands and not module.check_mode:
            state = read_state(runner, name)
        result["pool"] = describe(state, name)
        if module.check_mode and commands:
            result["pool"].update({k: plans[-1].after[k] for k in ("vdevs",) if k in plans[-1].after})
    if module._diff:
        result["diff"] = {"before": plans[0].before, "after": plans[-1].after}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
