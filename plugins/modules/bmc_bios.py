#!/usr/bin/python
# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: bmc_bios
short_description: BIOS attributes through Redfish, checked against the BMC's own attribute registry
version_added: 0.3.0
description:
  - Reads the BIOS attributes of a system through its BMC's Redfish service and the attribute registry the BIOS
    resource names (C(AttributeRegistry)), and compares them with O(attributes).
  - Every desired attribute is checked against that registry before anything is written - a name it does not
    have, a read-only attribute, a value outside its allowed values or bounds fails the task with every reason,
    and nothing is written. A BMC that publishes no registry gets its attribute names checked against the
    attributes its BIOS reports.
  - With O(apply=true) the attributes that differ are written to the BIOS's settings object (with
    C(@Redfish.SettingsApplyTime) C(OnReset) where the BMC supports it). Firmware reads its settings at POST, so a
    write sets RV(reboot_required); a value already waiting in the settings object is not written again and keeps
    RV(reboot_required) set until a reset makes it current. Without O(apply) the drift is reported and nothing is
    written.
  - community.general's C(redfish_config) writes BIOS attributes too, but has no check mode and does not check
    values against the registry (it drops unknown names with a warning).
author:
  - onprem.gpu_server maintainers (@onprem)
options:
  baseuri:
    description: The BMC's address (host or host:port); HTTPS.
    type: str
    required: true
  username:
    description: The BMC account.
    type: str
    required: true
  password:
    description: Its password.
    type: str
    required: true
  validate_certs:
    description: Verify the BMC's TLS certificate.
    type: bool
    default: true
  ca_path:
    description: A CA bundle (or the BMC's own certificate) to verify it with.
    type: path
  system_id:
    description: The system's Id (the last part of its URI). Default - the only member of C(/redfish/v1/Systems).
    type: str
  attributes:
    description: BIOS attribute names and their desired values, as the registry names them.
    type: dict
    required: true
  apply:
    description: Write the attributes that differ. Without it the drift is reported only.
    type: bool
    default: false
  timeout:
    description: Seconds for each request.
    type: int
    default: 30
attributes:
  check_mode:
    support: full
    description: Reads, validates and reports the drift as a change; writes nothing.
  diff_mode:
    support: full
    description: The attributes that would be written, before and after.
notes:
  - Runs where the BMC can be reached from, usually the controller (C(delegate_to)).
"""

EXAMPLES = r"""
- name: The trading server's BIOS settings, reported (nothing written)
  onprem.gpu_server.bmc_bios:
    baseuri: idrac-xc740xd.mgmt.example
    username: "{{ bmc_username }}"
    password: "{{ bmc_password }}"
    attributes:
      ProcVirtualization: Enabled
      SriovGlobalEnable: Enabled
      MmioAbove4Gb: Enabled
  delegate_to: localhost

- name: Written, pending the next reset
  onprem.gpu_server.bmc_bios:
    baseuri: idrac-xc740xd.mgmt.example
    username: "{{ bmc_username }}"
    password: "{{ bmc_password }}"
    attributes: {SysProfile: PerfOptimized}
    apply: true
  delegate_to: localhost
  register: bios
"""

RETURN = r"""
system:
  description: The system's URI.
  returned: always
  type: str
registry:
  description: The attribute registry's Id the values were checked against (null when the BMC publishes none).
  returned: always
  type: str
drift:
  description: The attributes that differed before the run, each with C(current) and C(desired).
  returned: always
  type: dict
applied:
  description: Whether attributes were written.
  returned: always
  type: bool
pending:
  description: Attributes waiting in the settings object for the next reset (the BIOS does not report them as current).
  returned: always
  type: dict
reboot_required:
  description: Whether a reset is needed for what was written, or is pending, to take effect.
  returned: always
  type: bool
"""

import json
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.urls import open_url

from ansible_collections.onprem.gpu_server.plugins.module_utils.redfish import bios


class Redfish:
    """A few authenticated JSON requests against one BMC."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.base = "https://" + module.params["baseuri"].rstrip("/")

    def request(self, path: str, method: str = "GET", body: dict[str, Any] | None = None) -> Any:
        params = self.module.params
        try:
            reply = open_url(
                self.base + path,
                method=method,
                data=json.dumps(body) if body is not None else None,
                headers={"Content-Type": "application/json", "Accept": "application/json"},
                url_username=params["username"],
                url_password=params["password"],
                force_basic_auth=True,
                validate_certs=params["validate_certs"],
                ca_path=params["ca_path"],
                timeout=params["timeout"],
            )
            text = reply.read()
        except HTTPError as err:
            detail = err.read().decode(errors="replace")[:500] if hasattr(err, "read") else ""
            self.module.fail_json(msg=f"{method} {path}: HTTP {err.code} {err.reason}: {detail}".strip())
        except (URLError, OSError) as err:
            self.module.fail_json(msg=f"{method} {path}: {err}")
        return json.loads(text) if text else {}

    def system(self, system_id: str | None) -> str:
        members = [m["@odata.id"] for m in self.request("/redfish/v1/Systems").get("Members", [])]
        if system_id:
            found = [m for m in members if m.rstrip("/").rsplit("/", 1)[-1] == system_id]
            if not found:
                self.module.fail_json(msg=f"no system {system_id} among {members}")
            return found[0]
        if len(members) != 1:
            self.module.fail_json(msg=f"the BMC has {len(members)} systems ({members}): name one with system_id")
        return members[0]

    def registry(self, registry_id: str | None) -> dict[str, Any] | None:
        """The attribute registry with this Id, from the registry files the BMC lists (None if it has none)."""
        if not registry_id:
            return None
        files = [m["@odata.id"] for m in self.request("/redfish/v1/Registries").get("Members", [])]
        # Only the BIOS registry's file: a BMC lists many message registries beside it.
        wanted = registry_id.lower()
        for uri in [f for f in files if "bios" in f.lower() or f.rstrip("/").rsplit("/", 1)[-1].lower() == wanted]:
            record = self.request(uri)
            for location in record.get("Location") or []:
                if not location.get("Uri"):
                    continue
                registry = self.request(location["Uri"])
                if registry_id in (registry.get("Id"), record.get("Id")):
                    return registry
        return None


def run_module() -> None:
    module = AnsibleModule(
        argument_spec={
            "baseuri": {"type": "str", "required": True},
            "username": {"type": "str", "required": True},
            "password": {"type": "str", "required": True, "no_log": True},
            "validate_certs": {"type": "bool", "default": True},
            "ca_path": {"type": "path"},
            "system_id": {"type": "str"},
            "attributes": {"type": "dict", "required": True},
            "apply": {"type": "bool", "default": False},
            "timeout": {"type": "int", "default": 30},
        },
        supports_check_mode=True,
    )
    desired = module.params["attributes"]
    bmc = Redfish(module)
    system = bmc.system(module.params["system_id"])
    system_record = bmc.request(system)
    bios_uri = (system_record.get("Bios") or {}).get("@odata.id") or system + "/Bios"
    resource = bmc.request(bios_uri)
    current = resource.get("Attributes") or {}
    registry_id = resource.get("AttributeRegistry")
    registry = bmc.registry(registry_id)
    if registry is None and registry_id:
        module.warn(f"the BMC names attribute registry {registry_id} but publishes none: only names are checked")
    result: dict[str, Any] = {
        "system": system,
        "registry": registry.get("Id") if registry else None,
        "applied": False,
        "pending": {},
        "reboot_required": False,
    }
    errors = bios.validate(desired, registry, current, registry_id)
    if errors:
        module.fail_json(msg=f"BIOS attributes refused, nothing written ({system}): " + "; ".join(errors), **result)
    changes = bios.drift(desired, current, registry)
    settings = resource.get("@Redfish.Settings") or {}
    target = (settings.get("SettingsObject") or {}).get("@odata.id") or bios_uri + "/Settings"
    # Values already waiting in the settings object for the next reset are not written again.
    waiting = bmc.request(target).get("Attributes") or {} if changes else {}
    pending_before = {
        name: change for name, change in changes.items() if not bios.drift({name: desired[name]}, waiting, registry)
    }
    to_write = {name: desired[name] for name in changes if name not in pending_before}
    result["drift"] = changes
    result["pending"] = pending_before
    result["reboot_required"] = bool(pending_before)
    result["changed"] = bool(to_write) and (module.check_mode or module.params["apply"])
    result["diff"] = {
        "before": {name: changes[name]["current"] for name in to_write},
        "after": dict(to_write),
    }
    if not to_write or module.check_mode or not module.params["apply"]:
        module.exit_json(**result)

    body: dict[str, Any] = {"Attributes": bios.payload(to_write, registry)}
    if "OnReset" in (settings.get("SupportedApplyTimes") or []):
        body["@Redfish.SettingsApplyTime"] = {"ApplyTime": "OnReset"}
    bmc.request(target, method="PATCH", body=body)
    after = bmc.request(bios_uri).get("Attributes") or {}
    # Firmware reads BIOS settings at POST: whatever was written takes effect at the next reset, whether the BMC
    # shows it as current already (an emulator) or keeps it pending (an iDRAC's configuration job).
    result.update(
        applied=True,
        pending={**pending_before, **bios.drift(to_write, after, registry)},
        reboot_required=True,
    )
    module.exit_json(**result)


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()
