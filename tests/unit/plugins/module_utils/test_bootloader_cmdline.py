"""Kernel command line tokens: tokenizer, request normalisation, edits."""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_collections.onprem.gpu_server.plugins.module_utils.bootloader.cmdline import (
    CmdlineError,
    apply_request,
    differing_keys,
    normalize_params,
    parse_token,
    split_cmdline,
    values_of,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "cmdline"


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("quiet  splash\n", ["quiet", "splash"]),
        ('a=1 dyndbg="file x.c +p" b', ["a=1", 'dyndbg="file x.c +p"', "b"]),
        ("ro -- single", ["ro"]),
        ("", []),
    ],
)
def test_split_cmdline(text, tokens):
    assert split_cmdline(text) == tokens


def test_split_recorded_proc_cmdline_stops_at_dashdash():
    # Source: cmdline/SOURCES.md, proc-cmdline_firecracker-host-vm.txt (this host's /proc/cmdline).
    tokens = split_cmdline((FIXTURES / "proc-cmdline_firecracker-host-vm.txt").read_text())
    assert tokens[0] == "mitigations=auto,no_guest_host,no_guest_guest"
    assert tokens[-1] == "rdinit=/process_api"
    assert "--firecracker-init" not in tokens
    assert values_of(tokens, "console") == ["ttyS0"]
    assert values_of(tokens, "quiet") == [None]


def test_parse_token_strips_quotes():
    assert parse_token('dyndbg="a b"') == ("dyndbg", "a b")
    assert parse_token("quiet") == ("quiet", None)
    assert parse_token("vfio-pci.ids=10de:1b06,10de:10ef") == ("vfio-pci.ids", "10de:1b06,10de:10ef")


def test_dash_and_underscore_are_one_key():
    assert values_of(["vfio_pci.ids=1", "vfio-pci.ids=2"], "vfio_pci.ids") == ["1", "2"]


@pytest.mark.parametrize(
    ("params", "state", "expected"),
    [
        ({"intel_iommu": "on", "iommu": "pt", "quiet": None},
         "present", {"intel_iommu": ["intel_iommu=on"], "iommu": ["iommu=pt"], "quiet": ["quiet"]}),
        (["intel_iommu=on", "quiet", {"iommu": "pt"}],
         "present", {"intel_iommu": ["intel_iommu=on"], "quiet": ["quiet"], "iommu": ["iommu=pt"]}),
        ({"console": ["tty0", "ttyS0,115200"]}, "present", {"console": ["console=tty0", "console=ttyS0,115200"]}),
        ({"hugepages": 16}, "present", {"hugepages": ["hugepages=16"]}),
        ({"dyndbg": "file x.c +p"}, "present", {"dyndbg": ['dyndbg="file x.c +p"']}),
        (["quiet"], "absent", {"quiet": []}),
    ],
)
def test_normalize_params(params, state, expected):
    wanted = normalize_params(params, state)
    assert {key: item.tokens() for key, item in wanted.items()} == expected


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"intel_iommu": True}, "YAML boolean"),
        ({"a b": "1"}, "invalid parameter name"),
        ({"x": 'a"b'}, "double quotes"),
        (["iommu=pt", {"iommu": "on"}], "more than once"),
        (["vfio_pci.ids=1", "vfio-pci.ids=2"], "more than once"),
        ([], "at least one"),
        ("iommu=pt", "mapping or a list"),
        ({"console": []}, "empty list"),
    ],
)
def test_normalize_params_refuses(params, message):
    with pytest.raises(CmdlineError, match=message):
        normalize_params(params)


@pytest.mark.parametrize(
    ("tokens", "params", "state", "expected"),
    [
        (["ro", "quiet"], {"iommu": "pt"}, "present", ["ro", "quiet", "iommu=pt"]),
        (["iommu=off", "ro", "iommu=on"], {"iommu": "pt"}, "present", ["iommu=pt", "ro"]),
        (["vfio_pci.ids=1"], {"vfio-pci.ids": "2"}, "present", ["vfio-pci.ids=2"]),
        (["ro", "quiet", "splash"], ["quiet"], "absent", ["ro", "splash"]),
        (["console=tty0", "console=ttyS0"], ["console=tty0"], "absent", ["console=ttyS0"]),
        (["ro"], ["quiet"], "absent", ["ro"]),
        (["console=ttyS0", "ro"], {"console": ["tty0", "ttyS0"]}, "present", ["console=tty0", "console=ttyS0", "ro"]),
    ],
)
def test_apply_request(tokens, params, state, expected):
    before = list(tokens)
    assert apply_request(tokens, normalize_params(params, state), state) == expected
    assert tokens == before


def test_differing_keys_compare_all_values_in_order():
    configured = ["intel_iommu=on", "iommu=pt"]
    assert differing_keys(configured, ["intel_iommu=on", "iommu=pt", "ro"], ["intel_iommu", "iommu"]) == []
    assert differing_keys(configured, ["intel_iommu=on"], ["intel_iommu", "iommu"]) == ["iommu"]
    assert differing_keys(["quiet"], [], ["quiet"]) == ["quiet"]
