"""The SMTP server's spool in the container (molecule/container/files/smtp_sink.py), HTTP on the host itself, and
a oneshot service run as its timer would run it."""

from __future__ import annotations

import base64
import email
import email.policy
import time

SPOOL = "/var/lib/smtp-sink"


def http_get(host, url: str) -> str:
    """A GET on the host itself (the image has no curl)."""
    program = "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())"
    return host.check_output("python3 -c %s %s", program, url)


def start_unit(host, unit: str) -> tuple[int, str]:
    """Start a oneshot service as its timer would and wait for it; its rc and the run's journal."""
    started = int(host.check_output("date +%s")) - 1
    done = host.run(f"systemctl start {unit}")
    return done.rc, host.check_output(f"journalctl -u {unit} --since @{started} -o cat --no-pager")


def mails(host) -> list[email.message.EmailMessage]:
    names = host.check_output(f"ls {SPOOL}").split()
    out = []
    for name in sorted(n for n in names if n.endswith(".eml")):
        raw = base64.b64decode(host.check_output(f"base64 -w0 {SPOOL}/{name}"))
        out.append(email.message_from_bytes(raw, policy=email.policy.default))
    return out


def wait_for_mail(host, seen: int, subject: str, timeout: float) -> tuple[email.message.EmailMessage, float]:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        for message in mails(host)[seen:]:
            if subject in message["Subject"]:
                return message, time.monotonic() - start
        time.sleep(0.5)
    got = [m["Subject"] for m in mails(host)[seen:]]
    raise AssertionError(f"no mail with {subject!r} within {timeout} s; new mails: {got}")


def body(message: email.message.EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    assert part is not None
    return part.get_content()
