"""nvidia-smi output parsers on recorded outputs (sources: tests/unit/fixtures/nvidia-smi/SOURCES.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_collections.onprem.gpu_server.plugins.module_utils.gpu import nvsmi

NVSMI = Path(__file__).resolve().parents[3] / "fixtures" / "nvidia-smi"


def read(name):
    return (NVSMI / name).read_text()


@pytest.mark.parametrize("value, expected", [
    ("00000000:3B:00.0", "0000:3b:00.0"),
    ("00000000:00:09.0", "0000:00:09.0"),
    ("0000:A1:00.0", "0000:a1:00.0"),
    ("00000001:C1:00.1", "0001:c1:00.1"),
    ("[N/A]", None),
    ("not a bus id", None),
])
def test_normalize_bus_id(value, expected):
    assert nvsmi.normalize_bus_id(value) == expected


@pytest.mark.parametrize("value, number, flag", [
    ("700.00 W", 700.0, None), ("81559 MiB", 81559.0, None), ("16x", 16.0, None), ("-7 C", -7.0, None),
    ("[N/A]", None, None), ("[Not Supported]", None, None), ("N/A", None, None),
    ("[Requested functionality has been deprecated]", None, None), ("", None, None),
    ("Enabled", None, True), ("Disabled", None, False), ("P8", None, None),
])
def test_values(value, number, flag):
    assert nvsmi.number(value) == number
    assert nvsmi.enabled(value) is flag


def test_pci_id_swaps_nvml_halves():
    assert nvsmi.pci_id("0x268410DE") == "10de:2684"
    assert nvsmi.pci_id("[N/A]") is None


# Recorded --query-gpu CSV with every field the driver supports (header and units present).
CSV_HOSTS = [
    ("h100-sxm5-80gb_query-gpu-all-fields_idle.csv.txt", 212, {
        "name": "NVIDIA H100 80GB HBM3", "bus_id": "0000:00:09.0", "pci_id": "10de:2330", "memory_total_mib": 81559,
        "power_limit_w": 700.0, "ecc_mode": True, "mig_mode": False, "compute_cap": "9.0",
        "driver_version": "590.48.01", "clocks_max_memory_mhz": 2619, "pcie_gen_max": 5, "persistence_mode": True}),
    ("h100-sxm5-80gb-mig_query-gpu-all-fields_idle.csv.txt", 212, {
        "mig_mode": True, "mig_mode_pending": True, "temperature_c": 42, "serial": "0000000000000"}),
    ("h200-sxm_query-gpu-all-fields_idle.csv.txt", 212, {
        "name": "NVIDIA H200", "bus_id": "0000:83:00.0", "memory_total_mib": 143771,
        "vbios_version": "96.00.A5.00.03"}),
    ("l40s_query-gpu-all-fields_idle.csv.txt", 202, {
        "name": "NVIDIA L40S", "memory_total_mib": 46068, "power_limit_w": 350.0, "mig_mode": None,
        "ecc_mode": True, "persistence_mode": False, "driver_version": "595.80", "compute_cap": "8.9"}),
    ("rtx4080super_query-gpu-all-fields_idle.csv.txt", 202, {
        "name": "NVIDIA GeForce RTX 4080 SUPER", "serial": None, "ecc_mode": None, "power_limit_w": 320.0,
        "power_max_limit_w": 400.0, "pstate": "P8", "pcie_gen_current": 1, "pcie_width_current": 16}),
]


@pytest.mark.parametrize("fixture, columns, expected", CSV_HOSTS, ids=[c[0].split("_")[0] for c in CSV_HOSTS])
def test_query_gpu_all_fields(fixture, columns, expected):
    [row] = nvsmi.parse_query_gpu(read(fixture))
    assert len(row) == columns
    assert set(nvsmi.QUERY_FIELDS) <= set(row)  # every field gpu_facts asks for exists in these drivers
    gpu = nvsmi.gpu_from_query(row)
    assert set(gpu) == set(nvsmi.GPU_KEYS)
    for key, value in expected.items():
        assert gpu[key] == value, key


def test_query_gpu_units_and_markers_stripped():
    [row] = nvsmi.parse_query_gpu(read("h100-sxm5-80gb_query-gpu-all-fields_idle.csv.txt"))
    assert row["memory.total"] == "81559" and row["power.draw"] == "69.85"  # header "memory.total [MiB]"
    assert row["pci.bus_id"] == "00000000:00:09.0"
    assert row["display_mode"] is None  # [Requested functionality has been deprecated]
    assert row["utilization.gpu"] == "0" and row["driver_model.current"] is None  # "0 %", [N/A]


def test_query_gpu_subset_with_header_eight_quadros():
    rows = nvsmi.parse_query_gpu(read("quadro-rtx6000-x8_query-gpu-pcie-links.csv.txt"))
    gpus = [nvsmi.gpu_from_query(row) for row in rows]
    assert [g["index"] for g in gpus] == list(range(8))
    assert [g["bus_id"] for g in gpus] == ["0000:1a:00.0", "0000:1b:00.0", "0000:1f:00.0", "0000:20:00.0",
                                           "0000:21:00.0", "0000:22:00.0", "0000:23:00.0", "0000:24:00.0"]
    assert {(g["pcie_gen_current"], g["pcie_gen_max"], g["pcie_width_max"]) for g in gpus} == {(1, 3, 16)}
    assert gpus[0]["memory_total_mib"] is None  # not queried


def test_query_gpu_noheader_nounits_with_field_list():
    # The data row of the recorded Quadro CSV, as noheader output for the same field list.
    lines = read("quadro-rtx6000-x8_query-gpu-pcie-links.csv.txt").splitlines()
    fields = [name.strip() for name in lines[0].split(",")]
    rows = nvsmi.parse_query_gpu("\n".join(lines[1:3]) + "\n", fields)
    assert [r["pci.bus_id"] for r in rows] == ["00000000:1A:00.0", "00000000:1B:00.0"]
    with pytest.raises(ValueError, match="3 values for 7 fields"):
        nvsmi.parse_query_gpu("0, Quadro RTX 6000, 00000000:1A:00.0\n", fields)


def test_query_argv_keeps_the_header():
    argv = nvsmi.query_argv()
    assert argv[1] == "--format=csv,nounits" and argv[0].startswith("--query-gpu=index,name,uuid,")


def test_q_rtx4090_x8():
    parsed = nvsmi.parse_q(read("rtx4090-x8_q.txt"))
    assert (parsed["driver_version"], parsed["cuda_version"], parsed["attached_gpus"]) == ("550.127.05", "12.4", 8)
    gpus = parsed["gpus"]
    assert len(gpus) == 8 and {g["name"] for g in gpus} == {"NVIDIA GeForce RTX 4090"}
    assert [g["bus_id"] for g in gpus] == ["0000:01:00.0", "0000:25:00.0", "0000:41:00.0", "0000:61:00.0",
                                           "0000:81:00.0", "0000:a1:00.0", "0000:c1:00.0", "0000:e1:00.0"]
    first = gpus[0]
    assert (first["memory_total_mib"], first["power_limit_w"], first["power_max_limit_w"]) == (24564, 450.0, 450.0)
    assert (first["pci_id"], first["vbios_version"], first["pstate"]) == ("10de:2684", "95.02.3C.00.EB", "P8")
    assert (first["ecc_mode"], first["mig_mode"], first["persistence_mode"]) == (False, None, True)
    assert first["serial"] is None
    assert (first["clocks_max_graphics_mhz"], first["pcie_gen_max"], first["pcie_width_max"]) == (3105, 4, 16)


def test_q_rtx4000_ada():
    parsed = nvsmi.parse_q(read("rtx4000ada_q.txt"))
    [gpu] = parsed["gpus"]
    assert parsed["driver_version"] == "550.90.07"
    assert gpu["name"] == "NVIDIA RTX 4000 Ada Generation"
    assert (gpu["bus_id"], gpu["pci_id"]) == ("0000:81:00.0", "10de:27b2")
    assert (gpu["memory_total_mib"], gpu["power_limit_w"], gpu["serial"]) == (20475, 130.0, "1323523040358")


def test_q_a100_x4_and_h100_mig():
    a100 = nvsmi.parse_q(read("a100-sxm4-80gb-x4_q.txt"))
    assert [g["bus_id"] for g in a100["gpus"]] == ["0000:68:00.0", "0000:9e:00.0", "0000:c2:00.0", "0000:d4:00.0"]
    assert {g["name"] for g in a100["gpus"]} == {"NVIDIA A100-SXM4-80GB"}
    assert {g["mig_mode"] for g in a100["gpus"]} == {False} and {g["ecc_mode"] for g in a100["gpus"]} == {True}
    [h100] = nvsmi.parse_q(read("h100-sxm5-80gb-mig_q_idle.txt"))["gpus"]
    assert (h100["mig_mode"], h100["mig_device_count"], h100["memory_total_mib"]) == (True, 4, 81559)


@pytest.mark.parametrize("fixture, expected", [
    ("rtx4090-x8_default-table.txt", ("550.127.05", "12.4", "550.127.05")),
    ("rtx4000ada_default-table.txt", ("550.90.07", "12.4", "550.90.07")),
    ("h100-sxm5-80gb_default-table_idle.txt", ("590.48.01", "13.1", "590.48.01")),
    ("h100-sxm5-80gb-mig_default-table_idle.txt", ("590.48.01", "13.1", "590.48.01")),
])
def test_banner_versions(fixture, expected):
    versions = nvsmi.parse_versions(read(fixture))
    assert (versions["driver_version"], versions["cuda_version"], versions["nvidia_smi_version"]) == expected


def test_list_with_and_without_mig():
    [plain] = nvsmi.parse_list(read("h100-sxm5-80gb_L.txt"))
    assert plain == {"index": 0, "name": "NVIDIA H100 80GB HBM3",
                     "uuid": "GPU-00000000-0000-0000-0000-000000000000", "mig_devices": []}
    [mig] = nvsmi.parse_list(read("h100-sxm5-80gb-mig_L.txt"))
    assert [(d["index"], d["profile"]) for d in mig["mig_devices"]] == [
        (0, "3g.40gb"), (1, "2g.20gb"), (2, "1g.10gb"), (3, "1g.10gb")]
    assert mig["mig_devices"][3]["uuid"] == "MIG-00000003-0000-0000-0000-000000000003"
