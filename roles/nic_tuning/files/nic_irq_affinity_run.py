# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Put the tuned NICs' interrupts on their cores again (installed by the onprem.gpu_server.nic_tuning role).

Run by /usr/local/sbin/onprem-nic-irq-affinity (a sh wrapper: python3 is not named ``python`` on Debian).

IRQ numbers change between boots, so the config names NICs by MAC and this plans again at every
run, with the same code the nic_irq_affinity module uses (irq.py, next to this file).

  onprem-nic-irq-affinity                  apply the config (the boot unit runs this)
  onprem-nic-irq-affinity SYSFS_PATH IRQ   irqbalance --policyscript: print ban=true for a tuned NIC's IRQ
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import irq

CONFIG = "/etc/onprem/nic-irq-affinity.json"


def main(argv: list[str]) -> int:
    with open(CONFIG, encoding="utf-8") as handle:
        nics = json.load(handle)["nics"]
    if len(argv) == 2:
        if argv[1].isdigit() and irq.banned("/", nics, int(argv[1])):
            print("ban=true")
        return 0
    for line in irq.apply_config("/", nics):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
