"""plan_nic: wanted settings against recorded lab state, and against spec-NIC maxima (constructed, see below)."""

from __future__ import annotations

import copy

import pytest
from fixtures.recorded import reader

from ansible_collections.onprem.gpu_server.plugins.module_utils.nic import ethtool
from ansible_collections.onprem.gpu_server.plugins.module_utils.nic.planner import (
    PlanError,
    bind,
    current_values,
    mismatches,
    plan_nic,
)

read = reader("ethtool")


def e1000e_state():
    """The spare lab NIC as recorded: e1000e, no channel support (ethtool -l fails)."""
    return {
        "link": ethtool.parse_ip_links(read("labvm_e1000e_ip-j-d-link.json"))[0],
        "permanent_mac": "52:54:00:4c:ab:11",
        "rings": ethtool.parse_rings(read("labvm_e1000e_ethtool-g.txt")),
        "channels": None,
        "coalesce": ethtool.parse_coalesce(read("labvm_e1000e_ethtool-c.txt")),
        "features": ethtool.parse_features(read("labvm_e1000e_ethtool-k.txt")),
    }


def virtio_state():
    state = e1000e_state()
    state.update(rings=ethtool.parse_rings(read("labvm_virtio_ethtool-g.txt")),
                 channels=ethtool.parse_channels(read("labvm_virtio_ethtool-l.txt")),
                 coalesce=ethtool.parse_coalesce(read("labvm_virtio_ethtool-c.txt")))
    return state


LAB_WANT = {"mtu": 9000, "rings": {"rx": 1024, "tx": 512}, "coalesce": {"rx-usecs": 50},
            "features": {"generic-receive-offload": False}}


def test_lab_values_plan_one_command_per_tool():
    plan = plan_nic(LAB_WANT, e1000e_state())
    assert [bind(argv, "eth0") for argv in plan.commands] == [
        ["ip", "link", "set", "dev", "eth0", "mtu", "9000"],
        ["ethtool", "-G", "eth0", "rx", "1024", "tx", "512"],
        ["ethtool", "-C", "eth0", "rx-usecs", "50"],
        ["ethtool", "-K", "eth0", "generic-receive-offload", "off"],
    ]
    assert plan.changes["rings"] == {"rx": {"before": 256, "after": 1024}, "tx": {"before": 256, "after": 512}}
    assert plan.changes["features"] == {"generic-receive-offload": {"before": True, "after": False}}


def test_only_differences_are_planned():
    state = e1000e_state()
    state["rings"] = ethtool.parse_rings(read("labvm_e1000e_ethtool-g_rx1024-tx512.txt"))
    state["coalesce"] = ethtool.parse_coalesce(read("labvm_e1000e_ethtool-c_rx-usecs50.txt"))
    plan = plan_nic({**LAB_WANT, "mtu": 1500, "features": {"generic-receive-offload": True}}, state)
    assert not plan.changed and plan.changes == {}
    assert mismatches({**LAB_WANT, "mtu": 1500, "features": {}}, state) == []


@pytest.mark.parametrize("want, message", [
    ({"rings": {"rx": 8192}},
     "eth0 (52:54:00:4c:ab:11): rings rx 8192 is above the NIC's pre-set maximum 4096 (ethtool -g)"),
    ({"rings": {"rx-jumbo": 512}}, "eth0 (52:54:00:4c:ab:11): the driver does not implement rings rx-jumbo"),
    ({"rings": {"rx-buf-len": 512}}, "unknown rings parameter 'rx-buf-len'"),
    ({"channels": {"combined": 2}}, "the driver does not report channels (ethtool -l is not supported)"),
    ({"mtu": 9216}, "eth0 (52:54:00:4c:ab:11): mtu 9216 is above the NIC's maximum 9212 (ip -d link max_mtu)"),
    ({"mtu": 60}, "mtu 60 is below the NIC's minimum 68"),
    ({"coalesce": {"tx-usecs": 10}}, "the driver does not implement coalesce tx-usecs (ethtool -c shows n/a)"),
    ({"coalesce": {"rx-usecs": "fast"}}, "coalesce rx-usecs must be a whole number"),
    ({"features": {"large-receive-offload": True}}, "feature large-receive-offload is fixed off by the driver"),
    ({"features": {"gro": False}}, "unknown feature 'gro'"),
])
def test_refusals_name_the_nic_and_the_limit(want, message):
    with pytest.raises(PlanError) as caught:
        plan_nic(want, e1000e_state())
    assert message in str(caught.value)


def test_fixed_feature_already_at_the_wanted_value_is_fine():
    assert not plan_nic({"features": {"large-receive-offload": False}}, e1000e_state()).changed


def test_channels_on_virtio():
    with pytest.raises(PlanError, match="channels combined 2 is above the NIC's pre-set maximum 1"):
        plan_nic({"channels": {"combined": 2}}, virtio_state())
    assert not plan_nic({"channels": {"combined": 1}}, virtio_state()).changed


def spec_nic_state(max_rx, max_tx, current, adaptive):
    """A spec NIC's state, CONSTRUCTED from the e1000e recording: maxima and current ring sizes replaced by
    the driver's documented limits (ixgbe 4096, mlx5 8192, igb 4096); not a recording of that hardware."""
    state = copy.deepcopy(e1000e_state())
    state["rings"]["max"].update(rx=max_rx, tx=max_tx)
    state["rings"]["current"].update(rx=current, tx=current)
    state["coalesce"]["adaptive-rx"] = adaptive
    return state


def test_connectx_ring_8192_is_accepted_and_ixgbe_refuses_it():
    assert plan_nic({"rings": {"rx": 8192, "tx": 8192}}, spec_nic_state(8192, 8192, 1024, True)).changed
    with pytest.raises(PlanError, match="rings rx 8192 is above the NIC's pre-set maximum 4096"):
        plan_nic({"rings": {"rx": 8192}}, spec_nic_state(4096, 4096, 512, False))


def test_adaptive_coalesce_is_on_off():
    plan = plan_nic({"coalesce": {"adaptive-rx": False}}, spec_nic_state(8192, 8192, 1024, True))
    assert bind(plan.commands[0], "ens1f0np0") == ["ethtool", "-C", "ens1f0np0", "adaptive-rx", "off"]


def test_readback_mismatch_is_reported():
    state = e1000e_state()
    assert mismatches({"rings": {"rx": 1024}, "mtu": 9000}, state) == [
        "mtu: wanted 9000, the NIC shows 1500", "rings rx: wanted 1024, the NIC shows 256"]
    assert current_values({"features": {"generic-receive-offload": False}}, state) == {
        "features": {"generic-receive-offload": True}}
