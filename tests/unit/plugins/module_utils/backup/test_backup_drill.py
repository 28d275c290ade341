"""The restore drill's verdicts (plugins/module_utils/backup/drill.py) on real trees, and its metrics judged by
promtool."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from fixtures import tools

from ansible_collections.onprem.gpu_server.plugins.module_utils.backup import drill

REPO_ROOT = Path(__file__).resolve().parents[5]


def make_tree(root: Path) -> Path:
    (root / "etc" / "pve").mkdir(parents=True)
    (root / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
    (root / "etc" / "pve" / "100.conf").write_text("cores: 8\nmemory: 65536\n")
    (root / "etc" / "empty").write_bytes(b"")
    os.symlink("hosts", root / "etc" / "hosts.link")
    return root


def copy_tree(src: Path, dest: Path) -> Path:
    subprocess.run(["cp", "-a", f"{src}/.", str(dest)], check=True)
    return dest


def run_compare(kind: str, name: str, expected: str, restored: str, textfiles: Path, *extra: str) -> int:
    """The drill's compare of restored against expected, its verdict into textfiles."""
    argv = ["compare", "--kind", kind, "--name", name, "--expected", expected, "--restored", restored]
    return drill.main([*argv, "--textfile-dir", str(textfiles), *extra])


def test_an_identical_restore_passes_and_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = make_tree(tmp_path / "snapshot")
    restored = copy_tree(source, tmp_path / "restored")
    textfiles = tmp_path / "textfile"
    textfiles.mkdir()
    rc = run_compare("zfs", "tick_data", str(source), str(restored), textfiles, "--age-seconds", "42")
    assert rc == 0
    assert capsys.readouterr().out == "zfs tick_data: 4 files compared, identical\n"
    text = (textfiles / "onprem_backup_drill_zfs_tick_data.prom").read_text()
    assert 'onprem_backup_drill_ok{kind="zfs",name="tick_data"} 1\n' in text
    assert 'onprem_backup_age_seconds{kind="zfs",name="tick_data"} 42\n' in text


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (
            lambda r: (r / "etc" / "pve" / "100.conf").write_text("cores: 9\nmemory: 65536\n"),
            "differs etc/pve/100.conf",
        ),
        (lambda r: (r / "etc" / "hosts").unlink(), "missing etc/hosts"),
        (lambda r: (r / "etc" / "new").write_text("x"), "extra etc/new"),
        (
            lambda r: ((r / "etc" / "hosts.link").unlink(), os.symlink("pve", r / "etc" / "hosts.link")),
            "differs etc/hosts.link",
        ),
    ],
    ids=["content", "missing", "extra", "link-target"],
)
def test_a_damaged_restore_fails_and_names_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], damage, expected: str
) -> None:
    source = make_tree(tmp_path / "snapshot")
    restored = copy_tree(source, tmp_path / "restored")
    damage(restored)
    textfiles = tmp_path / "textfile"
    textfiles.mkdir()
    rc = run_compare("restic", "etc", str(source), str(restored), textfiles)
    assert rc == 1
    assert f"restic etc: {expected}\n" in capsys.readouterr().err
    text = (textfiles / "onprem_backup_drill_restic_etc.prom").read_text()
    assert 'onprem_backup_drill_ok{kind="restic",name="etc"} 0\n' in text
    assert 'onprem_backup_drill_mismatched_files{kind="restic",name="etc"} 1\n' in text


def test_a_manifest_written_before_the_backup_judges_the_restore(tmp_path: Path) -> None:
    """As restic restores: every path below the restore target, the manifest among them."""
    live = make_tree(tmp_path / "live")
    manifest = tmp_path / "live" / "etc.SHA256SUMS"
    assert drill.main(["manifest", "--out", str(manifest), str(live / "etc")]) == 0
    target = tmp_path / "target"
    (target / str(tmp_path).lstrip("/")).mkdir(parents=True)
    copy_tree(live, target / str(tmp_path).lstrip("/") / "live")
    args = ["compare", "--kind", "restic", "--name", "etc", "--manifest", str(manifest), "--restored", str(target)]
    assert drill.main(args) == 0
    (target / str(tmp_path).lstrip("/") / "live" / "etc" / "hosts").write_text("corrupt\n")
    assert drill.main(args) == 1


def test_a_drill_that_cannot_run_says_why_and_records_a_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    textfiles = tmp_path / "textfile"
    textfiles.mkdir()
    rc = run_compare("zfs", "ohlcv", str(tmp_path / "gone"), str(tmp_path), textfiles)
    assert rc == 2
    assert "gone: not a directory" in capsys.readouterr().err
    assert (
        'onprem_backup_drill_ok{kind="zfs",name="ohlcv"} 0\n'
        in (textfiles / "onprem_backup_drill_zfs_ohlcv.prom").read_text()
    )


def test_the_metrics_pass_promtool(tmp_path: Path) -> None:
    text = drill.metrics("zfs", "tick_data", 10, 1, True, 1796640000.0, 3600.0)
    done = subprocess.run(
        [tools.require("promtool", REPO_ROOT), "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
