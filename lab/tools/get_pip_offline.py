"""Offline stand-in for the pip bootstrap script that ansible-test downloads.

ansible-test bootstraps pip into each fresh virtual environment by running a
``get-pip.py`` fetched from the internet, looking for a cached copy first. This
machine cannot reach that host, so ``dev.sh`` places this file in the cache:
it installs pip from the interpreter's bundled ``ensurepip`` wheel and then
installs the requested pip version and packages from the configured package
index. The CA bundle is passed explicitly because ansible-test runs this with a
stripped environment and its own ``PIP_CONFIG_FILE``.
"""

from __future__ import annotations

import os
import subprocess
import sys

CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
# Options understood by get-pip.py but not by ``pip install``.
GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}


def main() -> int:
    args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY]
    subprocess.run([sys.executable, "-m", "ensurepip", "--default-pip"], check=True)
    command = [sys.executable, "-m", "pip", "install"]
    if os.path.exists(CA_BUNDLE):
        command += ["--cert", CA_BUNDLE]
    return subprocess.run(command + args, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
