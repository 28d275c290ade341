# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Block devices: read-only probing (``probe``) and the refusal rules (``refusals``)."""

from __future__ import annotations
