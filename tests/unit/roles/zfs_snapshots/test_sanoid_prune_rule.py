"""The lab proof's expected prune set follows sanoid 2.1.0's rule under the role's tick_data policy.

sanoid 2.1.0 (prune_snapshots) walks the snapshots of each period oldest first and destroys one when
its creation time is older than count x period (a month counts 31 days) and more than count snapshots
of that period remain. This model of the rule checks the table in tests/lab/snapshots.yml, so that the
lab compares sanoid with an expectation derived from the rule rather than copied from sanoid's output.
"""

from __future__ import annotations

from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[4]
HOUR = 3600
PERIOD_S = {
    "hourly": HOUR,
    "daily": 24 * HOUR,
    "weekly": 7 * 24 * HOUR,
    "monthly": 31 * 24 * HOUR,
    "yearly": int(365.25 * 24 * HOUR),
}


def pruned(snapshots: list[tuple[str, int]], policy: dict[str, int]) -> set[int]:
    """Indexes of (kind, age_s) snapshots sanoid 2.1.0 prunes under ``policy``; non-periodic kinds are kept."""
    out: set[int] = set()
    for kind, keep in policy.items():
        if kind not in PERIOD_S:
            continue
        mine = sorted((i for i, (k, _age) in enumerate(snapshots) if k == kind), key=lambda i: -snapshots[i][1])
        left = len(mine)
        for index in mine:
            if snapshots[index][1] > keep * PERIOD_S[kind] and left > keep:
                out.add(index)
                left -= 1
    return out


def lab_cases() -> list[dict]:
    plays = yaml.safe_load((REPO_ROOT / "tests/lab/snapshots.yml").read_text())
    play = next(p for p in plays if p.get("name", "").endswith("prune visible in a dry run"))
    return play["vars"]["snaplab_cases"]


def tick_policy() -> dict[str, int]:
    defaults = yaml.safe_load((REPO_ROOT / "roles/zfs_snapshots/defaults/main.yml").read_text())
    return {"frequently": 0, "hourly": 0, "daily": 0, "weekly": 0, "monthly": 0, "yearly": 0} | defaults[
        "zfs_snapshots_policies"
    ]["tick_data"]


def test_lab_expectation_matches_the_rule() -> None:
    cases = lab_cases()
    snapshots = [(c["kind"], c["age_h"] * HOUR) for c in cases]
    expected = {i for i, c in enumerate(cases) if c["pruned"]}
    assert pruned(snapshots, tick_policy()) == expected


def test_lab_cases_cover_both_limits() -> None:
    cases = lab_cases()
    policy = tick_policy()
    # Old enough but protected by the count (weekly), and old enough and over the count (daily, monthly).
    old_kept = [
        c
        for c in cases
        if c["kind"] in PERIOD_S and not c["pruned"] and c["age_h"] * HOUR > policy[c["kind"]] * PERIOD_S[c["kind"]]
    ]
    assert {c["kind"] for c in old_kept} >= {"weekly", "monthly"}
    assert {c["kind"] for c in cases if c["pruned"]} == {"hourly", "daily", "monthly"}


def test_rule_examples() -> None:
    day = PERIOD_S["daily"]
    assert pruned([("daily", 10 * day)], {"daily": 1}) == set()
    assert pruned([("daily", 10 * day), ("daily", 9 * day)], {"daily": 1}) == {0}
    assert pruned([("daily", 10 * day), ("daily", 9 * day)], {"daily": 0}) == {0, 1}
    assert pruned([("manual", 1000 * day)], {"daily": 0}) == set()
