"""LLM serving end to end on a real OpenAI-compatible server, without a GPU: llama-cpp-python 0.3.36's server
(built with GGML_NATIVE=OFF, installed offline from the wheelhouse) serving a tiny llama GGUF with random weights
(tests/llm/make_tiny_gguf.py), two replicas behind Debian's HAProxy. Answers are checked for their shape and
token counts, not their text. A replica killed under load loses no request (HAProxy sends the request again to
the other replica), HAProxy marks it down, systemd restarts it, HAProxy marks it up. A staged model that was
cut short or rewritten keeps its replica from starting until it is staged again from the data lake.
"""

from __future__ import annotations

import json
import pathlib

import pytest
import yaml
from mailspool import http_get

REPO = pathlib.Path(__file__).resolve().parents[3]
VARS = yaml.safe_load((REPO / "molecule/container/vars/llm.yml").read_text())
SERVE = VARS["llm_test_plan"]["intent"]["llm_deployments"]["tiny"]["serve"]
FRONTEND = f"http://127.0.0.1:{SERVE['port']}"
REPLICAS = [f"onprem-llm-tiny-{i}" for i in range(SERVE["replicas"])]
REPLICA_URLS = [f"http://127.0.0.1:{SERVE['port'] + 1 + i}" for i in range(SERVE["replicas"])]
STATS = "http://127.0.0.1:8404/stats;csv"
STAGED = "/srv/models/tiny/tiny.gguf"
SOURCE = "/lake/data/models/tiny/tiny.gguf"
SHA256 = (REPO / ".cache/llm/tiny.gguf.sha256").read_text().strip()


def load(host, url: str, requests: int, concurrency: int, *extra: str) -> dict:
    done = host.run("onprem-test-llm-load --url %s --requests %s --concurrency %s " + " ".join(["%s"] * len(extra)),
                    url, str(requests), str(concurrency), *extra)
    assert done.rc == 0, done.stderr
    return json.loads(done.stdout)


def start(host, unit: str) -> int:
    return host.run("systemctl reset-failed %s; systemctl restart %s", unit, unit).rc


def test_the_replicas_and_haproxy_run(host) -> None:
    for unit in [*REPLICAS, "haproxy"]:
        assert host.service(unit).is_running, unit
        assert host.service(unit).is_enabled, unit
    checked = host.run("haproxy -c -f /etc/haproxy/haproxy.cfg")
    print(checked.stdout, checked.stderr)
    assert checked.rc == 0
    # llama.cpp runs as its own user, not root.
    for unit in REPLICAS:
        pid = host.check_output("systemctl show --property=MainPID --value %s", unit)
        assert host.check_output("ps -o user= -p %s", pid) == "onprem-llm"
    models = json.loads(http_get(host, f"{FRONTEND}/v1/models"))
    assert [m["id"] for m in models["data"]] == ["tiny"]


@pytest.mark.parametrize("url", [FRONTEND, *REPLICA_URLS])
def test_completions_have_the_openai_shape(host, url: str) -> None:
    result = load(host, url, 4, 1)
    assert (result["ok"], result["failed"]) == (4, 0), result["errors"]


def test_chat_completion_through_haproxy(host) -> None:
    program = (
        "import json, sys, urllib.request\n"
        "body = json.dumps({'model': 'tiny', 'max_tokens': 6, 'messages': [{'role': 'user', 'content': 'hi'}]})\n"
        "req = urllib.request.Request(sys.argv[1] + '/v1/chat/completions', data=body.encode(),"
        " headers={'Content-Type': 'application/json'})\n"
        "print(urllib.request.urlopen(req, timeout=30).read().decode())\n"
    )
    answer = json.loads(host.check_output("python3 -c %s %s", program, FRONTEND))
    assert answer["object"] == "chat.completion"
    assert answer["choices"][0]["message"]["role"] == "assistant"
    assert isinstance(answer["choices"][0]["message"]["content"], str)
    assert answer["usage"]["prompt_tokens"] > 0 and 0 < answer["usage"]["completion_tokens"] <= 6


def test_a_killed_replica_loses_no_request_and_comes_back(host) -> None:
    before = int(host.check_output("systemctl show --property=NRestarts --value %s", REPLICAS[0]))
    # About 12 s of requests (the tiny model answers about 200 a second here): the kill at 1 s, HAProxy's down
    # (two failed checks a second apart) and systemd's restart 2 s after the exit all fall inside the loop.
    result = load(host, FRONTEND, 2500, 4, "--kill", REPLICAS[0], "--kill-after", "1",
                  "--stats", STATS, "--backend", "llm_tiny")
    print(json.dumps(result))
    assert result["requests"] == 2500
    assert result["failed"] == 0, result["errors"]
    statuses = [status for _, status in result["transitions"]]
    assert statuses[0] == "UP"
    down = next(i for i, s in enumerate(statuses) if s.startswith("DOWN"))
    assert "UP" in statuses[down:], "HAProxy marked the replica up again"
    back = next(t for t, s in result["transitions"][down:] if s == "UP")
    print(f"killed at {result['killed_at']} s, marked down at {result['transitions'][down][0]} s, up at {back} s; "
          f"the loop ran {result['seconds']} s")
    assert back < result["seconds"], "the replica came back while the requests were still running"
    assert result["restarts"] == before + 1, "systemd restarted it once"
    assert host.service(REPLICAS[0]).is_running


def test_throughput_through_haproxy_and_direct(host) -> None:
    """Requests/s and p50/p99 latency, 2 clients: through HAProxy (both replicas) and straight to one replica."""
    direct = load(host, REPLICA_URLS[0], 600, 2)
    balanced = load(host, FRONTEND, 600, 2)
    for name, result in (("direct to one replica", direct), ("through HAProxy", balanced)):
        print(f"{name}: {result['requests_per_s']} requests/s, p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms")
        assert (result["ok"], result["failed"]) == (600, 0), result["errors"]
    out = REPO / ".cache/llm/throughput.json"
    out.write_text(json.dumps({"direct": direct, "haproxy": balanced}, indent=1))


@pytest.mark.parametrize("damage", ["rewritten", "cut-short"])
def test_a_damaged_staged_model_keeps_the_replica_down_until_staged_again(host, damage: str) -> None:
    unit = REPLICAS[1]
    if damage == "rewritten":
        spoil = host.run("printf 'XXXX' | dd of=%s bs=1 seek=4096 conv=notrunc status=none", STAGED)
        expected = "checksum mismatch"
    else:
        spoil = host.run("truncate -s -4096 %s", STAGED)
        expected = "cut-short copy"
    assert spoil.rc == 0, spoil.stderr
    assert start(host, unit) != 0, "the replica must not start on a damaged model"
    journal = host.check_output("journalctl -u %s --since -1min --no-pager", unit)
    assert expected in journal
    assert not host.socket(f"tcp://127.0.0.1:{SERVE['port'] + 2}").is_listening
    # HAProxy keeps serving from the other replica meanwhile.
    assert load(host, FRONTEND, 4, 1)["failed"] == 0
    # Staging again from the data lake (what the role does on its next run) repairs it.
    staged = host.run("onprem-llm-stage stage --source %s --dest /srv/models/tiny --sha256 %s", SOURCE, SHA256)
    assert staged.rc == 0 and json.loads(staged.stdout)["changed"], staged.stderr
    assert start(host, unit) == 0
    assert host.check_output("sha256sum %s", STAGED).split()[0] == SHA256


def test_a_corrupted_source_is_not_staged(host) -> None:
    """A source whose bytes differ from the plan's sha256 is refused; the staged copy stays as it was."""
    host.run("cp %s /tmp/source.gguf && printf 'XXXX' | dd of=/tmp/source.gguf bs=1 seek=8192 conv=notrunc "
             "status=none && rm -rf /tmp/stage-test", SOURCE)
    refused = host.run("onprem-llm-stage stage --source /tmp/source.gguf --dest /tmp/stage-test --sha256 %s", SHA256)
    assert refused.rc == 1 and "checksum mismatch" in refused.stderr
    assert not host.file("/tmp/stage-test").exists
    assert host.check_output("ls -a /tmp | grep -c stage-test || true") == "0"
