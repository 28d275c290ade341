#!/usr/bin/python
# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: md_array
short_description: Create or assemble a Linux md RAID0/RAID1/RAID10 array and persist it in mdadm.conf
version_added: 0.1.0
description:
  - Makes sure an md array with the given name, level and member devices runs.
  - An array that already runs (same name) is left as it is; members that carry the superblock of an array
    with the requested name are assembled (C(mdadm --assemble --uuid)) instead of being created over.
  - Members that carry any signature (partition table, filesystem, ZFS label, another array's superblock)
    are refused unless O(force=true); members in use (mounted, active swap, held by md/dm, in an active array)
    are always refused.
  - Before any command runs, refuses a name mdadm would not take (see O(name)), a malformed O(chunk), and one
    device listed under two names (C(/dev/disk/by-id/...) and C(/dev/sdX) resolve to the same node) or
    together with one of its partitions.
  - Creation is explicit about every choice (C(--metadata), C(--level), C(--raid-devices), C(--name),
    C(--bitmap)), so results do not depend on mdadm defaults.
  - Writes the array's C(ARRAY) line (by UUID) into O(config), keeping every other line, and reports that
    the initramfs needs updating when that file changed.
  - Degraded arrays are reported in the return values and as a warning.
  - See C(docs/storage-modules.md) in the collection for every refusal message.
author:
  - onprem.gpu_server maintainers (@onprem)
options:
  name:
    description:
      - Array name (C(mdadm --name)); also the default device C(/dev/md/NAME).
      - 1 to 32 letters, digits, C(.), C(_) or C(-), not beginning with C(.) or C(-) (what mdadm 4.3 and later
        accept); anything else, C(/) and C(..) included, is refused before any command runs.
    type: str
    required: true
  device:
    description: Array device; defaults to C(/dev/md/NAME).
    type: path
  level:
    description: RAID level.
    type: str
    choices: [raid0, raid1, raid10]
    required: true
  devices:
    description: Member devices, preferably by stable id (C(/dev/disk/by-id/...)).
    type: list
    elements: path
    required: true
  metadata:
    description: Superblock format.
    type: str
    choices: ['1.0', '1.1', '1.2']
    default: '1.2'
  homehost:
    description: C(mdadm --homehost) at creation; by default mdadm uses the host name.
    type: str
  bitmap:
    description:
      - Write-intent bitmap. V(auto) is V(internal) for RAID1/RAID10 and none for RAID0.
    type: str
    choices: [auto, internal, none]
    default: auto
  chunk:
    description:
      - Chunk size for RAID0/RAID10 (C(mdadm --chunk), for example V(512K)).
      - A power of two of at least 4 KiB, written as KiB (V(64)) or with a C(K), C(M), C(G) or C(T) suffix
        (V(512K), V(1M)); anything else is refused before any command runs.
    type: str
  force:
    description: Use members that carry signatures. Never overrides a member in use.
    type: bool
    default: false
  persist:
    description: Keep the array's C(ARRAY) line in O(config).
    type: bool
    default: true
  config:
    description: Path of mdadm.conf.
    type: path
    default: /etc/mdadm/mdadm.conf
  update_initramfs:
    description: Run C(update-initramfs -u) when O(config) changed.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Reads state only; predicts the commands and the mdadm.conf change.
  diff_mode:
    support: full
    description: Shows the array before/after and the mdadm.conf change.
  platform:
    support: full
    platforms: posix
    description: Linux with mdadm and util-linux wipefs.
requirements:
  - mdadm
  - util-linux wipefs
notes:
  - Members are never added to or removed from a running array; a difference is reported as a warning.
"""

EXAMPLES = r"""
- name: OS mirror on two NVMe partitions
  onprem.gpu_server.md_array:
    name: os
    level: raid1
    devices:
      - /dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_LABNVME000-part2
      - /dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_LABNVME001-part2
    update_initramfs: true
  register: os_mirror

- name: Model store, RAID0 over whole disks with 512K chunks
  onprem.gpu_server.md_array:
    name: models
    level: raid0
    chunk: 512K
    devices:
      - /dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_LABNVME000
      - /dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_LABNVME001
    config: /etc/mdadm/mdadm.conf
"""

RETURN = r"""
action:
  description: What was done (or would be in check mode), one of V(none), V(create), V(assemble).
  returned: always
  type: str
  sample: assemble
commands:
  description: Commands that changed (or would change) the system, as argv lists.
  returned: always
  type: list
  elements: list
  sample: [["mdadm", "--assemble", "/dev/md/os", "--uuid=e054553a:fbccdcfe:0ae80bc8:9379377a", "/dev/vda1"]]
array:
  description: The array after the run (in check mode, as predicted).
  returned: always
  type: dict
  sample: {"device": "/dev/md/os", "md_device": "md127", "level": "raid1", "degraded": false}
degraded:
  description: Whether the kernel reports the array degraded (fewer active devices than raid devices).
  returned: always
  type: bool
  sample: false
mdadm_conf_changed:
  description: Whether O(config) was (or would be) changed.
  returned: always
  type: bool
  sample: true
initramfs_update_required:
  description: The initramfs copy of mdadm.conf is stale and must be rebuilt (C(update-initramfs -u)).
  returned: always
  type: bool
  sample: true
initramfs_updated:
  description: Whether C(update-initramfs -u) ran.
  returned: always
  type: bool
  sample: false
"""

import os
import tempfile
from typing import Any

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.onprem.gpu_server.plugins.module_utils.blockdev.probe import BlockdevRunner
from ansible_collections.onprem.gpu_server.plugins.module_utils.mdadm.planner import (
    PENDING_UUID,
    PlanError,
    check_request,
    find_active,
    md_node,
    plan_array,
    plan_conf,
)
from ansible_collections.onprem.gpu_server.plugins.module_utils.mdadm.runner import MdadmRunner

ARGUMENT_SPEC: dict[str, Any] = {
    "name": {"type": "str", "required": True},
    "device": {"type": "path"},
    "level": {"type": "str", "choices": ["raid0", "raid1", "raid10"], "required": True},
    "devices": {"type": "list", "elements": "path", "required": True},
    "metadata": {"type": "str", "choices": ["1.0", "1.1", "1.2"], "default": "1.2"},
    "homehost": {"type": "str"},
    "bitmap": {"type": "str", "choices": ["auto", "internal", "none"], "default": "auto"},
    "chunk": {"type": "str"},
    "force": {"type": "bool", "default": False},
    "persist": {"type": "bool", "default": True},
    "config": {"type": "path", "default": "/etc/mdadm/mdadm.conf"},
    "update_initramfs": {"type": "bool", "default": False},
}


def read_state(runner: MdadmRunner) -> dict[str, Any]:
    mdstat = runner.mdstat()
    active = {}
    for md, info in mdstat["arrays"].items():
        if info["state"] == "active":
            active[md] = runner.detail(f"/dev/{md}")
    return {"mdstat": mdstat, "active": active}


def describe(request: dict[str, Any], md: str | None, detail: dict[str, Any], mdstat: dict[str, Any]) -> dict[str, Any]:
    info = mdstat["arrays"].get(md or "", {})
    return {"device": request["device"], "md_device": md, "uuid": detail.get("MD_UUID"),
            "name": detail.get("MD_NAME"), "level": detail.get("MD_LEVEL"), "metadata": detail.get("MD_METADATA"),
            "raid_devices": int(detail["MD_DEVICES"]) if str(detail.get("MD_DEVICES", "")).isdigit() else None,
            "members": detail.get("members", []), "state": info.get("state"),
            "active_devices": info.get("active_disks"), "map": info.get("map"),
            "degraded": bool(info.get("degraded")), "sync": info.get("sync")}


def write_conf(module: AnsibleModule, path: str, text: str) -> None:
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".mdadm.conf.", dir=directory)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(tmp, 0o644)
    module.atomic_move(tmp, path)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    request = dict(module.params)
    request["device"] = request["device"] or f"/dev/md/{request['name']}"
    runner, blk = MdadmRunner(module), BlockdevRunner(module)
    try:
        # Before any command: the name, the chunk, and each member listed once by its resolved node.
        check_request(request, {p: blk.resolve(p) for p in request["devices"] if p.startswith("/")})
    except PlanError as exc:
        module.fail_json(msg=str(exc))

    state = read_state(runner)
    paths = set(request["devices"]) | {m["dev"] for d in state["active"].values() for m in d["members"]}
    devices = {p: blk.resolve(p) for p in paths if p.startswith("/")}
    try:
        md, _detail = find_active(request, state["active"], devices)
        if md is None:
            state["examine"] = {d: runner.examine(d) for d in request["devices"]}
            state["probes"] = {d: blk.probe(d) for d in request["devices"]}
        plan = plan_array(request, state, devices)
    except PlanError as exc:
        module.fail_json(msg=str(exc))

    if not module.check_mode:
        for argv in plan.commands:
            runner.run(argv)
    for warning in plan.warnings:
        module.warn(warning)

    if plan.commands and not module.check_mode:
        state = read_state(runner)
        md = md_node(request["device"])
        detail = state["active"].get(md) or runner.detail(request["device"])
    elif plan.commands:
        md = None
        name = f"{request['homehost']}:{request['name']}" if request.get("homehost") else request["name"]
        detail = {"MD_UUID": plan.after.get("uuid") or PENDING_UUID, "MD_NAME": plan.after.get("name") or name,
                  "MD_LEVEL": request["level"], "MD_METADATA": request["metadata"],
                  "MD_DEVICES": str(len(request["devices"])),
                  "members": [{"dev": d, "role": str(i)} for i, d in enumerate(request["devices"])]}
    else:
        md = plan.md_device
        detail = state["active"][md]
    array = describe(request, md, detail, state["mdstat"])
    if array["degraded"] and not plan.warnings:
        module.warn(f"array {md} is degraded: {array['active_devices']} of {array['raid_devices']} devices active")

    conf_before = conf_after = ""
    conf_changed = False
    if request["persist"] and not detail.get("MD_UUID"):
        module.warn(f"mdadm --detail --export reported no UUID for {request['device']}; {request['config']} left as is")
    elif request["persist"]:
        try:
            with open(request["config"], encoding="utf-8") as handle:
                conf_before = handle.read()
        except FileNotFoundError:
            conf_before = ""
        new = plan_conf(conf_before, request["device"], detail)
        conf_after = new if new is not None else conf_before
        conf_changed = new is not None
        if conf_changed and not module.check_mode:
            write_conf(module, request["config"], conf_after)

    initramfs_updated = False
    if conf_changed and request["update_initramfs"] and not module.check_mode:
        runner.run(["update-initramfs", "-u"])
        initramfs_updated = True

    result: dict[str, Any] = {
        "changed": bool(plan.commands) or conf_changed,
        "action": plan.action,
        "commands": plan.commands,
        "array": array,
        "degraded": array["degraded"],
        "mdadm_conf_changed": conf_changed,
        "initramfs_update_required": conf_changed and not initramfs_updated,
        "initramfs_updated": initramfs_updated,
    }
    if module._diff:
        result["diff"] = [{"before": plan.before, "after": plan.after},
                          {"before": conf_before, "after": conf_after,
                           "before_header": request["config"], "after_header": request["config"]}]
    module.exit_json(**result)


if __name__ == "__main__":
    main()
