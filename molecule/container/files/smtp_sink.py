#!/usr/bin/python3
"""A real SMTP server on loopback for the monitoring tests (test scaffolding, not part of the collection).

aiosmtpd (Debian's python3-aiosmtpd) with AUTH required: a message is accepted only after a login with the
user and password given on the command line, so a mail in the spool also proves the sender used the right
password. Each message is written whole to <spool>/<n>.eml.
"""

import argparse
import os
import signal
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Spool:
    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.lock = threading.Lock()
        os.makedirs(directory, exist_ok=True)

    # aiosmtpd's hook name.
    async def handle_DATA(self, server, session, envelope) -> str:
        with self.lock:
            n = len([f for f in os.listdir(self.directory) if f.endswith(".eml")])
            tmp = os.path.join(self.directory, f".{n}.tmp")
            with open(tmp, "wb") as out:
                out.write(envelope.original_content or envelope.content)
            os.rename(tmp, os.path.join(self.directory, f"{n:04d}.eml"))
        return "250 OK"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=2525)
    parser.add_argument("--spool", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password-file", required=True)
    args = parser.parse_args()
    with open(args.password_file, "rb") as f:
        password = f.read().strip()
    user = args.user.encode()

    def authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data.login == user and auth_data.password == password
        return AuthResult(success=ok, handled=False)

    controller = Controller(
        Spool(args.spool),
        hostname="127.0.0.1",
        port=args.port,
        authenticator=authenticate,
        auth_required=True,
        auth_require_tls=False,
        # Alertmanager's LOGIN client expects the challenges "Username:"/"Password:", aiosmtpd sends "User Name";
        # PLAIN is the mechanism relays offer alike.
        auth_exclude_mechanism=["LOGIN"],
    )
    controller.start()
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    controller.stop()


if __name__ == "__main__":
    main()
