# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PCI addresses: the one parser of ``[DDDD:]BB:SS[.F]`` in the collection.

The same function is written several ways: the kernel names it ``0000:3b:00.0`` (lower-case hex,
at least four domain digits; Intel VMD domains have five, ``10000:01:00.0``), lspci leaves a zero
domain out (``3b:00.0``), nvidia-smi writes eight upper-case domain digits (``00000000:3B:00.0``)
and Proxmox's ``hostpci`` takes a whole device without its function (``0000:3b:00``). Everything
here accepts all of them and writes the kernel's form, so addresses from different tools compare
equal. Standard library only: host-side programs can use it too.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

# Device (slot) numbers are 5 bits (00-1f) and functions 3 bits (0-7); a wider value is a typo.
PATTERN = (
    r"(?:(?P<domain>[0-9a-fA-F]{4,8}):)?(?P<bus>[0-9a-fA-F]{2}):(?P<slot>[01][0-9a-fA-F])"
    r"(?:\.(?P<function>[0-7]))?"
)
_ADDRESS = re.compile(rf"^{PATTERN}$")
# Exactly as sysfs names a function (lower case, four domain digits): what a host plan must write.
SYSFS_FUNCTION_NAME = re.compile(r"^[0-9a-f]{4}:[0-9a-f]{2}:[01][0-9a-f]\.[0-7]$")


class AddressError(ValueError):
    """Not a PCI address."""


@dataclass(frozen=True, order=True)
class PciAddress:
    """One PCI device (``function`` None) or function, as numbers."""

    domain: int
    bus: int
    slot: int
    function: int | None = None

    @property
    def device(self) -> str:
        """``0000:3b:00``: the device without its function (what a GPU's sibling functions share)."""
        return f"{self.domain:04x}:{self.bus:02x}:{self.slot:02x}"

    def __str__(self) -> str:
        return self.device if self.function is None else f"{self.device}.{self.function}"


def parse(text: object) -> PciAddress:
    """``[DDDD:]BB:SS[.F]`` in any of the forms above -> PciAddress; AddressError otherwise."""
    match = _ADDRESS.match(str(text).strip())
    if not match:
        raise AddressError(f"{text!r} is not a PCI address (expected [DDDD:]BB:SS[.F], hex, e.g. 0000:3b:00.0)")
    function = match.group("function")
    return PciAddress(
        domain=int(match.group("domain") or "0", 16),
        bus=int(match.group("bus"), 16),
        slot=int(match.group("slot"), 16),
        function=None if function is None else int(function),
    )


def normalize(text: object) -> str:
    """The kernel's form of an address: ``3B:00.0`` -> ``0000:3b:00.0``, ``0000:3b:00`` stays a device."""
    return str(parse(text))


def is_function_name(text: str) -> bool:
    """True when ``text`` is a function written exactly as sysfs names it (``0000:3b:00.0``)."""
    try:
        address = parse(text)
    except AddressError:
        return False
    return address.function is not None and str(address) == text


def function_dir(path: str) -> str | None:
    """The nearest directory of a sysfs device path (itself or an ancestor) named like a PCI function.

    ``devices/pci0000:00/0000:00:03.0/virtio0`` -> ``devices/pci0000:00/0000:00:03.0`` (a virtio-net
    interface hangs off a virtio device below its PCI function, a USB NIC off its controller's);
    None for a path with no PCI function, such as ``devices/virtual/net/lo`` or a platform device.
    The address is the result's last component.
    """
    head = path.rstrip("/")
    while head:
        if is_function_name(os.path.basename(head)):
            return head
        parent = os.path.dirname(head)
        if parent == head:
            break
        head = parent
    return None
