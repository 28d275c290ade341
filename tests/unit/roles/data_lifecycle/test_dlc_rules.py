"""Pure lifecycle rules of onprem-data-lifecycle: tier by age, retention, configuration checks."""

from __future__ import annotations

import copy

import pytest
from dlc_helpers import classes, load_tool

dlc = load_tool()

TICK = dlc.DataClass("tick", "tick", 1.0, 7.0, 1826.0)
FOREVER = dlc.DataClass("models", "models", 1.0, 7.0, None)
SKIP_WARM = dlc.DataClass("ohlcv", "ohlcv", 2.0, 2.0, 3653.0)

VALID = {
    "tiers": {"landing": "/srv/landing/hot", "warm": "/srv/landing/warm", "cold": "/lake/data"},
    "classes": classes(),
}


@pytest.mark.parametrize(
    ("age", "data_class", "expected"),
    [
        (0.0, TICK, "landing"),
        (0.99, TICK, "landing"),
        (1.0, TICK, "landing"),  # "older than" the window: the boundary itself stays
        (1.01, TICK, "warm"),
        (6.9, TICK, "warm"),
        (7.0, TICK, "warm"),
        (7.01, TICK, "cold"),
        (4000.0, TICK, "cold"),
        (1.5, SKIP_WARM, "landing"),
        (2.5, SKIP_WARM, "cold"),  # equal windows: straight from landing to cold
        (-3.0, TICK, "landing"),  # mtime in the future (clock skew) never moves a file
    ],
)
def test_target_tier(age: float, data_class, expected: str) -> None:
    assert dlc.target_tier(age, data_class) == expected


@pytest.mark.parametrize(
    ("age", "data_class", "expected"),
    [
        (1825.9, TICK, False),
        (1826.0, TICK, False),
        (1826.1, TICK, True),
        (100000.0, FOREVER, False),
    ],
)
def test_is_expired(age: float, data_class, expected: bool) -> None:
    assert dlc.is_expired(age, data_class) is expected


def test_age_days() -> None:
    assert dlc.age_days(1_000_000.0, 1_000_000.0 + 3 * 86400) == pytest.approx(3.0)


def test_temporary_names_are_recognised_and_bounded() -> None:
    name = dlc.temporary_name("x" * 255)
    assert dlc.is_temporary(name)
    assert len(name) <= 255
    assert dlc.temporary_name("a.csv") != dlc.temporary_name("a.csv")
    for ordinary in ("a.csv", ".hidden", ".a.csv.dlc-tmp", "a.0123456789abcdef.dlc-tmp"):
        assert not dlc.is_temporary(ordinary), ordinary


def test_valid_config_parses() -> None:
    config = dlc.parse_config(copy.deepcopy(VALID) | {"_managed": "comment keys are allowed"})
    assert [c.name for c in config.classes] == ["tick", "models"]
    assert config.classes[1].directory == "models/checkpoints"
    assert config.classes[1].retention_days is None
    assert config.class_dir("cold", config.classes[0]) == "/lake/data/tick"
    assert config.link_within_filesystem is True


def _with(path: tuple, value) -> dict:
    doc = copy.deepcopy(VALID)
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return doc


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (_with(("colour",), "blue"), "unknown keys"),
        (_with(("tiers", "cold"), "lake/data"), "tiers.cold"),
        (_with(("tiers", "warm"), "/srv/landing/hot/warm"), "lies inside"),
        (_with(("classes",), []), "non-empty"),
        (_with(("classes", 0, "directory"), "../etc"), "below the tier root"),
        (_with(("classes", 0, "directory"), "/abs"), "relative path"),
        (_with(("classes", 0, "name"), "tick data"), "name"),
        (_with(("classes", 0, "warm_days"), 0.5), "warm_days"),
        (_with(("classes", 0, "retention_days"), 3), "retention_days"),
        (_with(("classes", 0, "hot_days"), -1), "hot_days"),
        (_with(("classes", 0, "hot_days"), True), "hot_days"),
        (_with(("classes", 1, "name"), "tick"), "duplicate"),
        (_with(("classes", 1, "directory"), "tick/models"), "lies inside"),
        (_with(("metrics_path",), "/var/lib/x.txt"), "metrics_path"),
        (_with(("buffer_bytes",), 10), "buffer_bytes"),
        (_with(("required_mountpoints",), ["lake"]), "required_mountpoints"),
    ],
)
def test_invalid_config_is_rejected_naming_the_key(doc: dict, message: str) -> None:
    with pytest.raises(dlc.ConfigError, match=message):
        dlc.parse_config(doc)
