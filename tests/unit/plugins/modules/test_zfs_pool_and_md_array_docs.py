"""DOCUMENTATION/EXAMPLES of zfs_pool and md_array: YAML that parses, options that exist, args that validate."""

from __future__ import annotations

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.onprem.gpu_server.plugins.module_utils.mdadm.planner import chunk_problem, name_problem
from ansible_collections.onprem.gpu_server.plugins.module_utils.zfs.rules import ashift_problem, pool_name_problem
from ansible_collections.onprem.gpu_server.plugins.modules import md_array, zfs_pool

MODULES = {"onprem.gpu_server.zfs_pool": zfs_pool, "onprem.gpu_server.md_array": md_array}


def spec_from_doc(options: dict) -> dict:
    spec = {}
    for name, opt in options.items():
        entry = {k: opt[k] for k in ("type", "elements", "choices", "required") if k in opt}
        if "default" in opt:
            entry["default"] = opt["default"]
        if "suboptions" in opt:
            entry["options"] = spec_from_doc(opt["suboptions"])
        spec[name] = entry
    return spec


@pytest.mark.parametrize("fqcn", sorted(MODULES))
def test_documentation_matches_argument_spec(fqcn):
    module = MODULES[fqcn]
    doc = yaml.safe_load(module.DOCUMENTATION)
    assert doc["module"] == fqcn.rsplit(".", 1)[1]
    assert set(doc["attributes"]) == {"check_mode", "diff_mode", "platform"}
    assert spec_from_doc(doc["options"]) == {
        k: {kk: vv for kk, vv in v.items() if kk != "options"} | (
            {"options": v["options"]} if "options" in v else {})
        for k, v in module.ARGUMENT_SPEC.items()}
    yaml.safe_load(module.RETURN)


def example_tasks():
    for fqcn, module in sorted(MODULES.items()):
        for task in yaml.safe_load(module.EXAMPLES):
            yield pytest.param(fqcn, task, id=f"{fqcn}:{task['name']}")


@pytest.mark.parametrize(("fqcn", "task"), list(example_tasks()))
def test_examples_use_real_options_and_validate(fqcn, task):
    module = MODULES[fqcn]
    args = task[fqcn]
    doc = yaml.safe_load(module.DOCUMENTATION)
    assert set(args) <= set(doc["options"]), f"unknown option in example '{task['name']}'"
    for vdev in args.get("vdevs", []):
        assert set(vdev) <= set(doc["options"]["vdevs"]["suboptions"])
    result = ArgumentSpecValidator(module.ARGUMENT_SPEC).validate(args)
    assert not result.error_messages, result.error_messages


@pytest.mark.parametrize(("fqcn", "task"), list(example_tasks()))
def test_examples_pass_the_request_rules(fqcn, task):
    """What is refused before any command (names, ashift, chunk) is never in an example."""
    args = task[fqcn]
    if fqcn.endswith("zfs_pool"):
        assert pool_name_problem(args["name"]) is None
        assert ashift_problem(args.get("ashift")) is None
    else:
        assert name_problem(args["name"]) is None
        assert chunk_problem(args.get("chunk")) is None
