"""Plain type names and short quotes of a plan author's values, whatever subclass Ansible passes."""

from __future__ import annotations

import math
from typing import Any

import pytest

from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan._common import (
    PlanInputError,
    as_list,
    as_mapping,
    as_number,
    show,
    type_name,
)

# ansible-core 2.19's own tags; older cores pass plain types, which the other tests cover.
TAGS = pytest.importorskip("ansible._internal._datatag._tags")
ORIGIN = TAGS.Origin(path="/inventory/host_vars/h/host_plan.yml", line_num=3)


def tagged(value: Any) -> Any:
    """The value as ansible-core 2.19 hands it to a filter (``_AnsibleTaggedStr`` and friends)."""
    return ORIGIN.tag(value)


@pytest.mark.parametrize(
    ("value", "name"),
    [
        (None, "null"),
        (True, "boolean"),
        (3, "integer"),
        (1.5, "number"),
        (math.nan, "number"),
        ("two", "string"),
        ([1], "list"),
        ((1,), "list"),
        ({"a": 1}, "mapping"),
        ({1}, "set"),
        (b"x", "bytes"),
        (object(), "value"),
    ],
)
def test_type_names_are_plain(value: Any, name: str) -> None:
    assert type_name(value) == name


@pytest.mark.parametrize(
    ("value", "name"),
    [("two", "string"), ([320, 64], "list"), ({"a": 1}, "mapping"), (2.5, "number"), (7, "integer")],
)
def test_tagged_values_get_the_same_plain_names(value: Any, name: str) -> None:
    value = tagged(value)
    assert type(value).__name__.startswith("_AnsibleTagged")
    assert type_name(value) == name


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (math.nan, ".nan"),
        (math.inf, ".inf"),
        (-math.inf, "-.inf"),
        (1.5, "1.5"),
        (True, "true"),
        (None, "null"),
        ("two", "'two'"),
        ([320, "GB"], "[320, 'GB']"),
        ({"a": [1, math.nan]}, "{'a': [1, .nan]}"),
    ],
)
def test_show_writes_the_value_as_the_author_did(value: Any, text: str) -> None:
    assert show(value) == text
    assert show(tagged(value)) == text


def test_show_cuts_long_values_with_an_ellipsis() -> None:
    plan = {"profile": "trading_server", "hardware": {"cpu": {"model": "x" * 500}}}
    text = show(tagged([plan]))
    assert len(text) == 60 and text.endswith("\u2026")
    assert text.startswith("[{'profile': 'trading_server', 'hardware'")
    assert show("y" * 30, limit=10) == "'yyyyyyyy\u2026"


@pytest.mark.parametrize(
    ("func", "value", "message"),
    [
        (as_mapping, tagged([1, 2]), "x: expected a mapping, got list [1, 2]"),
        (as_list, tagged("abc"), "x: expected a list, got string 'abc'"),
        (as_number, tagged("20GB"), "x: expected a number, got string '20GB'"),
        (as_number, tagged(math.nan), "x: expected a finite number, got .nan"),
    ],
)
def test_input_errors_use_plain_names(func: Any, value: Any, message: str) -> None:
    with pytest.raises(PlanInputError) as err:
        func(value, "x")
    assert str(err.value) == message
    assert "_Ansible" not in str(err.value)
