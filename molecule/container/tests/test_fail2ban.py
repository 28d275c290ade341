"""The fail2ban role in the container: the sshd jail runs from the journal, and its filter, as the role configures
it, catches every failed login in real sshd log lines.

``files/sshd-journal-bookworm.log`` is ``journalctl -u ssh -o short`` from a Debian 12 container with this
collection's hardened sshd (OpenSSH 9.2p1-2+deb12u10), recorded 2026-12-06: four logins as root with a key the
host does not know (a real user, a wrong key: sshd logs only "Connection closed by authenticating user ...
[preauth]"), two as a user that does not exist, then one accepted login. fail2ban 1.0.2's sshd filter in its
default mode sees only the two invalid users; the role uses mode "aggressive", which sees all six.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

RECORDED = Path(__file__).resolve().parents[1] / "files" / "sshd-journal-bookworm.log"
FAILED_CONNECTIONS = {"1379", "1381", "1383", "1385", "1387", "1389"}
ACCEPTED_CONNECTION = "1391"


JAIL_FILE = "/etc/fail2ban/jail.d/onprem-sshd.local"


@pytest.fixture(scope="module")
def recorded(host) -> str:
    host.ansible("copy", f"src={RECORDED} dest=/root/sshd-journal.log mode=0644", check=False)
    return "/root/sshd-journal.log"


def _matched(output: str) -> set[str]:
    """sshd PIDs of the lines fail2ban-regex --print-all-matched lists as matched."""
    return set(re.findall(r"sshd\[(\d+)\]", output.split("Matched line(s):", 1)[1].split("`-", 1)[0]))


def _jail_filter(host) -> str:
    """The sshd filter with the mode the deployed jail file sets (fail2ban's own filter.d/sshd.conf)."""
    modes = re.findall(r"^mode\s*=\s*(\S+)", host.file(JAIL_FILE).content_string, re.MULTILINE)
    return f"sshd[mode={modes[-1]}]" if modes else "sshd"


def test_the_sshd_jail_runs_from_the_journal(host) -> None:
    status = host.check_output("fail2ban-client status sshd")
    assert "Journal matches:" in status and "_SYSTEMD_UNIT=ssh.service" in status


def test_the_jails_filter_catches_every_failed_login_in_real_sshd_lines(host, recorded: str) -> None:
    output = host.check_output(f"fail2ban-regex --print-all-matched {recorded} '{_jail_filter(host)}'")
    matched = _matched(output)
    assert matched == FAILED_CONNECTIONS, output
    assert ACCEPTED_CONNECTION not in matched


def test_the_default_mode_would_miss_wrong_keys_for_real_users(host, recorded: str) -> None:
    assert _matched(host.check_output(f"fail2ban-regex --print-all-matched {recorded} sshd")) == {"1381", "1387"}
