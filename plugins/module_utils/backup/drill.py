#!/bin/sh
# Copyright: onprem.gpu_server maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# onprem-backup-drill: prove that a backup restores to what was backed up.
#
#     onprem-backup-drill manifest --out FILE [--exclude PATTERN]... PATH...   sha256 of every regular file under PATH,
#                                                                               as sha256sum writes
#     onprem-backup-drill compare --kind K --name N (--expected DIR | --manifest FILE [--strip PREFIX]) --restored DIR
#                                 [--age-seconds S] [--textfile-dir DIR] [--restore-failed]
#     onprem-backup-drill failed --kind K --name N --reason TEXT [--textfile-dir DIR]   nothing to restore: a failure
#     onprem-backup-drill record --kind K --name N --action backup|check --result R --textfile-dir DIR
#                                 a backup job's run (R: systemd's $SERVICE_RESULT, "success" or what failed)
#
# `manifest` runs before a file backup (restic): the manifest is backed up with the files, so a drill compares the
# restored files with what they were when they were read. `compare` walks the restored tree and compares it with a
# source tree (a ZFS snapshot's directory, .zfs/snapshot/<name>) or a manifest: a file missing, extra or different
# (content, or a link's target) is a mismatch. The verdict goes to the node_exporter textfile directory as
# onprem_backup_drill_* {kind, name}; exit 0: identical, 1: mismatches (listed on stderr, the first 20), 2: the drill
# could not run. The roles copy this file, unchanged; the shell reads only the next line and hands the file to
# /usr/bin/python3, to which that line is a string expression.
"exec" "/usr/bin/python3" "-I" "$0" "$@"  # fmt: skip

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import os
import stat
import sys
import time

CHUNK = 1 << 20
SHOWN = 20


class DrillError(Exception):
    """The drill could not run (a path missing, a manifest unreadable)."""


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def tree(root: str) -> dict[str, str]:
    """{path relative to root: 'sha256:<hex>' | 'link:<target>'} for every regular file and symbolic link under
    root (directories are implied by their contents; sockets, FIFOs and devices are not backed up)."""
    if not os.path.isdir(root):
        raise DrillError(f"{root}: not a directory")
    out: dict[str, str] = {}
    for directory, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files) + [d for d in dirs if os.path.islink(os.path.join(directory, d))]:
            path = os.path.join(directory, name)
            rel = os.path.relpath(path, root)
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                out[rel] = "link:" + os.readlink(path)
            elif stat.S_ISREG(mode):
                out[rel] = "sha256:" + file_sha256(path)
    return out


def excluded(path: str, patterns: list[str]) -> bool:
    """As restic's --exclude reads the two kinds of pattern used here: an absolute glob matches the whole path, any
    other glob a file or directory name on it."""
    for pattern in patterns:
        if pattern.startswith("/"):
            if fnmatch.fnmatchcase(path, pattern) or fnmatch.fnmatchcase(path, pattern.rstrip("/") + "/*"):
                return True
        elif any(fnmatch.fnmatchcase(part, pattern) for part in path.split("/")):
            return True
    return False


def write_manifest(out: str, roots: list[str], excludes: list[str] | None = None) -> int:
    """sha256sum's format (links as a comment-free 'link:' line), absolute paths, the manifest itself and what the
    backup excludes left out (the manifest is backed up beside what it lists); returns the number of entries."""
    lines = []
    for root in roots:
        for rel, value in sorted(tree(root).items()):
            path = os.path.join(root, rel)
            if path == out or excluded(path, excludes or []):
                continue
            lines.append(
                f"{value.split(':', 1)[1] if value.startswith('sha256:') else value}  {os.path.join(root, rel)}"
            )
    tmp = f"{out}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + ("\n" if lines else ""))
    os.replace(tmp, out)
    return len(lines)


def read_manifest(path: str, strip: str = "/") -> dict[str, str]:
    """A manifest as tree() gives it, its paths made relative to strip."""
    out: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                line = line.rstrip("\n")
                if not line:
                    continue
                value, sep, name = line.partition("  ")
                if not sep:
                    raise DrillError(f"{path}:{number}: not a manifest line")
                rel = os.path.relpath(name, strip)
                if rel.startswith(".."):
                    raise DrillError(f"{path}:{number}: {name} is not below {strip}")
                out[rel] = value if value.startswith("link:") else "sha256:" + value
    except OSError as exc:
        raise DrillError(f"{path}: {exc.strerror}") from exc
    return out


def compare(expected: dict[str, str], restored: dict[str, str]) -> list[str]:
    """Every difference, in path order: 'missing <path>', 'extra <path>', 'differs <path>'."""
    out = []
    for rel in sorted(set(expected) | set(restored)):
        if rel not in restored:
            out.append(f"missing {rel}")
        elif rel not in expected:
            out.append(f"extra {rel}")
        elif expected[rel] != restored[rel]:
            out.append(f"differs {rel}")
    return out


def metrics(kind: str, name: str, files: int, mismatches: int, ran: bool, now: float, age: float | None) -> str:
    labels = f'kind="{kind}",name="{name}"'
    lines = [
        "# HELP onprem_backup_drill_ok 1 when the last restore drill restored exactly what was backed up.",
        "# TYPE onprem_backup_drill_ok gauge",
        f"onprem_backup_drill_ok{{{labels}}} {1 if ran and mismatches == 0 else 0}",
        "# HELP onprem_backup_drill_last_run_timestamp_seconds When the last restore drill ran.",
        "# TYPE onprem_backup_drill_last_run_timestamp_seconds gauge",
        f"onprem_backup_drill_last_run_timestamp_seconds{{{labels}}} {now:.3f}",
        "# HELP onprem_backup_drill_files Files the last restore drill compared.",
        "# TYPE onprem_backup_drill_files gauge",
        f"onprem_backup_drill_files{{{labels}}} {files}",
        "# HELP onprem_backup_drill_mismatched_files Files missing, extra or different after the last restore.",
        "# TYPE onprem_backup_drill_mismatched_files gauge",
        f"onprem_backup_drill_mismatched_files{{{labels}}} {mismatches}",
    ]
    if age is not None:
        lines += [
            "# HELP onprem_backup_age_seconds Age of the newest backup the last drill restored.",
            "# TYPE onprem_backup_age_seconds gauge",
            f"onprem_backup_age_seconds{{{labels}}} {age:.0f}",
        ]
    return "\n".join(lines) + "\n"


def record(directory: str, kind: str, name: str, action: str, ok: bool, now: float) -> str:
    """onprem_backup_<action>_ok and _last_run_timestamp_seconds of a backup job's run, and the time of its last
    success, kept from the previous file when this run failed; returns the file written."""
    labels = f'kind="{kind}",name="{name}"'
    path = os.path.join(directory, f"onprem_backup_{kind}_{name}_{action}.prom")
    success_metric = f"onprem_backup_{action}_last_success_timestamp_seconds"
    success = now if ok else None
    if not ok:
        try:
            with open(path, encoding="utf-8") as handle:
                for line in handle:
                    if line.startswith(success_metric + "{"):
                        success = float(line.split()[-1])
        except (OSError, ValueError):
            pass
    lines = [
        f"# HELP onprem_backup_{action}_ok 1 when the last {action} of the backup succeeded.",
        f"# TYPE onprem_backup_{action}_ok gauge",
        f"onprem_backup_{action}_ok{{{labels}}} {1 if ok else 0}",
        f"# HELP onprem_backup_{action}_last_run_timestamp_seconds When the last {action} ended.",
        f"# TYPE onprem_backup_{action}_last_run_timestamp_seconds gauge",
        f"onprem_backup_{action}_last_run_timestamp_seconds{{{labels}}} {now:.3f}",
    ]
    if success is not None:
        lines += [
            f"# HELP {success_metric} When the last successful {action} ended.",
            f"# TYPE {success_metric} gauge",
            f"{success_metric}{{{labels}}} {success:.3f}",
        ]
    atomic_write(path, "\n".join(lines) + "\n")
    return path


def atomic_write(path: str, text: str) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def write_textfile(directory: str | None, kind: str, name: str, text: str) -> None:
    if not directory:
        return
    atomic_write(os.path.join(directory, f"onprem_backup_drill_{kind}_{name}.prom"), text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="onprem-backup-drill", description="restore drill verdicts")
    sub = parser.add_subparsers(dest="action", required=True)
    manifest = sub.add_parser("manifest")
    manifest.add_argument("--out", required=True)
    manifest.add_argument("--exclude", action="append", default=[], help="a pattern the backup excludes")
    manifest.add_argument("paths", nargs="+")
    check = sub.add_parser("compare")
    check.add_argument("--kind", required=True, choices=["zfs", "restic"])
    check.add_argument("--name", required=True)
    source = check.add_mutually_exclusive_group(required=True)
    source.add_argument("--expected")
    source.add_argument("--manifest")
    check.add_argument("--strip", default="/")
    check.add_argument("--restored", required=True)
    check.add_argument("--age-seconds", type=float)
    check.add_argument("--textfile-dir")
    check.add_argument(
        "--restore-failed",
        action="store_true",
        help="the restore that filled --restored reported an error: the drill fails whatever the trees say",
    )
    failed = sub.add_parser("failed", help="record a drill that could not restore anything")
    failed.add_argument("--kind", required=True, choices=["zfs", "restic"])
    failed.add_argument("--name", required=True)
    failed.add_argument("--reason", required=True)
    failed.add_argument("--textfile-dir")
    recorded = sub.add_parser("record", help="record a backup job's run (a systemd unit's ExecStopPost)")
    recorded.add_argument("--kind", required=True, choices=["zfs", "restic"])
    recorded.add_argument("--name", required=True)
    recorded.add_argument("--action", dest="action_name", required=True, choices=["backup", "check"])
    recorded.add_argument("--result", required=True, help="systemd's $SERVICE_RESULT: success, or what failed")
    recorded.add_argument("--textfile-dir", required=True)
    args = parser.parse_args(argv)
    if args.action == "record":
        record(args.textfile_dir, args.kind, args.name, args.action_name, args.result == "success", time.time())
        return 0
    if args.action == "failed":
        sys.stderr.write(f"onprem-backup-drill: {args.kind} {args.name}: {args.reason}\n")
        write_textfile(
            args.textfile_dir, args.kind, args.name, metrics(args.kind, args.name, 0, 0, False, time.time(), None)
        )
        return 2
    try:
        if args.action == "manifest":
            count = write_manifest(args.out, [os.path.abspath(p) for p in args.paths], args.exclude)
            sys.stdout.write(f"manifest: {count} entries in {args.out}\n")
            return 0
        expected = tree(args.expected) if args.expected else read_manifest(args.manifest, args.strip)
        restored = tree(args.restored)
        if args.manifest:
            # The manifest itself is backed up beside what it lists: the live one, or the copy restored with the rest.
            manifest = os.path.abspath(args.manifest)
            restored_root = os.path.abspath(args.restored)
            inside = manifest.startswith(restored_root + os.sep)
            restored.pop(os.path.relpath(manifest, restored_root if inside else args.strip), None)
    except (DrillError, OSError) as exc:
        sys.stderr.write(f"onprem-backup-drill: {exc}\n")
        if args.action == "compare":
            write_textfile(
                args.textfile_dir, args.kind, args.name, metrics(args.kind, args.name, 0, 0, False, time.time(), None)
            )
        return 2
    differences = compare(expected, restored)
    write_textfile(
        args.textfile_dir,
        args.kind,
        args.name,
        metrics(
            args.kind,
            args.name,
            len(expected),
            len(differences),
            not args.restore_failed,
            time.time(),
            args.age_seconds,
        ),
    )
    for line in differences[:SHOWN]:
        sys.stderr.write(f"onprem-backup-drill: {args.kind} {args.name}: {line}\n")
    if len(differences) > SHOWN:
        sys.stderr.write(f"onprem-backup-drill: ... and {len(differences) - SHOWN} more\n")
    verdict = "identical" if not differences else f"{len(differences)} of {len(expected)} files differ"
    if args.restore_failed:
        verdict = f"the restore reported an error, {verdict}"
    sys.stdout.write(f"{args.kind} {args.name}: {len(expected)} files compared, {verdict}\n")
    return 1 if differences or args.restore_failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
