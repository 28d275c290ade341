"""Make the checkout importable as ``ansible_collections.onprem.gpu_server``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
_COLLECTIONS = REPO_ROOT / ".cache" / "collections"
_LINK = _COLLECTIONS / "ansible_collections" / "onprem" / "gpu_server"

if not _LINK.exists():
    _LINK.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(os.path.relpath(REPO_ROOT, _LINK.parent), _LINK)

if str(_COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(_COLLECTIONS))

# tests/unit itself, so tests import their fixture helpers as ``fixtures.*``
# (tests/unit/fixtures/recorded.py, tests/unit/fixtures/sysfs/sysfs_tree.py).
_UNIT = str(Path(__file__).resolve().parent)
if _UNIT not in sys.path:
    sys.path.insert(0, _UNIT)
