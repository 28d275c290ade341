# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""NIC tuning: ethtool/ip parsers, the change plan and the systemd .link file (used by nic_tuning)."""

from __future__ import annotations
