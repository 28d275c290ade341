#!/bin/sh
# Copyright: onprem.gpu_server maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# onprem-llm-stage: copy a model from the data lake to the fast model store, verified, and check it before a
# serving replica starts.
#
#     onprem-llm-stage stage  --source SRC --dest DIR --sha256 HEX   copy SRC into DIR/<name of SRC>, verified
#     onprem-llm-stage verify --dest DIR --sha256 HEX                 the staged copy is whole and unchanged
#
# SRC is one file (a GGUF: HEX is its SHA-256) or a directory holding a SHA256SUMS manifest (`sha256sum`'s
# format; HEX is the manifest's own SHA-256, so the plan pins every file through one value): the listed files
# are copied, nothing else. The copy goes to a temporary directory beside DIR and is hashed as it is written;
# only a copy whose hashes match replaces DIR (a rename), so a replica never sees a partial or wrong copy, and
# a copy already staged with the same HEX is left alone. DIR/.onprem-staged.json records every file's size,
# modification time and hash; `verify` compares size and time, and hashes again any file whose size or time
# changed (a file rewritten in place or cut short fails; bit rot under an unchanged file is the pool's
# checksums' to find). Exit 0: staged or verified; 1: refused (message on stderr); output: one JSON line.
#
# The llm_serving role copies this file, unchanged, to /usr/local/sbin/onprem-llm-stage. The shell reads only
# the next line and hands the file to /usr/bin/python3; to Python that line is a string expression.
"exec" "/usr/bin/python3" "-I" "$0" "$@"  # fmt: skip

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from typing import Any

MARK = ".onprem-staged.json"
MANIFEST = "SHA256SUMS"
CHUNK = 8 << 20


class Refused(Exception):
    """The copy or the check cannot be trusted; the message says why."""


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(path: str) -> dict[str, str]:
    """{relative path: sha256} from a sha256sum-style file; paths may not leave the directory."""
    files: dict[str, str] = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            digest, sep, name = line.partition("  ")
            name = name.lstrip("*")
            parts = name.split("/")
            if not sep or len(digest) != 64 or not name or ".." in parts or name.startswith("/"):
                raise Refused(f"{path}:{number}: expected '<sha256>  <relative path>', got {line[:80]!r}")
            files[name] = digest.lower()
    if not files:
        raise Refused(f"{path} lists no file")
    return files


def copy_hashed(src: str, dst: str) -> str:
    """Copy src to dst, hashing what is read; the data reach the disk before this returns."""
    digest = hashlib.sha256()
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    with open(src, "rb") as reader, open(dst, "wb") as writer:
        while block := reader.read(CHUNK):
            digest.update(block)
            writer.write(block)
        writer.flush()
        os.fsync(writer.fileno())
    return digest.hexdigest()


def _entry(path: str, digest: str) -> dict[str, Any]:
    st = os.stat(path)
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}


def stage(source: str, dest: str, want: str) -> dict[str, Any]:
    source = source.rstrip("/")
    name = os.path.basename(source)
    if not os.path.exists(source):
        raise Refused(f"{source} does not exist (the model's source in the data lake)")
    try:
        verify(dest, want)
        return {"changed": False, "dest": dest, "message": "already staged"}
    except Refused:
        pass
    started = time.monotonic()
    if os.path.isdir(source):
        manifest = os.path.join(source, MANIFEST)
        if not os.path.isfile(manifest):
            raise Refused(f"{source} is a directory without {MANIFEST}: the plan's sha256 pins that manifest")
        plan: dict[str, str] = {f"{name}/{MANIFEST}": want}
        plan.update({f"{name}/{rel}": digest for rel, digest in read_manifest(manifest).items()})
        sources = {f"{name}/{MANIFEST}": manifest}
        sources.update({f"{name}/{rel}": os.path.join(source, rel) for rel in read_manifest(manifest)})
    else:
        plan, sources = {name: want}, {name: source}
    tmp = f"{dest}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    files: dict[str, Any] = {}
    total = 0
    try:
        for rel, expected in plan.items():
            if not os.path.isfile(sources[rel]):
                raise Refused(f"{sources[rel]} is listed in {MANIFEST} but missing")
            got = copy_hashed(sources[rel], os.path.join(tmp, rel))
            if got != expected:
                raise Refused(f"checksum mismatch: {sources[rel]} has sha256 {got}, expected {expected}; "
                              "the copy is thrown away and the staged model is left as it was")
            files[rel] = _entry(os.path.join(tmp, rel), got)
            total += files[rel]["size"]
        with open(os.path.join(tmp, MARK), "w", encoding="utf-8") as handle:
            json.dump({"sha256": want, "source": source, "files": files}, handle, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        old = f"{dest}.old-{os.getpid()}"
        if os.path.exists(dest):
            os.rename(dest, old)
        os.rename(tmp, dest)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    seconds = time.monotonic() - started
    return {"changed": True, "dest": dest, "bytes": total, "seconds": round(seconds, 3),
            "message": f"staged {total} bytes in {seconds:.1f} s, sha256 verified"}


def verify(dest: str, want: str) -> dict[str, Any]:
    mark = os.path.join(dest, MARK)
    try:
        with open(mark, encoding="utf-8") as handle:
            recorded = json.load(handle)
    except (OSError, ValueError) as exc:
        raise Refused(f"{dest} holds no complete staged copy ({exc.__class__.__name__}: {mark})") from exc
    if recorded.get("sha256") != want:
        raise Refused(f"{dest} holds the model with sha256 {recorded.get('sha256')}, the plan names {want}")
    rehashed = []
    for rel, entry in sorted(recorded["files"].items()):
        path = os.path.join(dest, rel)
        try:
            st = os.stat(path)
        except OSError as exc:
            raise Refused(f"{path} is missing from the staged copy") from exc
        if (st.st_size, st.st_mtime_ns) == (entry["size"], entry["mtime_ns"]):
            continue
        if st.st_size != entry["size"]:
            raise Refused(f"{path} is {st.st_size} bytes, {entry['size']} were staged (a cut-short copy)")
        got = sha256_of(path)
        if got != entry["sha256"]:
            raise Refused(f"checksum mismatch: {path} has sha256 {got}, {entry['sha256']} was staged")
        rehashed.append(rel)
    return {"changed": False, "dest": dest, "rehashed": rehashed, "message": "staged copy verified"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="onprem-llm-stage", description="stage and verify a served model")
    parser.add_argument("action", choices=["stage", "verify"])
    parser.add_argument("--source")
    parser.add_argument("--dest", required=True)
    parser.add_argument("--sha256", required=True)
    args = parser.parse_args(argv)
    try:
        if args.action == "stage":
            if not args.source:
                parser.error("stage needs --source")
            result = stage(args.source, args.dest.rstrip("/"), args.sha256.lower())
        else:
            result = verify(args.dest.rstrip("/"), args.sha256.lower())
    except (Refused, OSError) as exc:
        sys.stderr.write(f"onprem-llm-stage: {exc}\n")
        sys.stdout.write(json.dumps({"failed": True, "msg": str(exc)}) + "\n")
        return 1
    sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
