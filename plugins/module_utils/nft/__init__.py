# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One owned nftables table: transaction files, normalisation, commit-confirm (used by nft_ruleset)."""

from __future__ import annotations
