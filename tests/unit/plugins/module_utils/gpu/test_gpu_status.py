"""Failure classification and kernel module version (fixtures: tests/unit/fixtures/nvidia-smi/SOURCES.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_collections.onprem.gpu_server.plugins.module_utils.gpu import status

NVSMI = Path(__file__).resolve().parents[3] / "fixtures" / "nvidia-smi"


def read(name):
    return (NVSMI / name).read_text()


@pytest.mark.parametrize("rc, fixture_or_text, expected, fix_part", [
    (9, "constructed_nvidia-smi_no-driver.txt", "no_driver", "modprobe nvidia"),
    (18, "constructed_nvidia-smi_version-mismatch.txt", "version_mismatch", "reboot to load the new kernel module"),
    (6, "constructed_nvidia-smi_no-devices.txt", "no_device", "vfio-pci"),
    # The exit code alone when a wrapper swallowed the text (codes from nvidia-smi(1)).
    (9, "", "no_driver", "modprobe nvidia"),
    (12, "", "error", "libnvidia-ml.so.1"),
    (124, "", "error", "Xid"),
    (255, "Unknown Error", "error", None),
])
def test_classify(rc, fixture_or_text, expected, fix_part):
    text = read(fixture_or_text) if fixture_or_text.endswith(".txt") else fixture_or_text
    verdict = status.classify(rc, text)
    assert verdict["status"] == expected
    if fix_part is None:
        assert verdict["fix"] is None and verdict["message"] == "Unknown Error"
    else:
        assert fix_part in verdict["fix"]


def test_classify_mismatch_reports_the_library_version_and_one_line_message():
    verdict = status.classify(18, read("constructed_nvidia-smi_version-mismatch.txt"))
    assert verdict["library_version"] == "580.178"
    assert verdict["message"] == (
        "Failed to initialize NVML: Driver/library version mismatch NVML library version: 580.178")


def test_classify_success_on_a_recorded_csv():
    verdict = status.classify(0, read("l40s_query-gpu-all-fields_idle.csv.txt"))
    assert verdict == {"status": "ok", "message": None, "fix": None, "library_version": None}


def test_kernel_versions():
    proprietary = status.parse_kernel_version(read("constructed_proc-driver-nvidia-version_580.173.02.txt"))
    assert proprietary is not None and (proprietary["version"], proprietary["open"]) == ("580.173.02", False)
    open_module = status.parse_kernel_version(read("constructed_proc-driver-nvidia-version_open_565.57.01.txt"))
    assert open_module is not None and (open_module["version"], open_module["open"]) == ("565.57.01", True)
    assert status.parse_kernel_version("") is None and status.parse_kernel_version(None) is None


@pytest.mark.parametrize("kernel, userspace, expected", [
    ("580.173.02", "580.178", False),
    ("580.178.04", "580.178", True),
    ("550.127.05", "550.127.05", True),
    ("550.127.05", "550.127.08", False),
    (None, "550.127.05", None),
])
def test_versions_match(kernel, userspace, expected):
    assert status.versions_match(kernel, userspace) is expected
