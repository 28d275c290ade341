#!/bin/sh
# Copyright: onprem.gpu_server maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# onprem-data-lifecycle: move landing-zone data through hot/warm/cold tiers and purge it by retention.
#
# Commands: move [--dry-run], purge [--dry-run], status, check-config.
# Configuration: a JSON file (default /etc/onprem/data-lifecycle.json).
#
# Crash safety: a file is copied to a temporary name in its destination directory, fsynced, verified
# by sha256 (hash taken while copying, compared with a re-read of the copy), linked into place without
# overwriting anything, the directory is fsynced, and only then is the source removed. A run killed at
# any instant leaves at worst a stale temporary (removed on the next start) or a source whose identical
# copy already exists (the next run completes the move). See docs/data-lifecycle.md.
#
# The data_lifecycle role copies this file, unchanged, to data_lifecycle_tool_path
# (/usr/local/sbin/onprem-data-lifecycle). The host has neither the collection nor any package beyond
# python3, so the program is one file that imports the standard library only.
#
# The shell reads only the next line and hands the file to /usr/bin/python3 (ansible-test admits
# /bin/sh, not a python3 path, as the interpreter line of a file outside plugins/modules); to Python
# that line is a string expression and does nothing.
"exec" "/usr/bin/python3" "-I" "$0" "$@"  # fmt: skip

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import secrets
import stat
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

DESCRIPTION = "Move landing-zone data through hot/warm/cold tiers and purge it by retention."
DEFAULT_CONFIG = "/etc/onprem/data-lifecycle.json"
DEFAULT_LOCK_FILE = "/run/lock/onprem-data-lifecycle.lock"
DEFAULT_BUFFER_BYTES = 1 << 20
TIERS = ("landing", "warm", "cold")
TRANSITIONS = (("landing", "warm"), ("landing", "cold"), ("warm", "cold"))
TMP_SUFFIX = ".dlc-tmp"
TMP_RE = re.compile(r"^\..*\.[0-9a-f]{16}\.dlc-tmp$")
DAY = 86400.0
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_LOCKED = 75
METRIC_PREFIX = "onprem_data_lifecycle"
CLASS_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
# Only the test suite sets this: it names steps at which the process kills itself.
FAILPOINT_ENV = "ONPREM_DLC_FAILPOINT"
_CONFIG_KEYS = {
    "tiers",
    "classes",
    "lock_file",
    "metrics_path",
    "link_within_filesystem",
    "buffer_bytes",
    "required_mountpoints",
    "verify_uncached",
}
_CLASS_KEYS = {"name", "directory", "hot_days", "warm_days", "retention_days"}


class ConfigError(Exception):
    """The configuration file is missing, unreadable or invalid."""


@dataclass(frozen=True)
class DataClass:
    """One data class: where it lives below each tier root and its windows in days."""

    name: str
    directory: str
    hot_days: float
    warm_days: float
    retention_days: float | None


@dataclass(frozen=True)
class Config:
    """Validated configuration."""

    tiers: dict[str, str]
    classes: tuple[DataClass, ...]
    lock_file: str = DEFAULT_LOCK_FILE
    metrics_path: str | None = None
    link_within_filesystem: bool = True
    buffer_bytes: int = DEFAULT_BUFFER_BYTES
    required_mountpoints: tuple[str, ...] = ()
    verify_uncached: bool = False

    def class_dir(self, tier: str, data_class: DataClass) -> str:
        """Return the directory of ``data_class`` in ``tier``."""
        return os.path.join(self.tiers[tier], data_class.directory)


@dataclass
class Stats:
    """What one run did; the source of the metrics file."""

    command: str
    moved_files: dict[tuple[str, str, str], int] = field(default_factory=dict)
    moved_bytes: dict[tuple[str, str, str], int] = field(default_factory=dict)
    purged_files: dict[str, int] = field(default_factory=dict)
    purged_bytes: dict[str, int] = field(default_factory=dict)
    conflicts: int = 0
    errors: int = 0
    stale_temporaries: int = 0

    def add_move(self, key: tuple[str, str, str], size: int) -> None:
        """Count one moved file of ``size`` bytes for (class, from, to)."""
        self.moved_files[key] = self.moved_files.get(key, 0) + 1
        self.moved_bytes[key] = self.moved_bytes.get(key, 0) + size

    def add_purge(self, name: str, size: int) -> None:
        """Count one purged file of ``size`` bytes for class ``name``."""
        self.purged_files[name] = self.purged_files.get(name, 0) + 1
        self.purged_bytes[name] = self.purged_bytes.get(name, 0) + size

    @property
    def failed(self) -> bool:
        """Whether the run must end with a non-zero exit status."""
        return bool(self.conflicts or self.errors)


# ----------------------------------------------------------------------------- logging


def log(priority: int, message: str) -> None:
    """Write one line with a syslog priority prefix (journald reads it as the level)."""
    stream = sys.stderr if priority <= 4 else sys.stdout
    stream.write(f"<{priority}>{message}\n")
    stream.flush()


def q(path: str) -> str:
    """Quote a path for a log line so that any byte sequence stays on one line."""
    return json.dumps(path)


def _failpoint(name: str) -> None:
    wanted = os.environ.get(FAILPOINT_ENV)
    if wanted and name in wanted.split(","):
        os.kill(os.getpid(), 9)


# ----------------------------------------------------------------------------- configuration


def _number(value: object, where: str, allow_null: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigError(f"{where}: expected a number >= 0{' or null' if allow_null else ''}, got {value!r}")
    return float(value)


def _number_or_null(value: object, where: str) -> float | None:
    return None if value is None else _number(value, where, allow_null=True)


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def parse_config(raw: object) -> Config:
    """Validate a decoded JSON document and return a Config; raise ConfigError naming the bad key."""
    if not isinstance(raw, dict):
        raise ConfigError("the configuration must be a JSON object")
    unknown = sorted(k for k in raw if k not in _CONFIG_KEYS and not k.startswith("_"))
    if unknown:
        raise ConfigError(f"unknown keys: {unknown}")
    tiers = raw.get("tiers")
    if not isinstance(tiers, dict) or sorted(tiers) != sorted(TIERS):
        raise ConfigError(f"tiers: expected an object with exactly the keys {list(TIERS)}")
    roots = {}
    for tier in TIERS:
        root = tiers[tier]
        if not isinstance(root, str) or not os.path.isabs(root):
            raise ConfigError(f"tiers.{tier}: expected an absolute path, got {root!r}")
        roots[tier] = os.path.normpath(root)
    for tier in TIERS:
        for other in TIERS:
            if tier != other and _inside(roots[tier], roots[other]):
                raise ConfigError(f"tiers.{tier} ({roots[tier]}) lies inside tiers.{other} ({roots[other]})")
    entries = raw.get("classes")
    if not isinstance(entries, list) or not entries:
        raise ConfigError("classes: expected a non-empty list")
    classes = []
    for index, entry in enumerate(entries):
        where = f"classes[{index}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: expected an object")
        bad = sorted(set(entry) - _CLASS_KEYS)
        missing = sorted(_CLASS_KEYS - set(entry))
        if bad or missing:
            raise ConfigError(f"{where}: unknown keys {bad}, missing keys {missing}")
        name, directory = entry["name"], entry["directory"]
        if not isinstance(name, str) or not CLASS_NAME_RE.match(name):
            raise ConfigError(f"{where}.name: expected [A-Za-z0-9_.-]+, got {name!r}")
        if not isinstance(directory, str) or not directory or os.path.isabs(directory):
            raise ConfigError(f"{where}.directory: expected a relative path, got {directory!r}")
        norm = os.path.normpath(directory)
        if norm == "." or norm.split("/")[0] == "..":
            raise ConfigError(f"{where}.directory: must stay below the tier root, got {directory!r}")
        hot = _number(entry["hot_days"], f"{where}.hot_days")
        warm = _number(entry["warm_days"], f"{where}.warm_days")
        keep = _number_or_null(entry["retention_days"], f"{where}.retention_days")
        if warm < hot:
            raise ConfigError(f"{where}: warm_days ({warm}) is less than hot_days ({hot})")
        if keep is not None and keep < warm:
            raise ConfigError(f"{where}: retention_days ({keep}) is less than warm_days ({warm})")
        classes.append(DataClass(name, norm, hot, warm, keep))
    names = [c.name for c in classes]
    if len(set(names)) != len(names):
        raise ConfigError(f"classes: duplicate names in {names}")
    for inner in classes:
        for outer in classes:
            if inner is not outer and _inside(inner.directory, outer.directory):
                raise ConfigError(f"classes: directory {inner.directory!r} lies inside {outer.directory!r}")
    lock_file = raw.get("lock_file", DEFAULT_LOCK_FILE)
    if not isinstance(lock_file, str) or not os.path.isabs(lock_file):
        raise ConfigError("lock_file: expected an absolute path")
    metrics_path = raw.get("metrics_path")
    if metrics_path is not None and (not isinstance(metrics_path, str) or not metrics_path.endswith(".prom")):
        raise ConfigError("metrics_path: expected a path ending in .prom, or null")
    flags = {"link_within_filesystem": True, "verify_uncached": False}
    for key in flags:
        if key in raw:
            if not isinstance(raw[key], bool):
                raise ConfigError(f"{key}: expected true or false")
            flags[key] = raw[key]
    size = raw.get("buffer_bytes", DEFAULT_BUFFER_BYTES)
    if isinstance(size, bool) or not isinstance(size, int) or size < 4096:
        raise ConfigError("buffer_bytes: expected an integer >= 4096")
    mounts = raw.get("required_mountpoints", [])
    if not isinstance(mounts, list) or not all(isinstance(m, str) and os.path.isabs(m) for m in mounts):
        raise ConfigError("required_mountpoints: expected a list of absolute paths")
    return Config(
        tiers=roots,
        classes=tuple(classes),
        lock_file=lock_file,
        metrics_path=metrics_path,
        link_within_filesystem=flags["link_within_filesystem"],
        buffer_bytes=size,
        required_mountpoints=tuple(mounts),
        verify_uncached=flags["verify_uncached"],
    )


def load_config(path: str) -> Config:
    """Read and validate the JSON configuration at ``path``."""
    try:
        with open(path, encoding="utf-8") as handle:
            raw = json.load(handle)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    return parse_config(raw)


# ----------------------------------------------------------------------------- lifecycle rules


def age_days(mtime: float, now: float) -> float:
    """Age in days of a file last modified at ``mtime``."""
    return (now - mtime) / DAY


def target_tier(age: float, data_class: DataClass) -> str:
    """The tier a file of ``age`` days belongs in: older than the hot window is warm, older than warm is cold."""
    if age > data_class.warm_days:
        return "cold"
    if age > data_class.hot_days:
        return "warm"
    return "landing"


def is_expired(age: float, data_class: DataClass) -> bool:
    """Whether a file of ``age`` days is past its class's retention (never, when retention is null)."""
    return data_class.retention_days is not None and age > data_class.retention_days


def is_temporary(name: str) -> bool:
    """Whether ``name`` is one of this tool's temporary copy names."""
    return bool(TMP_RE.match(name))


def temporary_name(name: str) -> str:
    """A fresh temporary name for a copy of ``name``; short enough for NAME_MAX."""
    return f".{name[:200]}.{secrets.token_hex(8)}{TMP_SUFFIX}"


def walk_files(root: str) -> Iterator[tuple[str, os.stat_result]]:
    """Yield (path, lstat) of every entry below ``root`` that is not a directory; sorted, symlinks not followed."""
    if not os.path.isdir(root):
        return
    for top, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(top, name)
            try:
                yield path, os.lstat(path)
            except FileNotFoundError:
                continue


# ----------------------------------------------------------------------------- file primitives


def fsync_dir(path: str) -> None:
    """Make a directory's entries durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(path: str) -> None:
    """Create ``path`` and missing parents; each new entry is made durable in its parent."""
    missing = []
    probe = path
    while not os.path.isdir(probe):
        missing.append(probe)
        probe = os.path.dirname(probe)
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(directory, 0o755)
        fsync_dir(os.path.dirname(directory))


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        written = os.write(fd, data)
        data = data[written:]


def hash_file(path: str, buffer_bytes: int, uncached: bool = False) -> tuple[str, int]:
    """Return (sha256 hex digest, size) of the file at ``path``."""
    digest = hashlib.sha256()
    buf = bytearray(buffer_bytes)
    view = memoryview(buf)
    size = 0
    with open(path, "rb", buffering=0) as handle:
        if uncached:
            # Clean pages of a file just fsynced are dropped, so the re-read comes from the device.
            os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        while True:
            count = handle.readinto(buf)
            if not count:
                break
            digest.update(view[:count])
            size += count
    return digest.hexdigest(), size


def copy_hashed(src: str, tmp: str, st: os.stat_result, buffer_bytes: int) -> str | None:
    """Copy ``src`` to the new file ``tmp`` hashing what is read; preserve mode, owner, times; fsync.

    Returns the sha256 of the bytes copied, or None when the source changed during the copy.
    """
    digest = hashlib.sha256()
    buf = bytearray(buffer_bytes)
    view = memoryview(buf)
    copied = 0
    with open(src, "rb", buffering=0) as source:
        out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            _failpoint("tmp-created")
            while True:
                count = source.readinto(buf)
                if not count:
                    break
                chunk = view[:count]
                digest.update(chunk)
                _write_all(out, chunk)
                copied += count
                _failpoint("partial-write")
            after = os.fstat(source.fileno())
            if copied != st.st_size or after.st_size != st.st_size or after.st_mtime_ns != st.st_mtime_ns:
                return None
            if os.geteuid() == 0:
                os.fchown(out, st.st_uid, st.st_gid)
            os.fchmod(out, stat.S_IMODE(st.st_mode))
            os.utime(out, ns=(st.st_atime_ns, st.st_mtime_ns))
            os.fsync(out)
        finally:
            os.close(out)
    _failpoint("tmp-synced")
    return digest.hexdigest()


def link_no_replace(existing: str, new: str) -> None:
    """Give ``existing`` the name ``new``; raise FileExistsError rather than replace anything."""
    try:
        os.link(existing, new)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        # A filesystem without hard links: we hold the lock, so nothing else creates ``new``.
        if os.path.lexists(new):
            raise FileExistsError(errno.EEXIST, "destination exists", new) from exc
        os.rename(existing, new)


def same_content(src: str, src_st: os.stat_result, dst: str, dst_st: os.stat_result, buffer_bytes: int) -> bool:
    """Whether ``dst`` holds exactly the bytes of ``src`` (same inode, or same size and sha256)."""
    if not stat.S_ISREG(dst_st.st_mode):
        return False
    if (src_st.st_dev, src_st.st_ino) == (dst_st.st_dev, dst_st.st_ino):
        return True
    if src_st.st_size != dst_st.st_size:
        return False
    return hash_file(src, buffer_bytes)[0] == hash_file(dst, buffer_bytes)[0]


# ----------------------------------------------------------------------------- move


@dataclass(frozen=True)
class MovePlan:
    """One file that belongs in a later tier."""

    data_class: DataClass
    source_tier: str
    target: str
    src: str
    dst: str
    size: int


def plan_moves(config: Config, now: float) -> Iterator[MovePlan]:
    """Yield a MovePlan for every file in landing or warm that has outgrown its tier."""
    for source_tier in ("landing", "warm"):
        for data_class in config.classes:
            root = config.class_dir(source_tier, data_class)
            for path, st in walk_files(root):
                if is_temporary(os.path.basename(path)):
                    continue
                if not stat.S_ISREG(st.st_mode):
                    log(4, f"skip non-regular class={data_class.name} path={q(path)}")
                    continue
                target = target_tier(age_days(st.st_mtime, now), data_class)
                if TIERS.index(target) <= TIERS.index(source_tier):
                    continue
                rel = os.path.relpath(path, root)
                dst = os.path.join(config.class_dir(target, data_class), rel)
                yield MovePlan(data_class, source_tier, target, path, dst, st.st_size)


def _describe(plan: MovePlan) -> str:
    return (
        f"class={plan.data_class.name} from={plan.source_tier} to={plan.target} "
        f"bytes={plan.size} src={q(plan.src)} dst={q(plan.dst)}"
    )


def _remove_source(src: str) -> None:
    os.unlink(src)
    fsync_dir(os.path.dirname(src))


def _finish_existing(config: Config, plan: MovePlan, src_st: os.stat_result, stats: Stats, dry_run: bool) -> None:
    """The destination exists: identical content completes an interrupted move, anything else is a conflict."""
    dst_st = os.lstat(plan.dst)
    if not same_content(plan.src, src_st, plan.dst, dst_st, config.buffer_bytes):
        stats.conflicts += 1
        log(3, f"conflict destination exists with different content, both kept {_describe(plan)}")
        return
    if dry_run:
        log(6, f"would-complete {_describe(plan)}")
        return
    # The copy may come from a run that died before its directory fsync: make it durable first.
    fd = os.open(plan.dst, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(os.path.dirname(plan.dst))
    _remove_source(plan.src)
    stats.add_move((plan.data_class.name, plan.source_tier, plan.target), plan.size)
    log(6, f"complete {_describe(plan)}")


def move_one(config: Config, plan: MovePlan, stats: Stats, dry_run: bool) -> None:
    """Move one file by the crash-safe protocol (see the module docstring)."""
    src_st = os.lstat(plan.src)
    if os.path.lexists(plan.dst):
        _finish_existing(config, plan, src_st, stats, dry_run)
        return
    if dry_run:
        log(6, f"would-move {_describe(plan)}")
        return
    dst_dir = os.path.dirname(plan.dst)
    make_dirs(dst_dir)
    key = (plan.data_class.name, plan.source_tier, plan.target)
    if config.link_within_filesystem and os.stat(dst_dir).st_dev == src_st.st_dev:
        # Same filesystem: a second name for the same inode needs no copy and cannot differ.
        try:
            os.link(plan.src, plan.dst)
        except FileExistsError:
            _finish_existing(config, plan, src_st, stats, dry_run)
            return
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK):
                raise
        else:
            _failpoint("linked")
            fsync_dir(dst_dir)
            _remove_source(plan.src)
            stats.add_move(key, plan.size)
            log(6, f"move {_describe(plan)} method=link")
            return
    tmp = os.path.join(dst_dir, temporary_name(os.path.basename(plan.dst)))
    try:
        digest = copy_hashed(plan.src, tmp, src_st, config.buffer_bytes)
        if digest is None:
            log(4, f"skip source changed during copy {_describe(plan)}")
            return
        reread, size = hash_file(tmp, config.buffer_bytes, uncached=config.verify_uncached)
        if reread != digest or size != plan.size:
            stats.errors += 1
            log(3, f"error verify failed copy={reread} source={digest} {_describe(plan)}")
            return
        try:
            link_no_replace(tmp, plan.dst)
        except FileExistsError:
            _finish_existing(config, plan, src_st, stats, dry_run)
            return
        _failpoint("renamed")
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    fsync_dir(dst_dir)
    _failpoint("dir-synced")
    _remove_source(plan.src)
    _failpoint("source-removed")
    stats.add_move(key, plan.size)
    log(6, f"move {_describe(plan)} method=copy sha256={digest}")


def sweep_temporaries(config: Config, tiers: tuple[str, ...], stats: Stats, dry_run: bool) -> None:
    """Remove temporaries left by a killed run (the lock is held: none of them is in use)."""
    for tier in tiers:
        for data_class in config.classes:
            for path, _st in walk_files(config.class_dir(tier, data_class)):
                if not is_temporary(os.path.basename(path)):
                    continue
                stats.stale_temporaries += 1
                if dry_run:
                    log(6, f"would-remove stale temporary path={q(path)}")
                    continue
                os.unlink(path)
                log(5, f"removed stale temporary path={q(path)}")


def prune_empty_dirs(root: str, now: float, min_age_days: float, dry_run: bool) -> None:
    """Remove empty directories below ``root`` (never ``root``) untouched for ``min_age_days``."""
    if dry_run or not os.path.isdir(root):
        return
    for top, _dirs, _files in os.walk(root, topdown=False):
        if top == root:
            continue
        try:
            if age_days(os.lstat(top).st_mtime, now) > min_age_days and not os.listdir(top):
                os.rmdir(top)
        except OSError:
            continue


def run_move(config: Config, now: float, stats: Stats, dry_run: bool) -> None:
    """The ``move`` command."""
    sweep_temporaries(config, ("warm", "cold"), stats, dry_run)
    for plan in plan_moves(config, now):
        try:
            move_one(config, plan, stats, dry_run)
        except OSError as exc:
            stats.errors += 1
            log(3, f"error {exc} {_describe(plan)}")
    for tier in ("landing", "warm"):
        for data_class in config.classes:
            prune_empty_dirs(config.class_dir(tier, data_class), now, data_class.hot_days, dry_run)


# ----------------------------------------------------------------------------- purge


def plan_purge(config: Config, now: float) -> Iterator[tuple[DataClass, str, int]]:
    """Yield (class, path, size) for files past retention in the cold tier, the last one every file reaches."""
    for data_class in config.classes:
        if data_class.retention_days is None:
            continue
        for path, st in walk_files(config.class_dir("cold", data_class)):
            if is_temporary(os.path.basename(path)) or not stat.S_ISREG(st.st_mode):
                continue
            if is_expired(age_days(st.st_mtime, now), data_class):
                yield data_class, path, st.st_size


def run_purge(config: Config, now: float, stats: Stats, dry_run: bool) -> None:
    """The ``purge`` command; ``dry_run`` prints the same list and deletes nothing."""
    sweep_temporaries(config, ("cold",), stats, dry_run)
    for data_class, path, size in plan_purge(config, now):
        if dry_run:
            log(6, f"would-delete class={data_class.name} tier=cold bytes={size} path={q(path)}")
            stats.add_purge(data_class.name, size)
            continue
        try:
            os.unlink(path)
        except OSError as exc:
            stats.errors += 1
            log(3, f"error {exc} class={data_class.name} path={q(path)}")
            continue
        stats.add_purge(data_class.name, size)
        log(6, f"delete class={data_class.name} tier=cold bytes={size} path={q(path)}")
    for data_class in config.classes:
        prune_empty_dirs(config.class_dir("cold", data_class), now, 0.0, dry_run)


# ----------------------------------------------------------------------------- status


def status_report(config: Config, now: float) -> dict[str, Any]:
    """Files, bytes, oldest age and pending work per class and tier."""
    report: dict[str, Any] = {"tiers": dict(config.tiers), "classes": {}, "temporaries": 0}
    for data_class in config.classes:
        per_tier: dict[str, dict[str, float]] = {}
        for tier in TIERS:
            files = size = due = 0
            oldest = 0.0
            for path, st in walk_files(config.class_dir(tier, data_class)):
                if is_temporary(os.path.basename(path)):
                    report["temporaries"] += 1
                    continue
                if not stat.S_ISREG(st.st_mode):
                    continue
                age = age_days(st.st_mtime, now)
                files += 1
                size += st.st_size
                oldest = max(oldest, age)
                outgrown = TIERS.index(target_tier(age, data_class)) > TIERS.index(tier)
                if outgrown or (tier == "cold" and is_expired(age, data_class)):
                    due += 1
            per_tier[tier] = {"files": files, "bytes": size, "oldest_days": round(oldest, 3), "due": due}
        report["classes"][data_class.name] = per_tier
    return report


# ----------------------------------------------------------------------------- metrics


def _labels(**labels: str) -> str:
    inner = ",".join(f'{key}="{value}"' for key, value in labels.items())
    return "{" + inner + "}"


def metrics_path_for(config: Config, command: str) -> str | None:
    """The .prom file of ``command`` (``{command}`` in the configured path is replaced)."""
    if config.metrics_path is None:
        return None
    return config.metrics_path.replace("{command}", command)


def previous_success(path: str, command: str) -> float | None:
    """The last-success timestamp recorded in an earlier metrics file, if any."""
    pattern = re.compile(rf'^{METRIC_PREFIX}_last_success_timestamp_seconds\{{command="{re.escape(command)}"\}} (\S+)$')
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                match = pattern.match(line.rstrip("\n"))
                if match:
                    return float(match.group(1))
    except (OSError, ValueError):
        return None
    return None


def render_metrics(config: Config, stats: Stats, started: float, duration: float, last_success: float | None) -> str:
    """The text exposition of one run's figures, one zero-valued series for every class and transition."""
    cmd = stats.command
    lines: list[str] = []

    def family(name: str, help_text: str, samples: list[tuple[str, float]]) -> None:
        lines.append(f"# HELP {METRIC_PREFIX}_{name} {help_text}")
        lines.append(f"# TYPE {METRIC_PREFIX}_{name} gauge")
        for labels, value in samples:
            text = str(value) if isinstance(value, int) else f"{value:.3f}"
            lines.append(f"{METRIC_PREFIX}_{name}{labels} {text}")

    transitions = [(c.name, a, b) for c in config.classes for a, b in TRANSITIONS]
    if cmd == "move":
        family(
            "moved_files",
            "Files moved by the last run, per class and tier transition.",
            [
                (_labels(command=cmd, **{"class": n, "from": a, "to": b}), stats.moved_files.get((n, a, b), 0))
                for n, a, b in transitions
            ],
        )
        family(
            "moved_bytes",
            "Bytes moved by the last run, per class and tier transition.",
            [
                (_labels(command=cmd, **{"class": n, "from": a, "to": b}), stats.moved_bytes.get((n, a, b), 0))
                for n, a, b in transitions
            ],
        )
    if cmd == "purge":
        family(
            "purged_files",
            "Files deleted past retention by the last run, per class.",
            [
                (_labels(command=cmd, tier="cold", **{"class": c.name}), stats.purged_files.get(c.name, 0))
                for c in config.classes
            ],
        )
        family(
            "purged_bytes",
            "Bytes deleted past retention by the last run, per class.",
            [
                (_labels(command=cmd, tier="cold", **{"class": c.name}), stats.purged_bytes.get(c.name, 0))
                for c in config.classes
            ],
        )
    one = _labels(command=cmd)
    family("conflicts", "Destinations found with other content by the last run (both kept).", [(one, stats.conflicts)])
    family("errors", "Files or checks the last run failed on.", [(one, stats.errors)])
    family("stale_temporaries_removed", "Temporaries of killed runs removed.", [(one, stats.stale_temporaries)])
    family("last_run_success", "1 when the last run had no conflicts or errors.", [(one, 0 if stats.failed else 1)])
    family("last_run_timestamp_seconds", "Start of the last run, seconds since the epoch.", [(one, float(started))])
    family("last_run_duration_seconds", "Wall time of the last run.", [(one, float(duration))])
    if last_success is not None:
        family(
            "last_success_timestamp_seconds",
            "End of the last run without conflicts or errors, seconds since the epoch.",
            [(one, float(last_success))],
        )
    return "\n".join(lines) + "\n"


def write_atomic(path: str, text: str) -> None:
    """Replace ``path`` with ``text`` so that a reader sees the old or the new file, never a part."""
    directory = os.path.dirname(path) or "."
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        _write_all(fd, memoryview(text.encode("utf-8")))
        os.fchmod(fd, 0o644)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.rename(tmp, path)
    except OSError:
        os.unlink(tmp)
        raise


# ----------------------------------------------------------------------------- entry point


def acquire_lock(path: str, wait_s: float = 0.0) -> int | None:
    """Take the single-instance lock, waiting up to ``wait_s``; None when another instance keeps it."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                return None
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))


def missing_mountpoints(config: Config) -> list[str]:
    """Required mountpoints that are not mounted (a tier there would fill the filesystem below)."""
    return [path for path in config.required_mountpoints if not os.path.ismount(path)]


def run_command(config: Config, command: str, dry_run: bool, now: float, lock_wait: float = 0.0) -> int:
    """Run ``move`` or ``purge`` under the lock, write metrics, return the exit status."""
    lock = acquire_lock(config.lock_file, lock_wait)
    if lock is None:
        log(4, f"another instance holds {config.lock_file}; nothing done")
        return EXIT_LOCKED
    started_wall, started = time.time(), time.monotonic()
    stats = Stats(command)
    try:
        missing = missing_mountpoints(config)
        if missing:
            stats.errors += 1
            log(3, f"error required mountpoints not mounted: {missing}; nothing done")
        elif not os.path.isdir(config.tiers["landing"]):
            stats.errors += 1
            log(3, f"error landing tier {q(config.tiers['landing'])} does not exist; nothing done")
        elif command == "move":
            run_move(config, now, stats, dry_run)
        else:
            run_purge(config, now, stats, dry_run)
        duration = time.monotonic() - started
        path = metrics_path_for(config, command)
        if path is not None and not dry_run:
            last_success = time.time() if not stats.failed else previous_success(path, command)
            try:
                write_atomic(path, render_metrics(config, stats, started_wall, duration, last_success))
            except OSError as exc:
                log(3, f"error writing metrics {q(path)}: {exc}")
                return EXIT_FAILED
        files = sum(stats.moved_files.values()) + sum(stats.purged_files.values())
        size = sum(stats.moved_bytes.values()) + sum(stats.purged_bytes.values())
        summary = (
            f"done command={command} dry_run={str(dry_run).lower()} files={files} bytes={size} "
            f"conflicts={stats.conflicts} errors={stats.errors} stale_temporaries={stats.stale_temporaries} "
            f"seconds={duration:.3f}"
        )
        log(3 if stats.failed else 6, summary)
        return EXIT_FAILED if stats.failed else EXIT_OK
    finally:
        os.close(lock)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="onprem-data-lifecycle", description=DESCRIPTION)
    parser.add_argument("--config", default=DEFAULT_CONFIG, help=f"JSON configuration (default {DEFAULT_CONFIG})")
    parser.add_argument("--now", type=float, default=None, help="evaluate ages as of this epoch time (planning)")
    parser.add_argument(
        "--lock-wait", type=float, default=0.0, metavar="SECONDS", help="wait this long for a running instance"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("move", "move files that outgrew their tier"), ("purge", "delete cold files past retention")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--dry-run", action="store_true", help="print what would be done, change nothing")
    sub.add_parser("status", help="print files, bytes and pending work per class and tier as JSON")
    sub.add_parser("check-config", help="validate the configuration and exit")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        log(3, f"error configuration: {exc}")
        return EXIT_CONFIG
    now = time.time() if args.now is None else args.now
    if args.command == "check-config":
        log(6, f"configuration ok: {len(config.classes)} classes")
        return EXIT_OK
    if args.command == "status":
        sys.stdout.write(json.dumps(status_report(config, now), indent=2, sort_keys=True) + "\n")
        return EXIT_OK
    return run_command(config, args.command, args.dry_run, now, args.lock_wait)


if __name__ == "__main__":
    # SystemExit rather than sys.exit: ansible-test's pylint bans sys.exit calls below plugins/module_utils.
    raise SystemExit(main())
