# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PCI devices from sysfs and vfio-pci planning (used by the pci_facts and vfio_pci modules)."""

from __future__ import annotations
