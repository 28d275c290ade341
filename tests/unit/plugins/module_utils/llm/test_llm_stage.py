"""The model staging program, on real files: a copy replaces the staged one only when its hash matches the plan;
a corrupted or cut-short source is refused with the staged copy left as it was; a staged copy cut short or
rewritten in place fails the check a replica runs before it starts; a directory is pinned through its
SHA256SUMS manifest; a second staging of the same model copies nothing."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from ansible_collections.onprem.gpu_server.plugins.module_utils.llm import stage

PROGRAM = Path(stage.__file__)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def run(*args: str) -> tuple[int, dict, str]:
    done = subprocess.run([str(PROGRAM), *args], capture_output=True, text=True, check=False, timeout=60)
    return done.returncode, json.loads(done.stdout), done.stderr


@pytest.fixture
def model(tmp_path: Path) -> tuple[Path, bytes]:
    data = os.urandom(3 * stage.CHUNK // 2)
    path = tmp_path / "lake/tiny/tiny.gguf"
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    return path, data


def test_stage_copies_verifies_and_is_idempotent(tmp_path: Path, model: tuple[Path, bytes]) -> None:
    source, data = model
    dest = tmp_path / "store/tiny"
    rc, out, _ = run("stage", "--source", str(source), "--dest", str(dest), "--sha256", sha(data))
    assert (rc, out["changed"], out["bytes"]) == (0, True, len(data))
    assert (dest / "tiny.gguf").read_bytes() == data
    rc, out, _ = run("stage", "--source", str(source), "--dest", str(dest), "--sha256", sha(data))
    assert (rc, out["changed"], out["message"]) == (0, False, "already staged")
    rc, out, _ = run("verify", "--dest", str(dest), "--sha256", sha(data))
    assert (rc, out["rehashed"]) == (0, [])
    assert not [p for p in dest.parent.iterdir() if p.name != "tiny"], "no temporary copy is left"


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_a_bad_source_is_refused_and_the_staged_copy_stays(tmp_path: Path, model: tuple[Path, bytes],
                                                           damage: str) -> None:
    source, data = model
    dest = tmp_path / "store/tiny"
    assert run("stage", "--source", str(source), "--dest", str(dest), "--sha256", sha(data))[0] == 0
    bad = bytearray(data)
    if damage == "flip":
        bad[100] ^= 0xFF
    else:
        del bad[-4096:]
    source.write_bytes(bytes(bad))
    new_sha = sha(data[:50])  # a model update the plan names, which the source does not hold
    rc, out, err = run("stage", "--source", str(source), "--dest", str(dest), "--sha256", new_sha)
    assert rc == 1 and out["failed"]
    assert "checksum mismatch" in err and sha(bytes(bad)) in err
    assert (dest / "tiny.gguf").read_bytes() == data
    assert run("verify", "--dest", str(dest), "--sha256", sha(data))[0] == 0
    assert not [p for p in dest.parent.iterdir() if p.name != "tiny"]


def test_a_staged_copy_cut_short_or_rewritten_fails_the_check(tmp_path: Path, model: tuple[Path, bytes]) -> None:
    source, data = model
    dest = tmp_path / "store/tiny"
    run("stage", "--source", str(source), "--dest", str(dest), "--sha256", sha(data))
    staged = dest / "tiny.gguf"
    with staged.open("r+b") as handle:
        handle.seek(10)
        handle.write(b"\0\0\0\0")
    rc, _, err = run("verify", "--dest", str(dest), "--sha256", sha(data))
    assert rc == 1 and "checksum mismatch" in err
    os.truncate(staged, 1000)
    rc, _, err = run("verify", "--dest", str(dest), "--sha256", sha(data))
    assert rc == 1 and "cut-short" in err
    # Staging again repairs it from the source.
    rc, out, _ = run("stage", "--source", str(source), "--dest", str(dest), "--sha256", sha(data))
    assert (rc, out["changed"]) == (0, True) and staged.read_bytes() == data


def test_the_check_refuses_a_copy_that_was_never_completed_or_is_another_model(tmp_path: Path,
                                                                                model: tuple[Path, bytes]) -> None:
    source, data = model
    dest = tmp_path / "store/tiny"
    dest.mkdir(parents=True)
    (dest / "tiny.gguf").write_bytes(data)
    rc, _, err = run("verify", "--dest", str(dest), "--sha256", sha(data))
    assert rc == 1 and "no complete staged copy" in err
    run("stage", "--source", str(source), "--dest", str(dest), "--sha256", sha(data))
    rc, _, err = run("verify", "--dest", str(dest), "--sha256", "0" * 64)
    assert rc == 1 and "the plan names" in err


def test_a_directory_is_pinned_by_its_manifest(tmp_path: Path) -> None:
    src = tmp_path / "lake/llama"
    (src / "sub").mkdir(parents=True)
    files = {"config.json": b"{}", "sub/model-00001.safetensors": os.urandom(5000)}
    for rel, data in files.items():
        (src / rel).write_bytes(data)
    manifest = "".join(f"{sha(d)}  {rel}\n" for rel, d in files.items()).encode()
    (src / "SHA256SUMS").write_bytes(manifest)
    (src / "README.md").write_text("not listed, not copied")
    dest = tmp_path / "store/llama"
    rc, _out, err = run("stage", "--source", str(src), "--dest", str(dest), "--sha256", sha(manifest))
    assert rc == 0, err
    assert (dest / "llama/sub/model-00001.safetensors").read_bytes() == files["sub/model-00001.safetensors"]
    assert not (dest / "llama/README.md").exists()
    # A listed file that differs from its line in the manifest is refused.
    (src / "config.json").write_bytes(b'{"x": 1}')
    rc, _, err = run("stage", "--source", str(src), "--dest", str(tmp_path / "store/other"), "--sha256", sha(manifest))
    assert rc == 1 and "config.json has sha256" in err
    (src / "SHA256SUMS").write_text(f"{'0' * 64}  ../escape\n")
    with pytest.raises(stage.Refused, match="relative path"):
        stage.read_manifest(str(src / "SHA256SUMS"))
