# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The data lifecycle mover that the data_lifecycle role installs on the host (mover.py)."""

from __future__ import annotations
