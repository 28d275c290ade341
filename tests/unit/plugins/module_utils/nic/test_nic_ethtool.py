"""ethtool/ip parsers against output recorded on the lab VM (tests/unit/fixtures/ethtool/SOURCES.md)."""

from __future__ import annotations

import pytest
from fixtures.recorded import reader

from ansible_collections.onprem.gpu_server.plugins.module_utils.nic import ethtool

read = reader("ethtool")


def test_rings_e1000e():
    assert ethtool.parse_rings(read("labvm_e1000e_ethtool-g.txt")) == {
        "max": {"rx": 4096, "rx-mini": None, "rx-jumbo": None, "tx": 4096},
        "current": {"rx": 256, "rx-mini": None, "rx-jumbo": None, "tx": 256},
    }
    assert ethtool.parse_rings(read("labvm_e1000e_ethtool-g_rx1024-tx512.txt"))["current"]["tx"] == 512


def test_rings_virtio_max_equals_current():
    rings = ethtool.parse_rings(read("labvm_virtio_ethtool-g.txt"))
    assert rings["max"]["rx"] == rings["current"]["rx"] == 256


def test_channels_virtio():
    assert ethtool.parse_channels(read("labvm_virtio_ethtool-l.txt")) == {
        "max": {"rx": None, "tx": None, "other": None, "combined": 1},
        "current": {"rx": None, "tx": None, "other": None, "combined": 1},
    }


def test_coalesce_e1000e_only_rx_usecs():
    coalesce = ethtool.parse_coalesce(read("labvm_e1000e_ethtool-c.txt"))
    assert coalesce["rx-usecs"] == 3
    assert coalesce["adaptive-rx"] is None and coalesce["cqe-mode-tx"] is None
    assert {k for k, v in coalesce.items() if v is not None} == {"rx-usecs"}
    assert ethtool.parse_coalesce(read("labvm_e1000e_ethtool-c_rx-usecs50.txt"))["rx-usecs"] == 50


def test_coalesce_virtio():
    coalesce = ethtool.parse_coalesce(read("labvm_virtio_ethtool-c.txt"))
    assert (coalesce["rx-usecs"], coalesce["rx-frames"], coalesce["tx-frames"]) == (0, 1, 1)


def test_features_e1000e():
    features = ethtool.parse_features(read("labvm_e1000e_ethtool-k.txt"))
    assert features["generic-receive-offload"] == {"on": True, "fixed": False}
    assert features["large-receive-offload"] == {"on": False, "fixed": True}
    # Indented sub-features are kept under their own names.
    assert features["tx-checksum-ip-generic"] == {"on": True, "fixed": False}
    assert features["highdma"] == {"on": True, "fixed": True}
    assert len(features) > 60


def test_features_requested_marker():
    text = "Features for x:\ntcp-segmentation-offload: off [requested on]\n"
    assert ethtool.parse_features(text) == {"tcp-segmentation-offload": {"on": False, "fixed": False}}


def test_ip_links_and_selection():
    links = ethtool.parse_ip_links(read("labvm_all_ip-j-d-link.json"))
    spare = ethtool.select_link(links, mac="52-54-00-4C-AB-11")
    assert (spare["ifname"], spare["max_mtu"], spare["min_mtu"], spare["parentdev"]) == ("eth0", 9212, 68,
                                                                                         "0000:00:08.0")
    assert spare["altnames"] == ["enp0s8"]
    assert ethtool.select_link(links, name="enp0s8")["ifname"] == "eth0"
    assert ethtool.select_link(links, mac="52:54:00:4c:ab:01")["ifname"] == "eth2"


def test_mac_match_skips_devices_without_a_bus():
    links = ethtool.parse_ip_links(read("labvm_all_ip-j-d-link.json"))
    # A VLAN on eth0 carries eth0's MAC but has no parent bus device.
    vlan = {**links[1], "ifname": "eth0.20", "parentbus": None, "parentdev": None, "altnames": []}
    assert ethtool.select_link([*links, vlan], mac="52:54:00:4c:ab:11")["ifname"] == "eth0"
    with pytest.raises(LookupError, match="no interface with MAC 52:54:00:4c:ab:99"):
        ethtool.select_link(links, mac="52:54:00:4c:ab:99")
    with pytest.raises(LookupError, match="several interfaces: eth0, eth9"):
        ethtool.select_link([*links, {**links[1], "ifname": "eth9"}], mac="52:54:00:4c:ab:11")


def test_bond_port_found_by_permanent_mac():
    links = ethtool.parse_ip_links(read("labvm_all_ip-j-d-link.json"))
    port = {**links[2], "address": "52:54:00:4c:ab:11", "permaddr": "52:54:00:4c:ab:12"}
    assert ethtool.select_link([links[1], port], mac="52:54:00:4c:ab:12")["ifname"] == "eth1"


def test_driver():
    assert ethtool.parse_driver(read("labvm_e1000e_ethtool-i.txt")) == "e1000e"
    with pytest.raises(ethtool.ParseError):
        ethtool.parse_driver(read("labvm_e1000e_ethtool-g.txt"))


def test_permanent_address():
    assert ethtool.parse_permanent_address("Permanent address: 52:54:00:4C:AB:11\n") == "52:54:00:4c:ab:11"
    assert ethtool.parse_permanent_address("Permanent address: 00:00:00:00:00:00\n") is None


@pytest.mark.parametrize("parser, name", [
    (ethtool.parse_rings, "labvm_e1000e_ethtool-c.txt"),
    (ethtool.parse_coalesce, "labvm_e1000e_ethtool-g.txt"),
    (ethtool.parse_features, "labvm_e1000e_ethtool-g.txt"),
    (ethtool.parse_channels, "labvm_e1000e_ethtool-l_unsupported.txt"),
])
def test_wrong_output_is_refused(parser, name):
    with pytest.raises(ethtool.ParseError):
        parser(read(name))


def test_normalize_mac_refuses_garbage():
    with pytest.raises(ValueError, match="not a MAC address"):
        ethtool.normalize_mac("52:54:00:4c:ab")
