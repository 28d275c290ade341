"""cpu_ranges / cpu_ranges_format."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.onprem.gpu_server.plugins.filter.cpu_ranges import FilterModule

FILTERS = FilterModule().filters()
parse = FILTERS["cpu_ranges"]
fmt = FILTERS["cpu_ranges_format"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0-15,32-47", list(range(16)) + list(range(32, 48))),
        ("0-25,52-77", list(range(26)) + list(range(52, 78))),
        ("3", [3]),
        (7, [7]),
        ("", []),
        (" 5 , 1-2 ", [1, 2, 5]),
        ("44-51", list(range(44, 52))),
    ],
)
def test_parse(text, expected):
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("cpus", "expected"),
    [
        ([0, 1, 2, 5], "0-2,5"),
        ([5, 2, 1, 0], "0-2,5"),
        ([], ""),
        ([0, 2, 4], "0,2,4"),
        ([52, 53], "52-53"),
        (list(range(16)) + list(range(52, 68)), "0-15,52-67"),
    ],
)
def test_format(cpus, expected):
    assert fmt(cpus) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("7-3", "range '7-3' is reversed"),
        ("-1", "cannot read '-1'"),
        ("0-3,x", "cannot read 'x'"),
        ("0-3,,5", "cannot read ''"),
        ("0-3,2", "CPU(s) 2 listed more than once"),
        ("1-2:1", "cannot read"),
        (-4, "cannot be negative"),
        (True, "expected a CPU list string"),
        (["0-3"], "expected a CPU list string"),
    ],
)
def test_parse_rejects(value, message):
    with pytest.raises(AnsibleFilterError) as err:
        parse(value)
    assert str(err.value).startswith("cpu_ranges:")
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([1, 1], "listed more than once"),
        ([0, -1], "cpu_ranges_format[1]: CPU numbers cannot be negative"),
        ([0, "1"], "cpu_ranges_format[1]: expected an integer"),
        ([0, 1.0], "cpu_ranges_format[1]: expected an integer"),
        ("0-3", "expected a list of CPU numbers"),
    ],
)
def test_format_rejects(value, message):
    with pytest.raises(AnsibleFilterError, match="cpu_ranges_format") as err:
        fmt(value)
    assert message in str(err.value)


cpu_sets = st.sets(st.integers(min_value=0, max_value=4096), max_size=200)


@settings(max_examples=200, deadline=None)
@given(cpu_sets)
def test_parse_inverts_format(cpus):
    assert parse(fmt(list(cpus))) == sorted(cpus)


@settings(max_examples=150, deadline=None)
@given(cpu_sets)
def test_format_is_canonical_and_no_longer_than_plain_list(cpus):
    text = fmt(list(cpus))
    assert fmt(parse(text)) == text
    assert len(text) <= len(",".join(str(c) for c in sorted(cpus)))
