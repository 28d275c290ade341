# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host's running network state against what a role configured (drift.py, run on the host by the
networks and netplan roles)."""

from __future__ import annotations
