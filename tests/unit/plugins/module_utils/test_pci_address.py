"""The canonical PCI address parser (plugins/module_utils/pci/address.py)."""

from __future__ import annotations

import pytest

from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.gpu import parse_pci
from ansible_collections.onprem.gpu_server.plugins.module_utils.pci import address
from ansible_collections.onprem.gpu_server.plugins.module_utils.pci.sysfs import normalize_address

# (text as a tool writes it, the kernel's form); sources: sysfs, lspci -D and lspci, nvidia-smi's bus_id
# (tests/unit/fixtures/nvidia-smi), Proxmox hostpci (a device without its function), an Intel VMD domain.
FORMS = [
    ("0000:3b:00.0", "0000:3b:00.0"),
    ("3b:00.0", "0000:3b:00.0"),
    ("00000000:3B:00.0", "0000:3b:00.0"),
    ("0000:0b:00", "0000:0b:00"),
    ("10000:01:00.0", "10000:01:00.0"),
    (" 0000:00:1f.3\n", "0000:00:1f.3"),
]


@pytest.mark.parametrize(("text", "kernel"), FORMS)
def test_every_form_normalizes_to_the_kernels(text, kernel):
    assert address.normalize(text) == kernel


@pytest.mark.parametrize("text", ["", "0000:3b:00.8", "0000:3b:20.0", "3b:0.0", "0000:3g:00.0", "000:3b:00.0",
                                  "pci0000:00", "virtio0", "0000:3b:00.0.1", None])
def test_what_is_not_an_address_is_refused_with_the_expected_form(text):
    with pytest.raises(address.AddressError, match=r"expected \[DDDD:\]BB:SS\[\.F\]"):
        address.parse(text)


def test_parts_and_device():
    parsed = address.parse("0000:af:00.1")
    assert (parsed.domain, parsed.bus, parsed.slot, parsed.function) == (0, 0xAF, 0, 1)
    assert parsed.device == "0000:af:00"
    assert address.parse("0000:af:00").function is None
    assert sorted([address.parse("0000:af:00.1"), address.parse("0000:3b:00.0")])[0].bus == 0x3B


def test_only_the_exact_sysfs_name_of_a_function_counts_as_one():
    assert address.is_function_name("0000:00:03.0")
    for text in ("00:03.0", "0000:00:03", "0000:00:03.0 ", "0000:00:0A.0", "virtio2", "pci0000:00"):
        assert not address.is_function_name(text), text


@pytest.mark.parametrize(("path", "expected"), [
    # virtio-net: the interface hangs off a virtio device below the function (recorded on the development host).
    ("sys/devices/pci0000:00/0000:00:03.0/virtio2", "sys/devices/pci0000:00/0000:00:03.0"),
    # A NIC behind a root port and a switch: the nearest function is the NIC's own.
    ("/sys/devices/pci0000:17/0000:17:00.0/0000:18:00.0/0000:19:00.1", "/sys/devices/pci0000:17/0000:17:00.0/"
     "0000:18:00.0/0000:19:00.1"),
    # A USB NIC: its controller's function.
    ("/sys/devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0", "/sys/devices/pci0000:00/0000:00:14.0"),
    ("/sys/devices/virtual/net/lo", None),
    ("/sys/devices/platform/soc/ethernet0", None),
    ("", None),
    ("/", None),
])
def test_function_dir_is_the_nearest_function_of_a_device_path(path, expected):
    assert address.function_dir(path) == expected


@pytest.mark.parametrize("text", ["0000:3b:00.0", "3b:00.0", "0000:0b:00", "0B:00.1", "0000:00:1f.3"])
def test_the_older_parsers_agree_on_the_addresses_they_accept(text):
    # pci/sysfs.py and plan/gpu.py keep their own expressions; on every address they accept they must give
    # the same device and function as the canonical parser, so they can be replaced by it without a change.
    parsed = address.parse(text)
    assert normalize_address(text.lower()) == (parsed.device, parsed.function)
    device, func = parse_pci(text, "gpus.x.pci")
    assert (device, None if func is None else int(func)) == (parsed.device, parsed.function)
