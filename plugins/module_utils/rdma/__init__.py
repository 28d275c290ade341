# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""RDMA over Converged Ethernet: the program that the roce role installs on the host (roce.py)."""

from __future__ import annotations
