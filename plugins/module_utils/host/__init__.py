# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host primitives that several capabilities share: atomic owned files, the initramfs rebuild."""

from __future__ import annotations
