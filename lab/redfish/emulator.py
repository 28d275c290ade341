#!/usr/bin/env python3
"""Redfish BMCs for the bmc tests: sushy-tools 2.2.0 behind TLS and HTTP basic auth.

    python3 lab/redfish/emulator.py start   # both emulators; prints their addresses as JSON
    python3 lab/redfish/emulator.py stop

- libvirt: the libvirt driver on test:///default (no daemon: Debian's python3-libvirt talks to libvirt's
  in-process test driver), port 8443. BIOS attributes with an attribute registry, power, boot override. Its state
  lives in the emulator process: a restart is a fresh machine.
- fake: sushy-tools' fake driver, port 8444: virtual media (the libvirt test driver cannot upload a volume, so
  InsertMedia fails there with "virStorageVolUpload not supported"); it has no BIOS.

Everything lives under .cache/redfish: the virtualenv (/usr/bin/python3 with system site packages, for Debian's
libvirt binding), a self-signed certificate for 127.0.0.1 (the tests verify against it), a bcrypt htpasswd file
(sushy-tools accepts no other hash) and each emulator's configuration, log and pid file.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HERE = REPO / ".cache" / "redfish"
VENV = HERE / "venv"
REQUIREMENTS = Path(__file__).resolve().parent / "requirements.txt"
USER = "onprem-bmc"
EMULATORS = {
    "libvirt": {"port": 8443, "settings": {"SUSHY_EMULATOR_LIBVIRT_URI": "test:///default"}},
    "fake": {"port": 8444, "settings": {"SUSHY_EMULATOR_FAKE_DRIVER": True}},
}


def run(*argv: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=True, **kwargs)


def setup_venv() -> None:
    stamp = VENV / ".requirements"
    want = REQUIREMENTS.read_text()
    if (VENV / "bin" / "sushy-emulator").exists() and stamp.exists() and stamp.read_text() == want:
        return
    run("/usr/bin/python3", "-m", "venv", "--system-site-packages", str(VENV))
    run(str(VENV / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", "-r", str(REQUIREMENTS))
    run(str(VENV / "bin" / "python"), "-c", "import libvirt")
    stamp.write_text(want)


def setup_credentials() -> dict[str, str]:
    cert, key = HERE / "cert.pem", HERE / "key.pem"
    if not cert.exists():
        run(
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "30",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            stderr=subprocess.DEVNULL,
        )
    password_file = HERE / "password"
    if not password_file.exists():
        password_file.write_text(secrets.token_urlsafe(18))
        password_file.chmod(0o600)
    password = password_file.read_text()
    hashed = run(
        str(VENV / "bin" / "python"),
        "-c",
        "import bcrypt, sys; print(bcrypt.hashpw(sys.argv[1].encode(), bcrypt.gensalt()).decode())",
        password,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (HERE / "htpasswd").write_text(f"{USER}:{hashed}\n")
    return {"cert": str(cert), "key": str(key), "user": USER, "password": password}


def answering(port: int, ca: str) -> bool:
    context = ssl.create_default_context(cafile=ca)
    try:
        with urllib.request.urlopen(f"https://127.0.0.1:{port}/redfish/v1", context=context, timeout=2) as reply:
            return reply.status == 200
    except OSError:
        return False


def start() -> dict:
    HERE.mkdir(parents=True, exist_ok=True)
    setup_venv()
    creds = setup_credentials()
    stop()
    for name, spec in EMULATORS.items():
        state = HERE / f"state-{name}"
        state.mkdir(exist_ok=True)
        # Virtual media records are kept in sqlite across restarts: a fresh start is a fresh BMC.
        for old in state.iterdir():
            old.unlink()
        settings = {
            "SUSHY_EMULATOR_LISTEN_IP": "127.0.0.1",
            "SUSHY_EMULATOR_LISTEN_PORT": spec["port"],
            "SUSHY_EMULATOR_SSL_CERT": creds["cert"],
            "SUSHY_EMULATOR_SSL_KEY": creds["key"],
            "SUSHY_EMULATOR_AUTH_FILE": str(HERE / "htpasswd"),
            "SUSHY_EMULATOR_STATE_DIR": str(state),
            "SUSHY_EMULATOR_FEATURE_SET": "full",
            **spec["settings"],
        }
        conf = HERE / f"{name}.conf"
        conf.write_text("".join(f"{k} = {v!r}\n" for k, v in settings.items()))
        with open(HERE / f"{name}.log", "w", encoding="utf-8") as log:
            proc = subprocess.Popen(
                [str(VENV / "bin" / "sushy-emulator"), "--config", str(conf)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        (HERE / f"{name}.pid").write_text(str(proc.pid))
    deadline = time.monotonic() + 30
    for name, spec in EMULATORS.items():
        while not answering(spec["port"], creds["cert"]):
            if time.monotonic() > deadline:
                sys.exit(f"emulator {name} does not answer; its log:\n{(HERE / f'{name}.log').read_text()[-2000:]}")
            time.sleep(0.1)
    return {
        "ca_path": creds["cert"],
        "username": creds["user"],
        "password": creds["password"],
        **{name: f"127.0.0.1:{spec['port']}" for name, spec in EMULATORS.items()},
    }


def stop() -> None:
    for name in EMULATORS:
        pid_file = HERE / f"{name}.pid"
        if not pid_file.exists():
            continue
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.killpg(int(pid_file.read_text()), signal.SIGTERM)
        pid_file.unlink()


if __name__ == "__main__":
    if sys.argv[1:] == ["start"]:
        json.dump(start(), sys.stdout)
        sys.stdout.write("\n")
    elif sys.argv[1:] == ["stop"]:
        stop()
    else:
        sys.exit(__doc__)
