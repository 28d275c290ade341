"""The .link file: keys for systemd 252, naming policies carried from 99-default.link, what it cannot hold."""

from __future__ import annotations

from ansible_collections.onprem.gpu_server.plugins.module_utils.nic import linkfile

# /usr/lib/systemd/network/99-default.link of systemd 252.39-1~deb12u2 on the lab VM (comment lines dropped).
DEBIAN12_DEFAULT = """# SPDX-License-Identifier: MIT-0
[Match]
OriginalName=*

[Link]
NamePolicy=keep kernel database onboard slot path
AlternativeNamesPolicy=database onboard slot path
MACAddressPolicy=persistent
"""


def test_policies_are_copied_from_the_default_file():
    assert linkfile.naming_policies(DEBIAN12_DEFAULT) == {
        "NamePolicy": "keep kernel database onboard slot path",
        "AlternativeNamesPolicy": "database onboard slot path",
        "MACAddressPolicy": "persistent",
    }
    assert linkfile.naming_policies(None) == linkfile.DEFAULT_POLICIES
    # An operator's 99-default.link with a tuning key: only the policies are carried.
    assert linkfile.naming_policies(DEBIAN12_DEFAULT + "MTUBytes=9000\n")["MACAddressPolicy"] == "persistent"
    assert "MTUBytes" not in linkfile.naming_policies(DEBIAN12_DEFAULT + "MTUBytes=9000\n")


def test_lab_link_file():
    want = {"mtu": 9000, "rings": {"rx": 1024, "tx": 512}, "coalesce": {"rx-usecs": 50},
            "features": {"generic-receive-offload": False}}
    text, missing = linkfile.render_link("52:54:00:4c:ab:11", want, linkfile.naming_policies(DEBIAN12_DEFAULT),
                                         "#\n# Ansible managed\n#", "eth0 (0000:00:08.0)")
    assert missing == []
    assert text.splitlines()[:3] == ["#", "# Ansible managed", "#"]
    body = text[text.index("[Match]"):]
    assert body == ("[Match]\nPermanentMACAddress=52:54:00:4c:ab:11\n\n[Link]\n"
                    "NamePolicy=keep kernel database onboard slot path\n"
                    "AlternativeNamesPolicy=database onboard slot path\nMACAddressPolicy=persistent\n"
                    "MTUBytes=9000\nRxBufferSize=1024\nTxBufferSize=512\nRxCoalesceSec=50us\n"
                    "GenericReceiveOffload=no\n")


def test_keys_without_a_link_equivalent_are_reported():
    pairs, missing = linkfile.link_assignments({
        "channels": {"combined": 8}, "coalesce": {"adaptive-rx": True, "cqe-mode-rx": True, "sample-interval": 2},
        "features": {"tcp-segmentation-offload": False, "rx-gro-hw": True}})
    assert pairs == [("CombinedChannels", "8"), ("UseAdaptiveRxCoalesce", "yes"),
                     ("CoalescePacketRateSampleIntervalSec", "2s"), ("GenericReceiveOffloadHardware", "yes")]
    assert missing == ["coalesce cqe-mode-rx", "features tcp-segmentation-offload"]


def test_link_section_ignores_other_sections_and_comments():
    assert linkfile.link_section("[Match]\nName=x\n[Link]\n# c\n; d\nMTUBytes = 1500\n") == {"MTUBytes": "1500"}
