"""pcie_lanes and nic_buffers."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.onprem.gpu_server.plugins.filter.nic_buffers import nic_buffers
from ansible_collections.onprem.gpu_server.plugins.filter.pcie_lanes import pcie_lanes

TR_PRO_7975WX = {"name": "Threadripper PRO 7975WX", "sockets": 1, "lanes_per_socket": 128, "gen": 5}
WORKSTATION_DEVICES = [
    {"name": "RTX 4090", "lanes": 16, "count": 4, "gen": 4},
    {"name": "Samsung 990 PRO", "lanes": 4, "gen": 4},
    {"name": "Crucial T705", "lanes": 4, "count": 2, "gen": 5},
    {"name": "ConnectX-4 Lx", "lanes": 8, "gen": 3},
]
XEON_8270_X2 = {"name": "2x Xeon 8270", "sockets": 2, "lanes_per_socket": 48, "gen": 3}


def test_workstation_lanes_fit():
    result = pcie_lanes(TR_PRO_7975WX, WORKSTATION_DEVICES)
    assert result["ok"]
    assert result["lanes_used"] == 64 + 4 + 8 + 8
    assert result["warnings"] == []
    assert result["links"][0]["gb_s_per_direction"] == pytest.approx(31.5, abs=0.01)


def test_xc740xd_gpus_link_at_gen3():
    devices = [
        {"name": "RTX 4000 Ada", "lanes": 16, "count": 4, "gen": 4},
        {"name": "Intel P4608", "lanes": 8},
        {"name": "HBA330", "lanes": 8},
    ]
    result = pcie_lanes(XEON_8270_X2, devices)
    assert result["lanes_used"] == 80
    assert result["lanes_available"] == 96
    assert "links at gen 3: x16 gives 15.8 GB/s per direction, not 31.5" in result["warnings"][0]


def test_socket_budget():
    devices = [{"name": "gpu", "lanes": 16, "count": 4, "socket": 0}]
    result = pcie_lanes(XEON_8270_X2, devices)
    assert "devices: socket 0 needs 64 lanes but has 48" in result["errors"]
    over = pcie_lanes(XEON_8270_X2, [{"lanes": 16, "count": 7}])
    assert "devices: need 112 lanes but the platform offers 96" in over["errors"]


@pytest.mark.parametrize(
    ("platform", "devices", "message"),
    [
        ({"sockets": 1, "gen": 4}, [], "platform.lanes_per_socket: expected an integer"),
        ({"lanes_per_socket": 20, "gen": 6}, [], "platform.gen: PCIe generation must be 1-5"),
        (XEON_8270_X2, [{"lanes": 12}], "devices[0].lanes: link width must be one of"),
        (XEON_8270_X2, [{"lanes": 16, "socket": 2}], "devices[0].socket: platform has sockets 0-1"),
        (XEON_8270_X2, [{"lanes": 16, "slot": 2}], "devices[0]: unknown key(s) slot"),
        (XEON_8270_X2, {"lanes": 16}, "devices: expected a list"),
    ],
)
def test_pcie_malformed(platform, devices, message):
    with pytest.raises(AnsibleFilterError) as err:
        pcie_lanes(platform, devices)
    assert str(err.value).startswith("pcie_lanes: ")
    assert message in str(err.value)


MIB = 2**20


def test_workstation_128mb_buffers_are_oversized_on_the_lan():
    result = nic_buffers(25e9, 0.2, claimed_bytes=128 * MIB)
    assert result["bdp_bytes"] == 625_000  # 25 Gbit/s x 0.2 ms
    assert result["needed_bytes"] == 2 * MIB
    # Below the Linux defaults nothing is raised: defaults stay.
    assert result["tcp_rmem"] == [4096, 131072, 6 * MIB]
    assert result["claim"]["verdict"] == "oversized"
    assert result["claim"]["justified_from_rtt_ms"] == pytest.approx(21.47, abs=0.01)


def test_workstation_128mb_buffers_for_internet_downloads():
    assert nic_buffers(25e9, 21, claimed_bytes=128 * MIB)["claim"]["verdict"] == "justified"
    far = nic_buffers(25e9, 50, claimed_bytes=128 * MIB)
    assert far["claim"]["verdict"] == "too_small"
    assert far["rmem_max"] == 299 * MIB  # 25e9/8 x 0.05 x 2 = 312.5e6 B -> 299 MiB
    assert far["sysctl"]["net.ipv4.tcp_rmem"] == f"4096 131072 {299 * MIB}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0, 1), "bandwidth_bps: must be > 0"),
        (("10G", 1), "bandwidth_bps: expected a number"),
        ((1e10, -1), "rtt_ms: must be > 0"),
        ((1e10, 1, 0.5), "overhead_factor: must be >= 1"),
        ((1e10, 1, 2, "128M"), "claimed_bytes: expected a number"),
    ],
)
def test_nic_malformed(args, message):
    with pytest.raises(AnsibleFilterError) as err:
        nic_buffers(*args)
    assert str(err.value).startswith("nic_buffers: ")
    assert message in str(err.value)


@settings(max_examples=150, deadline=None)
@given(st.floats(min_value=1e6, max_value=4e11), st.floats(min_value=0.01, max_value=500))
def test_buffers_cover_bdp_and_grow_with_rtt(bandwidth, rtt):
    result = nic_buffers(bandwidth, rtt)
    assert result["rmem_max"] >= 2 * bandwidth / 8 * rtt / 1000
    assert result["rmem_max"] % MIB == 0 or result["rmem_max"] == 6 * MIB
    assert nic_buffers(bandwidth, rtt * 2)["rmem_max"] >= result["rmem_max"]
