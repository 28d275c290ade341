# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The systemd ``.link`` file that makes NIC settings survive a reboot.

udev's ``net_setup_link`` builtin applies the FIRST ``.link`` file (in lexical order over
/etc, /run, /usr/lib) whose ``[Match]`` fits a device when the device is added, with or
without systemd-networkd. A file that matches a NIC therefore replaces ``99-default.link`` for
it: the naming policies of that file are copied into ours, or the interface could get another
name at the next boot. Keys are those of systemd 252 (Debian 12), the oldest systemd targeted.
"""

from __future__ import annotations

from typing import Any

RING_KEYS = {"rx": "RxBufferSize", "tx": "TxBufferSize", "rx-mini": "RxMiniBufferSize",
             "rx-jumbo": "RxJumboBufferSize"}
CHANNEL_KEYS = {"rx": "RxChannels", "tx": "TxChannels", "other": "OtherChannels", "combined": "CombinedChannels"}
# ethtool -c name -> (.link key, unit): "us" values are time spans, "s" seconds, "" plain numbers/booleans.
COALESCE_KEYS = {
    "adaptive-rx": ("UseAdaptiveRxCoalesce", ""), "adaptive-tx": ("UseAdaptiveTxCoalesce", ""),
    "rx-usecs": ("RxCoalesceSec", "us"), "rx-usecs-irq": ("RxCoalesceIrqSec", "us"),
    "rx-usecs-low": ("RxCoalesceLowSec", "us"), "rx-usecs-high": ("RxCoalesceHighSec", "us"),
    "tx-usecs": ("TxCoalesceSec", "us"), "tx-usecs-irq": ("TxCoalesceIrqSec", "us"),
    "tx-usecs-low": ("TxCoalesceLowSec", "us"), "tx-usecs-high": ("TxCoalesceHighSec", "us"),
    "rx-frames": ("RxMaxCoalescedFrames", ""), "rx-frames-irq": ("RxMaxCoalescedIrqFrames", ""),
    "rx-frame-low": ("RxMaxCoalescedLowFrames", ""), "rx-frame-high": ("RxMaxCoalescedHighFrames", ""),
    "tx-frames": ("TxMaxCoalescedFrames", ""), "tx-frames-irq": ("TxMaxCoalescedIrqFrames", ""),
    "tx-frame-low": ("TxMaxCoalescedLowFrames", ""), "tx-frame-high": ("TxMaxCoalescedHighFrames", ""),
    "stats-block-usecs": ("StatisticsBlockCoalesceSec", "us"),
    "pkt-rate-low": ("CoalescePacketRateLow", ""), "pkt-rate-high": ("CoalescePacketRateHigh", ""),
    "sample-interval": ("CoalescePacketRateSampleIntervalSec", "s"),
}
# ethtool -k names whose .link key switches exactly the same kernel feature bits as ethtool -K does.
# tcp-segmentation-offload is not here: ethtool switches four TSO bits, TCPSegmentationOffload= one.
FEATURE_KEYS = {
    "rx-checksumming": "ReceiveChecksumOffload",
    "tx-checksumming": "TransmitChecksumOffload",
    "generic-segmentation-offload": "GenericSegmentationOffload",
    "generic-receive-offload": "GenericReceiveOffload",
    "rx-gro-hw": "GenericReceiveOffloadHardware",
    "large-receive-offload": "LargeReceiveOffload",
    "rx-vlan-offload": "ReceiveVLANCTAGHardwareAcceleration",
    "tx-vlan-offload": "TransmitVLANCTAGHardwareAcceleration",
    "rx-vlan-filter": "ReceiveVLANCTAGFilter",
    "tx-vlan-stag-hw-insert": "TransmitVLANSTAGHardwareAcceleration",
    "ntuple-filters": "NTupleFilter",
    "tx-udp-segmentation": "UDPSegmentationOffload",
}
# Used when no 99-default.link can be read: the policies systemd 252 ships.
DEFAULT_POLICIES = {"NamePolicy": "keep kernel database onboard slot path",
                    "AlternativeNamesPolicy": "database onboard slot path",
                    "MACAddressPolicy": "persistent"}
TUNING_KEYS = ({"MTUBytes"} | set(RING_KEYS.values()) | set(CHANNEL_KEYS.values())
               | {key for key, _unit in COALESCE_KEYS.values()} | set(FEATURE_KEYS.values()))


def link_section(text: str) -> dict[str, str]:
    """``[Link]`` assignments of a .link file (last one wins, comments and other sections skipped)."""
    section = ""
    result: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        if section == "Link" and "=" in line:
            key, _sep, value = line.partition("=")
            result[key.strip()] = value.strip()
    return result


def naming_policies(default_link_text: str | None) -> dict[str, str]:
    """The non-tuning ``[Link]`` keys of the default .link file (naming and MAC policies) to carry over."""
    if default_link_text is None:
        return dict(DEFAULT_POLICIES)
    keys = link_section(default_link_text)
    return {key: value for key, value in keys.items() if key not in TUNING_KEYS}


def _boolean(value: bool) -> str:
    return "yes" if value else "no"


def link_assignments(want: dict[str, Any]) -> tuple[list[tuple[str, str]], list[str]]:
    """(.link key, value) pairs for ``want`` and the wanted keys a .link file cannot express."""
    pairs: list[tuple[str, str]] = []
    missing: list[str] = []
    if want.get("mtu") is not None:
        pairs.append(("MTUBytes", str(want["mtu"])))
    for section, table in (("channels", CHANNEL_KEYS), ("rings", RING_KEYS)):
        for key, value in sorted((want.get(section) or {}).items()):
            if key in table:
                pairs.append((table[key], str(value)))
            else:
                missing.append(f"{section} {key}")
    for key, value in sorted((want.get("coalesce") or {}).items()):
        if key not in COALESCE_KEYS:
            missing.append(f"coalesce {key}")
            continue
        name, unit = COALESCE_KEYS[key]
        pairs.append((name, _boolean(value) if isinstance(value, bool) else f"{value}{unit}"))
    for key, value in sorted((want.get("features") or {}).items()):
        if key in FEATURE_KEYS:
            pairs.append((FEATURE_KEYS[key], _boolean(value)))
        else:
            missing.append(f"features {key}")
    return pairs, missing


def render_link(permanent_mac: str, want: dict[str, Any], policies: dict[str, str], comment: str = "",
                describe: str = "") -> tuple[str, list[str]]:
    """The .link file's text and the wanted keys it cannot persist.

    It matches on the permanent MAC: VLANs, bridges and bonds that take the NIC's MAC have none of
    their own, and a bond port keeps its permanent MAC while its current one changes.
    """
    pairs, missing = link_assignments(want)
    lines = [line for line in comment.splitlines() if line.strip()]
    lines += [
        f"# NIC tuning{' for ' + describe if describe else ''}.",
        "# Only the first .link file that matches a device applies, so this file repeats the",
        "# naming and MAC policies of 99-default.link: the interface keeps its name.",
        "[Match]",
        f"PermanentMACAddress={permanent_mac}",
        "",
        "[Link]",
    ]
    lines += [f"{key}={value}" for key, value in policies.items()]
    lines += [f"{key}={value}" for key, value in pairs]
    return "\n".join(lines) + "\n", missing
