"""Shared helpers for the data_lifecycle tests: load the tool, build trees, read metrics."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from types import ModuleType

from ansible_collections.onprem.gpu_server.plugins.module_utils.data_lifecycle import mover

REPO_ROOT = Path(__file__).resolve().parents[4]
# The file the role installs, unchanged, as /usr/local/sbin/onprem-data-lifecycle.
TOOL = REPO_ROOT / "plugins" / "module_utils" / "data_lifecycle" / "mover.py"
DAY = 86400


def load_tool() -> ModuleType:
    """The tool as a module (tests call its functions; subprocess tests run TOOL itself)."""
    return mover


def classes(**overrides: dict) -> list[dict]:
    """Two data classes with distinct windows; ``overrides`` replace fields per class name."""
    base = [
        {"name": "tick", "directory": "tick", "hot_days": 1, "warm_days": 7, "retention_days": 30},
        {"name": "models", "directory": "models/checkpoints", "hot_days": 2, "warm_days": 10, "retention_days": None},
    ]
    for entry in base:
        entry.update(overrides.get(entry["name"], {}))
    return base


def write_config(root: Path, **extra: object) -> Path:
    """Write a configuration for tiers below ``root`` and return its path."""
    doc: dict = {
        "_managed": "test",
        "tiers": {t: str(root / t) for t in ("landing", "warm", "cold")},
        "classes": classes(),
        "lock_file": str(root / "run" / "lock"),
        "metrics_path": str(root / "metrics" / "dlc-{command}.prom"),
        "link_within_filesystem": False,
        "buffer_bytes": 65536,
    }
    doc.update(extra)
    for tier in ("landing", "warm", "cold"):
        Path(doc["tiers"][tier]).mkdir(parents=True, exist_ok=True)
    (root / "metrics").mkdir(exist_ok=True)
    path = root / "config.json"
    path.write_text(json.dumps(doc))
    return path


def make_file(path: Path, size: int, age_days: float, now: float, seed: int = 0, mode: int = 0o640) -> str:
    """Create ``path`` with ``size`` pseudo-random bytes, ``age_days`` old; return its sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (hashlib.sha256(f"{path.name}-{seed}".encode()).digest() * (size // 32 + 1))[:size]
    path.write_bytes(data)
    os.chmod(path, mode)
    mtime = now - age_days * DAY
    os.utime(path, (mtime, mtime))
    return hashlib.sha256(data).hexdigest()


def sha256(path: Path) -> str:
    """The sha256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def all_files(root: Path) -> list[Path]:
    """Every non-directory below ``root``."""
    return sorted(p for p in root.rglob("*") if not p.is_dir())


_SAMPLE = re.compile(r"^([a-z_]+)(\{[^}]*\})? (\S+)$")
_LABEL = re.compile(r'([a-z_]+)="([^"]*)"')


def parse_prom(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Parse the text exposition format (the subset the tool writes); fail on any other line."""
    families: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    typed: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind == "gauge", line
            typed.add(name)
            continue
        match = _SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        name, labels, value = match.groups()
        assert name in typed, f"sample before its TYPE line: {line!r}"
        key = tuple(sorted(_LABEL.findall(labels or "")))
        families.setdefault(name, {})[key] = float(value)
    return families
