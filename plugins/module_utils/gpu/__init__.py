# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""NVIDIA GPU facts: nvidia-smi output parsers, failure classification (used by the gpu_facts module)."""

from __future__ import annotations
