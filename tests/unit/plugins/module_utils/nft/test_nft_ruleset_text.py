"""Pure nft helpers: table names, content guard, transaction files, normalisation, rollback command line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ansible_collections.onprem.gpu_server.plugins.module_utils.nft import ruleset

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "nft"
DOCKER_RULESET = FIXTURES / "nft-j-list-ruleset_docker-host_iptables-nft_aleph-crn.json"
LAB_TABLE = FIXTURES / "nft-j-list-table_inet-onprem_filter_labvm.json"
OWNED = ruleset.TableRef("inet", "onprem_filter")

BODY = """chain input {
  type filter hook input priority filter; policy drop;
  ct state established,related accept
  tcp dport { 22, 8006 } accept comment "ssh and { the GUI }"  # braces in comments: }}}
}
"""


def _docker_items():
    return ruleset.parse_listing(DOCKER_RULESET.read_text())


@pytest.mark.parametrize(("family", "name", "message"), [
    ("inet6", "onprem_filter", "family: 'inet6'"),
    ("inet", "", "name: ''"),
    ("inet", "1table", "must start with a letter"),
    ("inet", "on-prem", "only letters, digits"),
    ("inet", "x" * 65, "at most 64"),
    ("inet", "a;flush ruleset", "only letters"),
])
def test_table_ref_rejects_bad_names(family, name, message):
    with pytest.raises(ruleset.RulesetError, match=re.escape(message)):
        ruleset.TableRef(family, name)


def test_table_ref_spec_and_slug():
    assert OWNED.spec == "inet onprem_filter"
    assert OWNED.slug == "inet-onprem_filter"
    assert ruleset.rollback_unit(OWNED) == "onprem-nft-rollback-inet-onprem_filter"


def test_check_body_ignores_braces_in_strings_and_comments():
    ruleset.check_body(BODY)


@pytest.mark.parametrize(("body", "message"), [
    ("}\ntable ip nat {\n", "line 1: '}' closes the owned table"),
    ("chain a {\n}\n}\ntable ip filter { chain FORWARD { policy accept; } }\n", "line 3"),
    ("chain a {\n", "1 '{' without a matching '}'"),
    ('chain a { comment "open }\n', "quoted string is not closed"),
    ('include "/etc/nftables.d/*.nft"\n', "'include' is not allowed"),
    ("chain a {\n  include \"x.nft\"\n}\n", "'include' is not allowed"),
])
def test_check_body_refuses_content_that_leaves_the_table(body, message):
    with pytest.raises(ruleset.RulesetError, match=re.escape(message)):
        ruleset.check_body(body)


def test_transaction_replaces_only_the_owned_table():
    text = ruleset.transaction(OWNED, BODY)
    lines = text.splitlines()
    assert lines[:3] == ["table inet onprem_filter {}", "delete table inet onprem_filter", "table inet onprem_filter {"]
    assert lines[-1] == "}"
    assert "\tchain input {" in lines and "\t}" in lines
    assert "flush" not in text


def test_removal_transaction_declares_then_deletes():
    # Declaring first makes the delete succeed on a host where the table is absent.
    assert ruleset.transaction(OWNED, None) == "table inet onprem_filter {}\ndelete table inet onprem_filter\n"


def test_transaction_never_names_a_docker_table():
    docker_tables = ruleset.tables_in(_docker_items())
    assert docker_tables == ["ip nat", "ip filter"]
    text = ruleset.transaction(OWNED, BODY) + ruleset.restore_transaction(OWNED, None)
    named = set(re.findall(r"^(?:delete )?table (\S+ \S+)", text, re.MULTILINE))
    assert named == {"inet onprem_filter"}
    assert not named & set(docker_tables)


def test_restore_transaction_from_listing():
    listing = "table inet onprem_filter {\n\tchain input {\n\t}\n}\n"
    assert ruleset.restore_transaction(OWNED, listing) == (
        "table inet onprem_filter {}\ndelete table inet onprem_filter\n" + listing)
    assert ruleset.restore_transaction(OWNED, None).endswith("delete table inet onprem_filter\n")


def test_restore_transaction_refuses_a_listing_of_another_table():
    with pytest.raises(ruleset.RulesetError, match="does not start with 'table inet onprem_filter"):
        ruleset.restore_transaction(OWNED, "table ip filter {\n}\n")


def test_persist_text_is_the_transaction_with_a_header():
    script = ruleset.transaction(OWNED, BODY)
    text = ruleset.persist_text(OWNED, script)
    assert text.startswith("#!/usr/sbin/nft -f\n# Managed by onprem.gpu_server.nft_ruleset: table inet onprem_filter.")
    assert text.endswith(script)
    assert "flush ruleset" in text and "\nflush ruleset" not in text  # only mentioned in a comment


def _with_counter(items, packets):
    """The first rule of the recording with a counter expression in front (the role's rules have none)."""
    items = json.loads(json.dumps(items))
    rule = next(i["rule"] for i in items if "rule" in i)
    rule["expr"].insert(0, {"counter": {"packets": packets, "bytes": 60 * packets}})
    return items


def test_normalise_drops_handles_metainfo_and_counter_values():
    items = _with_counter(ruleset.parse_listing(LAB_TABLE.read_text()), 0)
    assert "metainfo" in items[0]
    normal = ruleset.normalise(items)
    assert all("metainfo" not in item for item in normal)
    assert '"handle"' not in json.dumps(normal)
    # The same table read later: other handles, traffic counted.
    later = _with_counter(json.loads(LAB_TABLE.read_text().replace('"handle": ', '"handle": 100'))["nftables"], 42)
    assert later != items
    assert ruleset.normalise(later) == normal


def test_normalise_keeps_real_differences():
    items = ruleset.parse_listing(LAB_TABLE.read_text())
    changed = json.loads(json.dumps(items))
    chain = next(i["chain"] for i in changed if "chain" in i and i["chain"].get("hook") == "input")
    chain["policy"] = "accept"
    assert ruleset.normalise(changed) != ruleset.normalise(items)


def test_normalise_drops_dynamic_set_elements_only():
    static = {"set": {"family": "inet", "name": "mgmt", "table": "t", "type": "ipv4_addr", "handle": 3,
                      "elem": ["10.0.0.1"]}}
    dynamic = {"set": {"family": "inet", "name": "seen", "table": "t", "type": "ipv4_addr", "handle": 4,
                       "flags": ["dynamic", "timeout"], "elem": ["10.0.0.9"]}}
    out = ruleset.normalise([static, dynamic])
    assert out[0]["set"]["elem"] == ["10.0.0.1"]
    assert "elem" not in out[1]["set"]


def test_normalise_of_the_docker_ruleset_is_stable_and_handle_free():
    items = _docker_items()
    normal = ruleset.normalise(items)
    assert len(normal) == len(items) - 1
    assert '"handle"' not in json.dumps(normal)
    # iptables-nft rules (xt expressions) survive as they are.
    assert '"xt"' in json.dumps(normal)


def test_parse_listing_errors():
    with pytest.raises(ruleset.RulesetError, match="no JSON"):
        ruleset.parse_listing("Error: something")
    with pytest.raises(ruleset.RulesetError, match="no 'nftables' array"):
        ruleset.parse_listing('{"other": []}')


def test_split_canonical():
    text = "table inet onprem_filter {\n}\n"
    items, listing = ruleset.split_canonical(LAB_TABLE.read_text().strip() + "\n" + text)
    assert listing == text
    assert items == ruleset.parse_listing(LAB_TABLE.read_text())


@pytest.mark.parametrize(("rc", "stderr", "absent"), [
    (1, "Error: No such file or directory\nlist table inet onprem_filter\n", True),
    (1, "Error: Could not process rule: Operation not permitted\n", False),
    (0, "", False),
])
def test_is_absent(rc, stderr, absent):
    assert ruleset.is_absent(rc, stderr) is absent
