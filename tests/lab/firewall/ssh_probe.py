"""Watch SSH to a lab VM from the controller while its firewall changes, and work out the recovery time.

``watch``: first the clock offset guest - controller: a connected SSH session prints "ready", the
controller sends a line and the guest answers with its clock; the exchange takes milliseconds, so
the offset is known to within half of it (the rollback deadline is on the guest's clock). Then one
fresh SSH login (no connection sharing) after another, each running "true", until logins have failed
at least twice in a row and one succeeds again, or the deadline passes. Attempts run one at a time:
parallel logins overload an emulated guest and fail for that reason alone. Each attempt is bounded by
ConnectTimeout and a hard timeout, because QEMU's user-mode port forward accepts the TCP connection on
127.0.0.1 even while the guest drops the packets: only a completed login counts. Prints JSON.

``analyse``: reads that JSON on stdin and, given the rollback deadline (guest clock) and the confirm
timeout, prints the times on the controller's clock; only attempts that began after the apply count.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any


def ssh_argv(args: argparse.Namespace, command: str) -> list[str]:
    return ["ssh", "-p", str(args.port), "-i", args.key, "-o", "BatchMode=yes", "-o", "ConnectTimeout=4",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
            "-o", "ControlMaster=no", "-o", "ControlPath=none", f"root@{args.host}", command]


def clock_offset(args: argparse.Namespace) -> tuple[float, float]:
    with subprocess.Popen(ssh_argv(args, "echo ready; read line; date +%s.%N"), stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdin and proc.stdout
        if proc.stdout.readline().strip() != "ready":
            raise SystemExit("clock offset: no 'ready' from the guest")
        sent = time.time()
        proc.stdin.write("go\n")
        proc.stdin.flush()
        guest = float(proc.stdout.readline())
        received = time.time()
    return guest - (sent + received) / 2, (received - sent) / 2


def probe(args: argparse.Namespace) -> bool:
    try:
        return subprocess.run(ssh_argv(args, "true"), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=8, check=False).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def watch(args: argparse.Namespace) -> dict[str, Any]:
    offset, uncertainty = clock_offset(args)
    start = time.time()
    attempts: list[list[Any]] = []
    failed_in_row = 0
    while time.time() - start < args.deadline:
        began = time.time()
        ok = probe(args)
        ended = time.time()
        attempts.append([round(began, 3), round(ended, 3), ok])
        if ok and failed_in_row >= 2:
            break
        failed_in_row = 0 if ok else failed_in_row + 1
        time.sleep(max(0.0, 1.0 - (ended - began)))
    return {"offset_s": offset, "offset_uncertainty_s": uncertainty, "attempts": attempts}


def analyse(watched: dict[str, Any], rollback_at: float, timeout: float) -> dict[str, Any]:
    """Recovery times on the controller's clock from the watcher's attempts."""
    deadline = rollback_at - watched["offset_s"]
    armed = deadline - timeout
    after = [a for a in watched["attempts"] if a[0] >= armed]
    first_fail = next((a for a in after if not a[2]), None)
    recovered = min((a[1] for a in after if a[2] and first_fail and a[0] > first_fail[0]), default=None)

    def since(moment: float | None, origin: float) -> float | None:
        return None if moment is None else round(moment - origin, 2)

    return {
        "confirm_timeout_s": timeout,
        "first_fail_after_apply_s": since(first_fail[0] if first_fail else None, armed),
        "apply_to_ssh_s": since(recovered, armed),
        "deadline_to_ssh_s": since(recovered, deadline),
        "failed_logins_after_apply": sum(1 for a in after if not a[2]),
        "failed_logins_before_apply": sum(1 for a in watched["attempts"] if a[0] < armed and not a[2]),
        "clock_offset_s": round(watched["offset_s"], 3),
        "clock_offset_uncertainty_s": round(watched["offset_uncertainty_s"], 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("watch")
    w.add_argument("--host", default="127.0.0.1")
    w.add_argument("--port", type=int, required=True)
    w.add_argument("--key", required=True)
    w.add_argument("--deadline", type=float, default=240, help="give up after this many seconds")
    a = sub.add_parser("analyse")
    a.add_argument("--rollback-at", type=float, required=True, help="rollback deadline, guest clock (epoch s)")
    a.add_argument("--timeout", type=float, required=True, help="confirm timeout in seconds")
    args = parser.parse_args()
    if args.command == "watch":
        json.dump(watch(args), sys.stdout)
    else:
        json.dump(analyse(json.load(sys.stdin), args.rollback_at, args.timeout), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
