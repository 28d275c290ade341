"""The lab's recovery-time analysis (tests/lab/firewall/ssh_probe.py analyse): which logins count."""

from __future__ import annotations

import importlib.util
from pathlib import Path

PROBE = Path(__file__).resolve().parents[5] / "tests" / "lab" / "firewall" / "ssh_probe.py"
_spec = importlib.util.spec_from_file_location("fw_ssh_probe", PROBE)
assert _spec and _spec.loader
ssh_probe = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ssh_probe)

# Guest clock 0.5 s ahead of the controller; rollback due at guest 1120.5, so at controller 1120, armed at 1100.
WATCHED = {
    "offset_s": 0.5,
    "offset_uncertainty_s": 0.01,
    "attempts": [
        [1090.0, 1099.0, False],  # a slow login before the apply: not the lockout
        [1099.5, 1101.0, True],
        [1102.0, 1110.0, False],
        [1111.0, 1119.0, False],
        [1120.0, 1123.5, True],
    ],
}


def test_recovery_counts_only_logins_after_the_apply():
    out = ssh_probe.analyse(WATCHED, rollback_at=1120.5, timeout=20)
    assert out["first_fail_after_apply_s"] == 2.0
    assert out["apply_to_ssh_s"] == 23.5
    assert out["deadline_to_ssh_s"] == 3.5
    assert out["failed_logins_after_apply"] == 2 and out["failed_logins_before_apply"] == 1


def test_no_lockout_seen_gives_no_numbers():
    watched = dict(WATCHED, attempts=[[1101.0, 1102.0, True], [1103.0, 1104.0, True]])
    out = ssh_probe.analyse(watched, rollback_at=1120.5, timeout=20)
    assert out["first_fail_after_apply_s"] is None and out["apply_to_ssh_s"] is None
