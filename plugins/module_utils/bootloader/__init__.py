# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kernel command line handling for GRUB and systemd-boot hosts (used by the kernel_cmdline module)."""

from __future__ import annotations
