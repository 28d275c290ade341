#!/bin/sh
# Copyright: onprem.gpu_server maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# onprem-zfs-drill: restore the newest replica of a data class from the backup target and compare it with the
# source's snapshot of the same name.
#
#     onprem-zfs-drill --config FILE CLASS
#
# FILE is the JSON the zfs_replication role writes: the drill program (onprem-backup-drill), the textfile directory,
# syncoid's arguments (key, port, known_hosts) and per class the source dataset, the replica (USER@HOST:DATASET)
# and the scratch dataset. The newest snapshot of the replica is pulled whole (syncoid --no-sync-snap --no-stream:
# nothing is written on the target) into the scratch dataset, mounted, compared file by file with
# <source mountpoint>/.zfs/snapshot/<the same snapshot> by onprem-backup-drill, and destroyed. The verdict and the
# snapshot's age go to the textfile directory as onprem_backup_drill_*{kind="zfs", name=CLASS}; exit 0 when the
# restore is identical, 1 when it is not or could not be made. The role copies this file unchanged; the shell reads
# only the next line and hands the file to /usr/bin/python3, to which that line is a string expression.
"exec" "/usr/bin/python3" "-I" "$0" "$@"  # fmt: skip

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

MARK = "onprem:drill"


def zfs(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["zfs", *args], capture_output=True, text=True, check=False)


def value(dataset: str, prop: str) -> str:
    done = zfs("get", "-H", "-p", "-o", "value", prop, dataset)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip())
    return done.stdout.strip()


def failed(config: dict, name: str, reason: str) -> int:
    argv = [config["drill"], "failed", "--kind", "zfs", "--name", name, "--reason", reason]
    subprocess.run([*argv, "--textfile-dir", config["textfile_dir"]], check=False)
    return 1


def drill(config: dict, name: str) -> int:
    cls = config["classes"][name]
    scratch = cls["scratch"]
    if zfs("list", "-H", "-o", "name", scratch).returncode == 0:
        # What an earlier drill left (it was killed): destroyed only when it carries the drill's mark.
        if value(scratch, MARK) != "scratch":
            return failed(config, name, f"{scratch} exists and is not a drill's scratch copy: not touched")
        zfs("destroy", "-r", scratch)
    pulled = subprocess.run(
        ["/usr/sbin/syncoid", *config["syncoid_args"], "--no-sync-snap", "--no-stream", cls["replica"], scratch],
        check=False,
    )
    try:
        if zfs("list", "-H", "-o", "name", scratch).returncode != 0:
            return failed(config, name, f"nothing restored from {cls['replica']} (syncoid exit {pulled.returncode})")
        zfs("set", f"{MARK}=scratch", scratch)
        snapshots = zfs("list", "-H", "-o", "name", "-t", "snapshot", "-s", "createtxg", scratch).stdout.split()
        if not snapshots:
            return failed(config, name, f"{cls['replica']} has no snapshot")
        snap = snapshots[-1].split("@", 1)[1]
        if value(scratch, "mounted") != "yes":
            zfs("mount", scratch)
        expected = f"{value(cls['source'], 'mountpoint')}/.zfs/snapshot/{snap}"
        age = time.time() - float(value(f"{cls['source']}@{snap}", "creation"))
        argv = [
            config["drill"], "compare", "--kind", "zfs", "--name", name, "--expected", expected,
            "--restored", value(scratch, "mountpoint"), "--age-seconds", f"{age:.0f}",
            "--textfile-dir", config["textfile_dir"],
        ]  # fmt: skip
        if pulled.returncode != 0:
            argv.append("--restore-failed")
        sys.stdout.write(f"comparing {cls['replica']}@{snap} with {expected}\n")
        sys.stdout.flush()
        return 0 if subprocess.run(argv, check=False).returncode == 0 else 1
    except RuntimeError as exc:
        return failed(config, name, str(exc))
    finally:
        if zfs("list", "-H", "-o", "name", scratch).returncode == 0 and value(scratch, MARK) == "scratch":
            zfs("destroy", "-r", scratch)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="onprem-zfs-drill", description="restore drill of a replicated class")
    parser.add_argument("--config", required=True)
    parser.add_argument("name")
    args = parser.parse_args(argv)
    try:
        with open(args.config, encoding="utf-8") as handle:
            config = json.load(handle)
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"onprem-zfs-drill: {args.config}: {exc}\n")
        return 2
    if args.name not in config.get("classes", {}):
        sys.stderr.write(f"onprem-zfs-drill: {args.name} is not a replicated class ({', '.join(config['classes'])})\n")
        return 2
    return drill(config, args.name)


if __name__ == "__main__":
    raise SystemExit(main())
