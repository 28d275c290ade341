#!/usr/bin/env python3
"""A bounded request loop against an OpenAI-compatible endpoint, in the container (test scaffolding).

    llm_load.py --url http://127.0.0.1:8090 --requests 400 --concurrency 4 [--kill UNIT --kill-after 1.5]
                [--stats http://127.0.0.1:8404/stats\\;csv --backend llm_tiny]

Every request is POST /v1/completions (max_tokens 8); a request counts as ok when it answers 200 with a
completion of the right shape (a text choice, usage with prompt and completion tokens, completion tokens <= 8).
With --kill, the unit's main process (MainPID) gets SIGKILL after --kill-after seconds. With --stats, HAProxy's CSV
statistics are read every 100 ms and each change of the killed server's status is recorded, until it is UP
again after the loop (at most 60 s). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request

MAX_TOKENS = 8


def one_request(url: str, model: str) -> tuple[bool, str]:
    body = json.dumps({"model": model, "prompt": "The market opened", "max_tokens": MAX_TOKENS,
                       "temperature": 0}).encode()
    req = urllib.request.Request(f"{url}/v1/completions", data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            answer = json.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return False, f"{exc.__class__.__name__}: {exc}"
    usage = answer.get("usage") or {}
    choices = answer.get("choices") or [{}]
    good = (
        isinstance(choices[0].get("text"), str)
        and isinstance(usage.get("prompt_tokens"), int) and usage["prompt_tokens"] > 0
        and isinstance(usage.get("completion_tokens"), int) and 0 < usage["completion_tokens"] <= MAX_TOKENS
    )
    return good, "" if good else f"bad shape: {json.dumps(answer)[:200]}"


def server_status(stats: str, backend: str, server: str) -> str:
    try:
        with urllib.request.urlopen(stats, timeout=2) as resp:
            lines = resp.read().decode().splitlines()
    except (urllib.error.URLError, OSError) as exc:
        return f"stats unreadable: {exc}"
    header = lines[0].lstrip("# ").split(",")
    for line in lines[1:]:
        row = dict(zip(header, line.split(","), strict=False))
        if row.get("pxname") == backend and row.get("svname") == server:
            return row.get("status", "?")
    return "absent"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--requests", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--kill")
    parser.add_argument("--kill-after", type=float, default=1.0)
    parser.add_argument("--stats")
    parser.add_argument("--backend")
    args = parser.parse_args()

    results: list[tuple[float, float, bool, str]] = []
    lock = threading.Lock()
    counter = iter(range(args.requests))
    started = time.monotonic()
    transitions: list[tuple[float, str]] = []
    watching = threading.Event()

    def worker() -> None:
        while True:
            with lock:
                if next(counter, None) is None:
                    return
            begin = time.monotonic()
            ok, why = one_request(args.url, args.model)
            with lock:
                results.append((begin - started, time.monotonic() - begin, ok, why))

    def watch() -> None:
        last = None
        while not watching.is_set():
            status = server_status(args.stats, args.backend, args.kill)
            if status != last:
                transitions.append((round(time.monotonic() - started, 2), status))
                last = status
            time.sleep(0.1)

    watcher = threading.Thread(target=watch, daemon=True) if args.stats and args.kill else None
    if watcher:
        watcher.start()
    threads = [threading.Thread(target=worker) for _ in range(args.concurrency)]
    for thread in threads:
        thread.start()
    killed_at = None
    if args.kill:
        time.sleep(args.kill_after)
        pid = subprocess.run(["systemctl", "show", "--property=MainPID", "--value", args.kill],
                             capture_output=True, text=True, check=True).stdout.strip()
        os.kill(int(pid), signal.SIGKILL)
        killed_at = round(time.monotonic() - started, 2)
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    if watcher:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (transitions and transitions[-1][1] == "UP"
                                                   and any(s.startswith("DOWN") for _, s in transitions)):
            time.sleep(0.2)
        watching.set()
        watcher.join()
    latencies = sorted(r[1] for r in results if r[2])
    failed = [r for r in results if not r[2]]

    def pct(p: float) -> float | None:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 1) if latencies else None

    restarts = None
    if args.kill:
        shown = subprocess.run(["systemctl", "show", "--property=NRestarts", "--value", args.kill],
                               capture_output=True, text=True, check=False)
        restarts = int(shown.stdout.strip() or 0)
    print(json.dumps({
        "requests": len(results), "ok": len(latencies), "failed": len(failed),
        "errors": [r[3] for r in failed][:5], "seconds": round(elapsed, 2),
        "requests_per_s": round(len(latencies) / elapsed, 1), "p50_ms": pct(0.5), "p99_ms": pct(0.99),
        "killed_at": killed_at, "transitions": transitions, "restarts": restarts,
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
