"""The sshd role's result, judged by ssh-audit 3.9.0's built-in "Hardened Debian 12 (version 3)" policy, by sshd -T
and by an SSH client, against the container's real sshd (OpenSSH 9.2p1 from Debian 12).

For contrast, the same sshd binary is started a second time on another port with Debian's own configuration (the
main sshd_config without the drop-in directory, Debian's default host keys): the policy must fail there, and the
failures are printed (pytest -s shows them in the Molecule log).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

POLICY = "Hardened Debian 12 (version 3)"
DROPIN = "/etc/ssh/sshd_config.d/00-onprem-hardening.conf"
BASELINE_PORT = 2200
SSH_AUDIT = shutil.which("ssh-audit") or str(Path(sys.executable).parent / "ssh-audit")


def _address(host) -> str:
    return host.interface("eth0").addresses[0]


def _audit(address: str, port: int) -> dict:
    done = subprocess.run([SSH_AUDIT, "-j", "-p", str(port), "-P", POLICY, address], capture_output=True,
                          text=True, timeout=120, check=False)
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def baseline(host):
    """Debian's sshd as installed, on BASELINE_PORT, for as long as the module's tests run."""
    host.check_output(
        "grep -v '^Include /etc/ssh/sshd_config.d/' /etc/ssh/sshd_config > /run/sshd_config.baseline && "
        f"/usr/sbin/sshd -f /run/sshd_config.baseline -p {BASELINE_PORT} -o PidFile=/run/sshd-baseline.pid "
        "-h /etc/ssh/ssh_host_rsa_key -h /etc/ssh/ssh_host_ecdsa_key -h /etc/ssh/ssh_host_ed25519_key"
    )
    yield BASELINE_PORT
    host.run("kill $(cat /run/sshd-baseline.pid)")


def test_hardened_sshd_passes_the_hardened_debian_12_policy(host) -> None:
    result = _audit(_address(host), 22)
    assert result["policy"] == POLICY
    assert result["errors"] == [], json.dumps(result["errors"], indent=1)
    assert result["passed"] is True


def test_debian_defaults_fail_the_same_policy(host, baseline) -> None:
    result = _audit(_address(host), baseline)
    print(f"\nssh-audit -P '{POLICY}' against Debian 12's own sshd settings:")
    for error in result["errors"]:
        print(f"  {error['mismatched_field']}: expected {error['expected_required']}, actual {error['actual']}")
    assert result["passed"] is False
    fields = {error["mismatched_field"] for error in result["errors"]}
    assert {"Ciphers", "MACs", "Key exchanges", "Host keys"} <= fields


def test_the_server_offers_public_key_authentication_only(host) -> None:
    done = subprocess.run(
        ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
         "-o", "PreferredAuthentications=none", "-o", "ConnectTimeout=10", f"nobody@{_address(host)}", "true"],
        capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 255
    assert "Permission denied (publickey)." in done.stderr, done.stderr


@pytest.mark.parametrize(("peer", "root_login"), [("172.17.0.1", "without-password"), ("192.0.2.7", "no")])
def test_root_by_key_only_from_the_management_network(host, peer: str, root_login: str) -> None:
    settings = host.check_output(f"sshd -T -C user=root,host=peer,addr={peer}")
    assert f"permitrootlogin {root_login}" in settings.splitlines()
    assert "passwordauthentication no" in settings.splitlines()


def test_host_keys_are_ed25519_and_rsa_of_4096_bits(host) -> None:
    keys = [line.split(" ", 1)[1] for line in host.check_output("sshd -T").splitlines() if line.startswith("hostkey ")]
    assert keys[0] == "/etc/ssh/ssh_host_ed25519_key" and len(keys) == 2
    assert host.check_output(f"ssh-keygen -l -f {keys[1]}.pub").split()[0] == "4096"


def test_no_group_exchange_modulus_below_3072_bits(host) -> None:
    sizes = {int(line.split()[4]) for line in host.file("/etc/ssh/moduli").content_string.splitlines()
             if line and not line.startswith("#")}
    assert sizes and min(sizes) >= 3071


def test_dropin_and_no_rollback_left_armed(host) -> None:
    dropin = host.file(DROPIN)
    assert dropin.is_file and dropin.user == "root" and dropin.mode == 0o644
    assert not host.file("/var/lib/onprem/sshd/pending.json").exists
    assert host.run("systemctl is-active onprem-sshd-rollback.timer").stdout.strip() != "active"
