#!/bin/sh
# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# onprem-nic-irq-affinity: put the tuned NICs' interrupts on their cores again.
#
#   onprem-nic-irq-affinity                  apply the config (the boot unit runs this)
#   onprem-nic-irq-affinity SYSFS_PATH IRQ   irqbalance --policyscript: print ban=true for a tuned NIC's IRQ
#
# IRQ numbers change between boots, so the config names NICs by MAC and this plans again at every
# run, with the code the nic_irq_affinity module uses: irq.py, which lies next to this file both in
# the collection and on the host. The nic_tuning role copies both files unchanged into
# /usr/local/lib/onprem-nic-irq-affinity and links /usr/local/sbin/onprem-nic-irq-affinity to this one.
#
# The shell reads only the next line and hands the file to /usr/bin/python3 (ansible-test admits
# /bin/sh, not a python3 path, as the interpreter line of a file outside plugins/modules); to Python
# that line is a string expression and does nothing.
"exec" "/usr/bin/python3" "-I" "$0" "$@"  # fmt: skip

from __future__ import annotations

import importlib
import json
import os
import sys
from types import ModuleType

CONFIG = "/etc/onprem/nic-irq-affinity.json"


def load_irq() -> ModuleType:
    """irq.py from this file's real directory (the host runs this through a symlink, and python3 -I
    leaves the script's directory off sys.path)."""
    here = os.path.dirname(os.path.realpath(__file__))
    if here not in sys.path:
        sys.path.insert(0, here)
    return importlib.import_module("irq")


def main(argv: list[str], config: str = CONFIG, root: str = "/") -> int:
    """Apply the config, or answer irqbalance's policy question for ``argv == [SYSFS_PATH, IRQ]``."""
    irq = load_irq()
    with open(config, encoding="utf-8") as handle:
        nics = json.load(handle)["nics"]
    if len(argv) == 2:
        if argv[1].isdigit() and irq.banned(root, nics, int(argv[1])):
            sys.stdout.write("ban=true\n")
        return 0
    for line in irq.apply_config(root, nics):
        sys.stdout.write(line + "\n")
    return 0


if __name__ == "__main__":
    # SystemExit rather than sys.exit: ansible-test's pylint bans sys.exit calls below plugins/module_utils.
    raise SystemExit(main(sys.argv[1:]))
