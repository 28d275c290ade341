"""The serving examples (inventories/examples/llm-serving) validate in the plan of their design's hardware: no
error of the schema, llm_fit or llm_serving about them, and every replica gets its command line."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.report import build_report
from ansible_collections.onprem.gpu_server.plugins.module_utils.llm.engines import serving_plan

REPO = Path(__file__).resolve().parents[5]
EXAMPLES = REPO / "inventories/examples"
HOSTS = {"strategy": "xc740xd", "frameworks": "rtx4090"}


@pytest.mark.parametrize("path", sorted((EXAMPLES / "llm-serving").glob("*.yml")), ids=lambda p: p.stem)
def test_the_example_validates(path: Path) -> None:
    host = HOSTS[path.stem.split("-")[0].rstrip("1234")]
    example = yaml.safe_load((EXAMPLES / host / "host_vars" / host / "host_plan.yml").read_text())["host_plan"]
    plan = {"profile": example["profile"], "hardware": copy.deepcopy(example["hardware"]),
            "intent": {"host_reserve": example["intent"]["host_reserve"],
                       "llm_deployments": yaml.safe_load(path.read_text())}}
    report = build_report(plan)
    about = [f"{e['path']}: {e['message']}" for e in report["errors"] if ".llm_deployments" in e["path"]]
    assert about == []
    gpu_ids = {name: f"GPU-{name}" for name in plan["hardware"]["gpus"]}
    result = serving_plan(plan, report, {"store": "/srv/models", "state": "/var/lib/onprem/llm",
                                         "python": "/opt/llm/bin/python", "gpu_ids": gpu_ids, "gpu_access": "cdi"})
    assert result["errors"] == []
    served = plan["intent"]["llm_deployments"]
    assert len(result["replicas"]) == sum(d["serve"].get("replicas", 1) for d in served.values())
