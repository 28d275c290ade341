# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Compare wanted NIC settings with what the driver reports and plan the commands for the difference.

Nothing here runs a command: ``plan_nic`` takes the parsed state and returns the changes (before/after
per key) and the argv lists that make them. Values above a pre-set maximum, parameters the driver
does not implement and fixed features are refused with a message naming the interface; nothing is
clamped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SECTIONS = ("mtu", "channels", "rings", "coalesce", "features")
# ethtool -C takes these as on/off; every other coalesce parameter is a number.
COALESCE_BOOLEANS = ("adaptive-rx", "adaptive-tx", "cqe-mode-rx", "cqe-mode-tx")
# No NIC takes an MTU outside these: 68 is the smallest an IPv4 host must take (RFC 791, the
# kernel's ETH_MIN_MTU), 65535 the largest IP packet (IP_MAX_MTU). The NIC's own min_mtu/max_mtu
# are checked once it is found.
MTU_MIN, MTU_MAX = 68, 65535


class PlanError(ValueError):
    """Wanted settings that this NIC cannot take; the message names the interface and the reason."""


@dataclass
class Plan:
    """What differs, as ``{section: {key: {"before": x, "after": y}}}``, and the commands to apply it."""

    changes: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    commands: list[list[str]] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.commands)


def check_want(want: dict[str, Any]) -> None:
    """Refuse values no NIC takes, naming the option; runs before the NIC is looked up.

    ``want`` is shaped as for ``plan_nic``. The limits that depend on the NIC (pre-set
    maximums, min_mtu/max_mtu, what the driver implements) are ``plan_nic``'s.
    """
    mtu = want.get("mtu")
    if mtu is not None and (isinstance(mtu, bool) or not isinstance(mtu, int) or not MTU_MIN <= mtu <= MTU_MAX):
        raise PlanError(f"mtu: {mtu!r} is outside {MTU_MIN}-{MTU_MAX}")
    for section in ("rings", "channels", "coalesce"):
        for key, value in sorted((want.get(section) or {}).items()):
            if isinstance(value, int) and not isinstance(value, bool) and value < 0:
                raise PlanError(f"{section}.{key}: {value} must not be negative")


def _label(state: dict[str, Any]) -> str:
    mac = state.get("permanent_mac") or state["link"].get("address")
    return f"{state['link']['ifname']} ({mac})" if mac else state["link"]["ifname"]


def _on_off(value: bool) -> str:
    return "on" if value else "off"


def _plan_counts(section: str, flag: str, command: str, wanted: dict[str, int], parsed: dict[str, Any] | None,
                 who: str, plan: Plan) -> None:
    """Rings (-G) and channels (-L): numbers with a pre-set maximum each."""
    if not wanted:
        return
    if parsed is None:
        raise PlanError(f"{who}: the driver does not report {section} ({command} is not supported), "
                        f"so {', '.join(sorted(wanted))} cannot be set")
    diff: dict[str, dict[str, Any]] = {}
    for key, value in sorted(wanted.items()):
        if key not in parsed["max"]:
            raise PlanError(f"{who}: unknown {section} parameter {key!r}; known: {', '.join(sorted(parsed['max']))}")
        maximum, current = parsed["max"][key], parsed["current"][key]
        if maximum is None or current is None:
            raise PlanError(f"{who}: the driver does not implement {section} {key} ({command} shows n/a)")
        if value > maximum:
            raise PlanError(f"{who}: {section} {key} {value} is above the NIC's pre-set maximum {maximum} ({command})")
        if value < 0:
            raise PlanError(f"{who}: {section} {key} {value} must not be negative")
        if value != current:
            diff[key] = {"before": current, "after": value}
    if diff:
        plan.changes[section] = diff
        argv = ["ethtool", flag, "IFNAME"]
        for key, change in diff.items():
            argv += [key, str(change["after"])]
        plan.commands.append(argv)


def _plan_coalesce(wanted: dict[str, Any], parsed: dict[str, Any], who: str, plan: Plan) -> None:
    diff: dict[str, dict[str, Any]] = {}
    for key, value in sorted(wanted.items()):
        if key not in parsed:
            raise PlanError(f"{who}: unknown coalesce parameter {key!r} (not in ethtool -c output)")
        current = parsed[key]
        if current is None:
            raise PlanError(f"{who}: the driver does not implement coalesce {key} (ethtool -c shows n/a)")
        if key in COALESCE_BOOLEANS:
            if not isinstance(value, bool):
                raise PlanError(f"{who}: coalesce {key} must be true or false, not {value!r}")
        elif isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise PlanError(f"{who}: coalesce {key} must be a whole number >= 0, not {value!r}")
        if value != current:
            diff[key] = {"before": current, "after": value}
    if diff:
        plan.changes["coalesce"] = diff
        argv = ["ethtool", "-C", "IFNAME"]
        for key, change in diff.items():
            after = change["after"]
            argv += [key, _on_off(after) if isinstance(after, bool) else str(after)]
        plan.commands.append(argv)


def _plan_features(wanted: dict[str, bool], parsed: dict[str, dict[str, bool]], who: str, plan: Plan) -> None:
    diff: dict[str, dict[str, Any]] = {}
    for key, value in sorted(wanted.items()):
        if key not in parsed:
            raise PlanError(f"{who}: unknown feature {key!r} (not in ethtool -k output; use the names it prints)")
        current = parsed[key]
        if current["on"] == value:
            continue
        if current["fixed"]:
            raise PlanError(f"{who}: feature {key} is fixed {_on_off(current['on'])} by the driver")
        diff[key] = {"before": current["on"], "after": value}
    if diff:
        plan.changes["features"] = diff
        argv = ["ethtool", "-K", "IFNAME"]
        for key, change in diff.items():
            argv += [key, _on_off(change["after"])]
        plan.commands.append(argv)


def _plan_mtu(mtu: int | None, link: dict[str, Any], who: str, plan: Plan) -> None:
    if mtu is None:
        return
    low, high = link.get("min_mtu"), link.get("max_mtu")
    if high is not None and mtu > high:
        raise PlanError(f"{who}: mtu {mtu} is above the NIC's maximum {high} (ip -d link max_mtu)")
    if low is not None and mtu < low:
        raise PlanError(f"{who}: mtu {mtu} is below the NIC's minimum {low} (ip -d link min_mtu)")
    if mtu != link["mtu"]:
        plan.changes["mtu"] = {"mtu": {"before": link["mtu"], "after": mtu}}
        plan.commands.append(["ip", "link", "set", "dev", "IFNAME", "mtu", str(mtu)])


def plan_nic(want: dict[str, Any], state: dict[str, Any]) -> Plan:
    """The changes and commands that bring the NIC in ``state`` to ``want``.

    ``want`` has the optional keys mtu, channels, rings, coalesce, features; ``state`` has link
    (from ``parse_ip_links``), rings/channels (None when the driver does not support them),
    coalesce (None likewise), features and permanent_mac. Commands carry ``IFNAME`` where the
    interface name goes, so that a plan does not depend on the name it was made under.
    Order: MTU and channel changes may reset the device, so they come before the settings they could
    reset.
    """
    who = _label(state)
    plan = Plan()
    _plan_mtu(want.get("mtu"), state["link"], who, plan)
    _plan_counts("channels", "-L", "ethtool -l", want.get("channels") or {}, state.get("channels"), who, plan)
    _plan_counts("rings", "-G", "ethtool -g", want.get("rings") or {}, state.get("rings"), who, plan)
    coalesce = want.get("coalesce") or {}
    if coalesce:
        if state.get("coalesce") is None:
            raise PlanError(f"{who}: the driver does not report coalescing (ethtool -c is not supported)")
        _plan_coalesce(coalesce, state["coalesce"], who, plan)
    features = want.get("features") or {}
    if features:
        _plan_features(features, state["features"], who, plan)
    return plan


def bind(argv: list[str], ifname: str) -> list[str]:
    """A planned command with the interface name filled in."""
    return [ifname if arg == "IFNAME" else arg for arg in argv]


def current_values(want: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    """The NIC's present values for the keys in ``want`` (same shape), to report and to verify a change."""
    result: dict[str, Any] = {}
    if want.get("mtu") is not None:
        result["mtu"] = state["link"]["mtu"]
    for section in ("channels", "rings"):
        if want.get(section) and state.get(section):
            result[section] = {key: state[section]["current"].get(key) for key in want[section]}
    if want.get("coalesce") and state.get("coalesce") is not None:
        result["coalesce"] = {key: state["coalesce"].get(key) for key in want["coalesce"]}
    if want.get("features"):
        result["features"] = {key: state["features"].get(key, {}).get("on") for key in want["features"]}
    return result


def mismatches(want: dict[str, Any], state: dict[str, Any]) -> list[str]:
    """Wanted values the NIC does not show after the change (a driver that rounds or ignores a value)."""
    have = current_values(want, state)
    found = []
    for section in SECTIONS:
        if section == "mtu":
            if want.get("mtu") is not None and have.get("mtu") != want["mtu"]:
                found.append(f"mtu: wanted {want['mtu']}, the NIC shows {have.get('mtu')}")
            continue
        for key, value in sorted((want.get(section) or {}).items()):
            shown = (have.get(section) or {}).get(key)
            if shown != value:
                found.append(f"{section} {key}: wanted {value}, the NIC shows {shown}")
    return found
