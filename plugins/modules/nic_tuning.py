#!/usr/bin/python
# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: nic_tuning
short_description: Set a NIC's rings, channels, coalescing, offloads and MTU and keep them across reboots
version_added: 0.1.0
description:
  - Finds the NIC by O(mac) (the permanent or current MAC of an interface on a bus device) or by O(name).
  - Reads the present values with C(ethtool -g/-l/-c/-k/-P) and C(ip -j -d link), changes only what differs
    (C(ethtool -G/-L/-C/-K), C(ip link set mtu)) and reads the NIC again to check that the driver took each value.
  - Refuses, before changing anything, a ring or channel count above the NIC's pre-set maximum, an MTU outside
    the NIC's C(min_mtu)/C(max_mtu), a parameter the driver does not implement (C(n/a)) and a fixed feature.
    Nothing is clamped.
  - With O(persist=true) writes a systemd C(.link) file matching the NIC's permanent MAC, which udev applies
    whenever the device appears (at boot, with or without systemd-networkd). The file repeats the naming and MAC
    policies of C(99-default.link), because only the first matching C(.link) file applies to a device.
  - Refuses to persist when another C(.link) file (not C(99-default.link), not O(link_path)) configures the NIC,
    since the new file would silently replace it.
  - Settings a C(.link) file cannot express are applied at runtime only, listed in RV(not_persisted) and warned
    about.
  - See C(docs/nic-tuning.md) in the collection.
author:
  - onprem.gpu_server maintainers (@onprem)
options:
  mac:
    description: MAC address of the NIC (its permanent MAC, or the current one). Preferred; names can change.
    type: str
  name:
    description: Interface name (or alternative name) of the NIC.
    type: str
  driver:
    description:
      - The driver the NIC must have (as C(ethtool -i) names it, e.g. V(ixgbe), V(mlx5_core), V(igb)); a NIC
        with another driver is refused before anything changes. Guards a driver-specific profile.
    type: str
  mtu:
    description:
      - MTU in bytes, 68 to 65535; a value outside is refused before the NIC is looked up, and one outside the
        NIC's own C(min_mtu)/C(max_mtu) before anything changes.
    type: int
  rings:
    description: Ring sizes, keyed as C(ethtool -G) takes them (V(rx), V(tx), V(rx-mini), V(rx-jumbo)).
    type: dict
    default: {}
  channels:
    description: Channel counts, keyed as C(ethtool -L) takes them (V(rx), V(tx), V(other), V(combined)).
    type: dict
    default: {}
  coalesce:
    description:
      - Interrupt coalescing, keyed as C(ethtool -c) prints them (V(rx-usecs), V(tx-frames), ...); V(adaptive-rx),
        V(adaptive-tx) take booleans, the rest whole numbers.
    type: dict
    default: {}
  features:
    description: Offloads and other features, keyed as C(ethtool -k) prints them, with boolean values.
    type: dict
    default: {}
  persist:
    description: Write the settings into O(link_path) so that udev applies them at every boot.
    type: bool
    default: true
  link_path:
    description: The C(.link) file; by default C(/etc/systemd/network/10-onprem-nic-<mac with dashes>.link).
    type: path
  link_comment:
    description: Comment lines put at the top of the C(.link) file (for example C(ansible_managed | comment)).
    type: str
    default: ''
attributes:
  check_mode:
    support: full
    description: Reads the NIC only; reports the changes and the C(.link) file that would be written.
  diff_mode:
    support: full
    description: The changed settings before/after and the C(.link) file before/after.
  platform:
    support: full
    platforms: posix
    description: Linux with ethtool, iproute2 and (for the conflict check) udevadm.
requirements:
  - ethtool
  - iproute2
notes:
  - With O(persist=true) on Debian, the initramfs holds copies of the C(.link) files (initramfs-tools' udev
    hook); RV(initramfs_update_required) says when it should be rebuilt (C(update-initramfs -u)).
  - A systemd-networkd C(.network) file with C(MTUBytes=) for the same NIC overrides the MTU set here.
  - IRQ affinity is not managed by this module.
"""

EXAMPLES = r"""
- name: Tune the spare NIC (found by MAC) and keep the settings across reboots
  onprem.gpu_server.nic_tuning:
    mac: "52:54:00:4c:ab:11"
    driver: e1000e
    mtu: 9000
    rings: {rx: 1024, tx: 512}
    coalesce: {rx-usecs: 50}
    features: {generic-receive-offload: false}
  register: spare_nic

- name: Runtime only, by name (coalescing for a test, gone at the next boot)
  onprem.gpu_server.nic_tuning:
    name: eth0
    coalesce: {rx-usecs: 50}
    persist: false
"""

RETURN = r"""
interface:
  description: The interface name the NIC has now.
  returned: always
  type: str
  sample: eth0
driver:
  description: The NIC's driver (C(ethtool -i)).
  returned: always
  type: str
  sample: e1000e
mac:
  description: The NIC's permanent MAC (the current one when the device has no permanent MAC).
  returned: always
  type: str
  sample: "52:54:00:4c:ab:11"
changes:
  description: What differed, per section and key, before and after (in check mode, what would change).
  returned: always
  type: dict
  sample: {"rings": {"rx": {"before": 256, "after": 1024}}, "mtu": {"mtu": {"before": 1500, "after": 9000}}}
commands:
  description: Commands that changed (or would change) the NIC.
  returned: always
  type: list
  elements: list
  sample: [["ethtool", "-G", "eth0", "rx", "1024"]]
current:
  description: The NIC's values for the requested keys after the run (in check mode, as predicted).
  returned: always
  type: dict
link_file:
  description: The C(.link) file path (null with O(persist=false)).
  returned: always
  type: str
  sample: /etc/systemd/network/10-onprem-nic-52-54-00-4c-ab-11.link
link_file_changed:
  description: Whether the C(.link) file was (or would be) written.
  returned: always
  type: bool
not_persisted:
  description: Requested settings a C(.link) file cannot express (applied at runtime only).
  returned: always
  type: list
  elements: str
  sample: ["features tcp-segmentation-offload"]
initramfs_update_required:
  description: The C(.link) file changed and the initramfs carries copies of C(.link) files.
  returned: always
  type: bool
"""

import os
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.onprem.gpu_server.plugins.module_utils.host import files as hostfiles
from ansible_collections.onprem.gpu_server.plugins.module_utils.nic import ethtool, linkfile
from ansible_collections.onprem.gpu_server.plugins.module_utils.nic.planner import (
    COALESCE_BOOLEANS,
    PlanError,
    bind,
    check_want,
    current_values,
    mismatches,
    plan_nic,
)
from ansible_collections.onprem.gpu_server.plugins.module_utils.nic.runner import NicRunner
from ansible_collections.onprem.gpu_server.plugins.module_utils.tool_runner import CommandFailed

# Everything is read and written below ROOT; tests point it at a temporary tree.
ROOT = "/"
LINK_DIR = "/etc/systemd/network"
# Where udev looks for 99-default.link, in its order of precedence.
DEFAULT_LINKS = ["/etc/systemd/network/99-default.link", "/run/systemd/network/99-default.link",
                 "/usr/lib/systemd/network/99-default.link", "/lib/systemd/network/99-default.link"]
# initramfs-tools' udev hook copies /etc/systemd/network/*.link into the initramfs.
INITRAMFS_UDEV_HOOK = "/usr/share/initramfs-tools/hooks/udev"

ARGUMENT_SPEC: dict[str, Any] = {
    "mac": {"type": "str"},
    "name": {"type": "str"},
    "driver": {"type": "str"},
    "mtu": {"type": "int"},
    "rings": {"type": "dict", "default": {}},
    "channels": {"type": "dict", "default": {}},
    "coalesce": {"type": "dict", "default": {}},
    "features": {"type": "dict", "default": {}},
    "persist": {"type": "bool", "default": True},
    "link_path": {"type": "path"},
    "link_comment": {"type": "str", "default": ""},
}


def _whole(option: str, key: str, value: Any) -> int:
    if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and value.isdigit())):
        raise ValueError(f"{option}.{key}: {value!r} is not a whole number")
    return int(value)


def normalize_want(params: dict[str, Any]) -> dict[str, Any]:
    """The requested settings with typed values, checked against what any NIC takes (``check_want``).

    ValueError names the option and key; nothing has been looked up or run yet.
    """
    want: dict[str, Any] = {"mtu": params.get("mtu")}
    for section in ("rings", "channels"):
        want[section] = {str(k): _whole(section, k, v) for k, v in (params.get(section) or {}).items()}
    coalesce = {}
    for key, value in (params.get("coalesce") or {}).items():
        if key in COALESCE_BOOLEANS:
            try:
                coalesce[key] = boolean(value, strict=True)
            except TypeError:
                raise ValueError(f"coalesce.{key}: {value!r} is not a boolean") from None
        else:
            coalesce[key] = _whole("coalesce", key, value)
    want["coalesce"] = coalesce
    features = {}
    for key, value in (params.get("features") or {}).items():
        try:
            features[key] = boolean(value, strict=True)
        except TypeError:
            raise ValueError(f"features.{key}: {value!r} is not a boolean") from None
    want["features"] = features
    check_want(want)
    return want


def _text(values: dict[str, Any]) -> str:
    lines = []
    for section in sorted(values):
        entry = values[section]
        if isinstance(entry, dict):
            lines += [f"{section}.{key}: {value}" for key, value in sorted(entry.items())]
        else:
            lines.append(f"{section}: {entry}")
    return "\n".join(lines) + ("\n" if lines else "")


def predicted(want: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    have = current_values(want, state)
    for section, value in want.items():
        if section == "mtu":
            if value is not None:
                have["mtu"] = value
        elif value:
            have.setdefault(section, {}).update(value)
    return have


def default_link_text() -> str | None:
    for path in DEFAULT_LINKS:
        text = hostfiles.read_text(ROOT, path)
        if text is not None:
            return text
    return None


def describe(state: dict[str, Any]) -> str:
    """What the .link file is for, without the interface name: that may differ at the next boot."""
    return f"the {state['driver']} NIC at {state['link'].get('parentdev') or 'an unknown bus address'}"


def check_link_owner(props: dict[str, str], link_path: str, name: str) -> None:
    """Refuse when a .link file other than ours or 99-default.link configures the NIC now."""
    applied = props.get("ID_NET_LINK_FILE")
    if not applied or applied == link_path or os.path.basename(applied) == "99-default.link":
        return
    raise PlanError(f"{name}: {applied} configures this NIC; only the first matching .link file applies, so "
                    f"{link_path} would replace it and drop its settings. Merge them into one file and pass its "
                    "path as link_path, or set persist=false")


def run_module() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True,
                           mutually_exclusive=[("mac", "name")], required_one_of=[("mac", "name")])
    params = module.params
    try:
        want = normalize_want(params)
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    runner = NicRunner(module)
    try:
        link = ethtool.select_link(runner.links(), name=params["name"], mac=params["mac"])
        state = runner.state(link)
    except (LookupError, ValueError, CommandFailed) as exc:
        module.fail_json(msg=str(exc))
    name = link["ifname"]
    mac = state["permanent_mac"] or link["address"]

    if params["driver"] and params["driver"] != state["driver"]:
        module.fail_json(msg=f"{name} ({mac}): the driver is {state['driver']}, not {params['driver']} as requested",
                         interface=name, mac=mac)
    result: dict[str, Any] = {"changed": False, "interface": name, "mac": mac, "driver": state["driver"],
                              "commands": [],
                              "link_file": None, "link_file_changed": False, "not_persisted": [],
                              "initramfs_update_required": False}
    try:
        plan = plan_nic(want, state)
        link_before = link_after = None
        if params["persist"]:
            if not state["permanent_mac"]:
                raise PlanError(f"{name}: the device has no permanent MAC for a .link file to match; "
                                "set persist=false")
            link_path = params["link_path"] or f"{LINK_DIR}/10-onprem-nic-{mac.replace(':', '-')}.link"
            check_link_owner(runner.udev_properties(name), link_path, name)
            policies = linkfile.naming_policies(default_link_text())
            link_after, missing = linkfile.render_link(mac, want, policies, params["link_comment"],
                                                       describe(state))
            link_before = hostfiles.read_text(ROOT, link_path)
            result.update(link_file=link_path, link_file_changed=link_before != link_after, not_persisted=missing)
    except PlanError as exc:
        module.fail_json(msg=str(exc), interface=name, mac=mac)

    commands = [bind(argv, name) for argv in plan.commands]
    result["changes"] = plan.changes
    result["commands"] = commands
    if result["link_file_changed"]:
        result["initramfs_update_required"] = os.path.exists(hostfiles.host_path(ROOT, INITRAMFS_UDEV_HOOK))
    result["changed"] = plan.changed or result["link_file_changed"]

    if not module.check_mode:
        try:
            for argv in commands:
                runner.run(argv)
            if commands:
                state = runner.state(ethtool.select_link(runner.links(), name=name))
        except (LookupError, ValueError, CommandFailed) as exc:
            module.fail_json(msg=str(exc), **result)
        wrong = mismatches(want, state)
        if wrong:
            module.fail_json(msg=f"{name}: the driver did not take every value: {'; '.join(wrong)}", **result)
        if result["link_file_changed"]:
            hostfiles.write_text(module, ROOT, result["link_file"], link_after or "")
        result["current"] = current_values(want, state)
    else:
        result["current"] = predicted(want, state)

    for item in result["not_persisted"]:
        module.warn(f"{name}: {item} is applied now but a .link file cannot keep it across reboots")
    if module._diff and result["changed"]:
        before = {s: {k: c["before"] for k, c in keys.items()} for s, keys in plan.changes.items()}
        after = {s: {k: c["after"] for k, c in keys.items()} for s, keys in plan.changes.items()}
        diff = [{"before_header": f"{name} (live)", "after_header": f"{name} (live)",
                 "before": _text(before), "after": _text(after)}]
        if result["link_file_changed"]:
            diff.append(hostfiles.file_diff(result["link_file"], link_before, link_after))
        result["diff"] = diff
    module.exit_json(**result)


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()
