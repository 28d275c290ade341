"""nvidia-smi topo -m parser on recorded matrices (sources: tests/unit/fixtures/nvidia-smi/SOURCES.md)."""

from __future__ import annotations

from pathlib import Path

from ansible_collections.onprem.gpu_server.plugins.module_utils.gpu import topo

NVSMI = Path(__file__).resolve().parents[3] / "fixtures" / "nvidia-smi"


def parse(name):
    return topo.parse_topo_matrix((NVSMI / name).read_text())


def pair_links(matrix):
    return {(p["a"], p["b"]): p["link"] for p in matrix["pairs"]}


def test_four_rtx3090_with_nvlink_bridges_on_two_pairs():
    matrix = parse("4gpu-rtx3090-nvlink-pairs_topo-m.txt")
    assert matrix["devices"] == ["GPU0", "GPU1", "GPU2", "GPU3"]
    assert pair_links(matrix) == {
        ("GPU0", "GPU1"): "PHB", ("GPU0", "GPU2"): "NV4", ("GPU0", "GPU3"): "NODE",
        ("GPU1", "GPU2"): "NODE", ("GPU1", "GPU3"): "NV4", ("GPU2", "GPU3"): "PHB",
    }
    assert [p["nvlinks"] for p in matrix["pairs"]] == [0, 4, 0, 0, 4, 0]
    assert matrix["links"]["GPU2"]["GPU0"] == "NV4" and "GPU2" not in matrix["links"]["GPU2"]
    assert {a["cpu_affinity"] for a in matrix["affinity"].values()} == {"0-23"}
    assert {a["numa_node"] for a in matrix["affinity"].values()} == {0}
    assert {a["gpu_numa_id"] for a in matrix["affinity"].values()} == {None}
    assert matrix["nics"] == {}


def test_four_gpus_over_pcie_all_phb():
    matrix = parse("4gpu-pcie-phb-rtx4090x2-a6000-5090_topo-m.txt")
    assert len(matrix["pairs"]) == 6 and set(pair_links(matrix).values()) == {"PHB"}
    assert matrix["affinity"]["GPU3"] == {"cpu_affinity": "0-15", "numa_affinity": "0", "numa_node": 0,
                                          "gpu_numa_id": None}


def test_eight_quadros_behind_pcie_switches_tabs_and_ansi():
    matrix = parse("quadro-rtx6000-x8-pcie-switch_topo-m.txt")
    links = pair_links(matrix)
    assert len(links) == 28
    assert links[("GPU0", "GPU1")] == "PIX" and links[("GPU0", "GPU2")] == "PXB" and links[("GPU6", "GPU7")] == "PIX"
    assert sorted(set(links.values())) == ["PIX", "PXB"]


def test_h200_hgx_nvlink_mesh_with_ten_nics_and_two_numa_nodes():
    matrix = parse("h200-x8-hgx-nvlink-10nic_topo-m.txt")
    assert matrix["devices"][:8] == [f"GPU{i}" for i in range(8)]
    assert matrix["devices"][8:] == [f"NIC{i}" for i in range(10)]
    assert set(pair_links(matrix).values()) == {"NV18"} and {p["nvlinks"] for p in matrix["pairs"]} == {18}
    assert matrix["affinity"]["GPU0"]["cpu_affinity"] == "0-63,128-191"
    assert [matrix["affinity"][f"GPU{i}"]["numa_node"] for i in range(8)] == [0, 0, 0, 0, 1, 1, 1, 1]
    # The NIC nearest each GPU (one PCIe bridge away).
    nearest = {gpu: [nic for nic, code in matrix["links"][gpu].items() if nic.startswith("NIC") and code == "PIX"]
               for gpu in matrix["devices"][:8]}
    assert nearest["GPU0"] == ["NIC3"] and nearest["GPU3"] == ["NIC0", "NIC1", "NIC2"] and nearest["GPU7"] == ["NIC6"]
    assert matrix["links"]["NIC0"]["GPU4"] == "SYS" and "NIC0" not in matrix["affinity"]
    assert matrix["nics"]["NIC0"] == "mlx5_0" and matrix["nics"]["NIC9"] == "mlx5_9" and len(matrix["nics"]) == 10


def test_single_gpu_and_empty_output():
    matrix = parse("h100-sxm5-80gb_topo-m.txt")
    assert matrix["devices"] == ["GPU0"] and matrix["pairs"] == [] and matrix["links"] == {"GPU0": {}}
    assert topo.parse_topo_matrix("") == {"devices": [], "links": {}, "pairs": [], "affinity": {}, "nics": {}}


def test_nvlinks():
    assert (topo.nvlinks("NV12"), topo.nvlinks("SYS"), topo.nvlinks(None)) == (12, 0, 0)
