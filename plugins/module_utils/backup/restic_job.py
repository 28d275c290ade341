#!/bin/sh
# Copyright: onprem.gpu_server maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# onprem-config-backup: the configuration backup with restic, and its check and restore drill.
#
#     onprem-config-backup --config FILE backup    manifest, restic backup, forget and prune by the keep policy
#     onprem-config-backup --config FILE check     restic check (the repository's structure; --read-data-subset)
#     onprem-config-backup --config FILE drill     restore the newest snapshot into a scratch directory, compare it
#                                                   with the manifest backed up in it (onprem-backup-drill), clean up
#
# FILE is the JSON the config_backup role writes: repository, password file, paths, keep policy, tag, where the
# manifest, the scratch directory, the drill program and the textfile directory are. Every action writes its
# verdict as node_exporter textfile metrics (onprem_backup_*{kind="restic", name}) and exits 0 when it succeeded,
# 1 when it did not (restic's message on stderr). The role copies this file unchanged; the shell reads only the
# next line and hands the file to /usr/bin/python3, to which that line is a string expression.
"exec" "/usr/bin/python3" "-I" "$0" "$@"  # fmt: skip

from __future__ import annotations

import argparse
import calendar
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time


def restic_env(config: dict) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "RESTIC_REPOSITORY": config["repository"],
            "RESTIC_PASSWORD_FILE": config["password_file"],
            "RESTIC_CACHE_DIR": config["cache_dir"],
        }
    )
    env.pop("RESTIC_PASSWORD", None)
    return env


def restic(config: dict, *args: str, capture: bool = False) -> subprocess.CompletedProcess:
    argv = [config["restic"], *config.get("options", []), *args]
    sys.stdout.write("+ restic " + " ".join(args) + "\n")
    sys.stdout.flush()
    return subprocess.run(
        argv,
        env=restic_env(config),
        stdout=subprocess.PIPE if capture else None,
        text=True,
        check=False,
    )


def snapshot_age(stamp: str, now: float) -> float:
    """Seconds since restic's snapshot time (RFC 3339 with nanoseconds and an offset)."""
    found = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)$", stamp)
    if not found:
        raise ValueError(f"unreadable snapshot time {stamp!r}")
    seconds = calendar.timegm(time.strptime(found.group(1), "%Y-%m-%dT%H:%M:%S"))
    if found.group(2) != "Z":
        sign = 1 if found.group(2)[0] == "+" else -1
        hours, minutes = found.group(2)[1:].split(":")
        seconds -= sign * (int(hours) * 3600 + int(minutes) * 60)
    return now - seconds


def record(config: dict, action: str, ok: bool) -> None:
    """The action's verdict as textfile metrics, through onprem-backup-drill record (one writer for every kind)."""
    if not config.get("textfile_dir"):
        return
    argv = [config["drill"], "record", "--kind", "restic", "--name", config["name"], "--action", action]
    argv += ["--result", "success" if ok else "failed", "--textfile-dir", config["textfile_dir"]]
    subprocess.run(argv, check=False)


def present(paths: list[str]) -> list[str]:
    """The configured paths that exist here (/etc/pve only on Proxmox VE); the others are named, not fatal."""
    out = []
    for path in paths:
        if os.path.lexists(path):
            out.append(path)
        else:
            sys.stdout.write(f"onprem-config-backup: {path} does not exist here, not backed up\n")
    return out


def backup(config: dict) -> int:
    paths = present(config["paths"])
    if not paths:
        sys.stderr.write("onprem-config-backup: none of the configured paths exists\n")
        return 1
    os.makedirs(os.path.dirname(config["manifest"]), mode=0o700, exist_ok=True)
    excludes = [arg for pattern in config.get("exclude", []) for arg in ("--exclude", pattern)]
    made = subprocess.run([config["drill"], "manifest", "--out", config["manifest"], *excludes, *paths], check=False)
    if made.returncode != 0:
        return 1
    tag = config["tag"]
    if restic(config, "backup", "--tag", tag, *excludes, *paths, config["manifest"]).returncode != 0:
        return 1
    keep = [arg for key, value in sorted(config["keep"].items()) if value for arg in (f"--keep-{key}", str(value))]
    scope = ["--tag", tag, "--host", socket.gethostname(), "--group-by", "host,tags"]
    return restic(config, "forget", *scope, *keep, "--prune").returncode


def check(config: dict) -> int:
    subset = config.get("check_read_data_subset")
    return restic(config, "check", *(["--read-data-subset", subset] if subset else [])).returncode


def drill(config: dict) -> int:
    tag = config["tag"]
    # This host's snapshots: one repository may hold several hosts' (restic's host is the hostname).
    host = socket.gethostname()
    # --no-cache: the drill reads the repository's own tree packs, not the local copies of them.
    listed = restic(
        config, "--no-cache", "snapshots", "--json", "--tag", tag, "--host", host, "--latest", "1", capture=True
    )
    try:
        snapshots = json.loads(listed.stdout or "null") if listed.returncode == 0 else None
    except ValueError:
        snapshots = None
    if not snapshots:
        reason = f"no snapshot tagged {tag} to restore"
        argv = [config["drill"], "failed", "--kind", "restic", "--name", config["name"], "--reason", reason]
        return subprocess.run(argv + textfile_args(config), check=False).returncode or 2
    newest = max(snapshots, key=lambda snap: snap["time"])
    os.makedirs(config["scratch_dir"], mode=0o700, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="restore.", dir=config["scratch_dir"])
    try:
        restored = restic(config, "--no-cache", "restore", newest["id"], "--target", scratch)
        manifest = os.path.join(scratch, config["manifest"].lstrip("/"))
        argv = [
            config["drill"], "compare", "--kind", "restic", "--name", config["name"], "--manifest", manifest,
            "--strip", "/", "--restored", scratch, "--age-seconds",
            f"{snapshot_age(newest['time'], time.time()):.0f}", *textfile_args(config),
        ]  # fmt: skip
        if restored.returncode != 0:
            argv.append("--restore-failed")
        return subprocess.run(argv, check=False).returncode
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def textfile_args(config: dict) -> list[str]:
    return ["--textfile-dir", config["textfile_dir"]] if config.get("textfile_dir") else []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="onprem-config-backup", description="configuration backups with restic")
    parser.add_argument("--config", required=True)
    parser.add_argument("action", choices=["backup", "check", "drill"])
    args = parser.parse_args(argv)
    try:
        with open(args.config, encoding="utf-8") as handle:
            config = json.load(handle)
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"onprem-config-backup: {args.config}: {exc}\n")
        return 2
    rc = {"backup": backup, "check": check, "drill": drill}[args.action](config)
    if args.action != "drill":
        # The drill writes its own verdict (onprem_backup_drill_*) through onprem-backup-drill.
        record(config, args.action, rc == 0)
    return 0 if rc == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
