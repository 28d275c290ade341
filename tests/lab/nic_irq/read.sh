#!/bin/sh
# The spare NICs' IRQs and their affinity as sysfs and /proc print them (not through the module),
# and irqbalance's state. One "key=value" a line; $@: the NICs' MACs.
set -eu
for mac in "$@"; do
  ifname=$(ip -o link show | awk -v m="link/ether $mac " 'index($0, m) { sub(":$", "", $2); print $2 }')
  [ -n "$ifname" ] || { echo "no interface with MAC $mac" >&2; exit 1; }
  dev=$(readlink -f "/sys/class/net/$ifname/device")
  out=""
  for path in "$dev"/msi_irqs/*; do
    irq=${path##*/}
    out="$out $irq:$(cat "/proc/irq/$irq/smp_affinity_list" 2>/dev/null || echo none)"
  done
  echo "$mac=${out# }"
done
echo "cpus_online=$(cat /sys/devices/system/cpu/online)"
echo "irqbalance=$(systemctl is-active irqbalance.service || true)"
pid=$(pidof irqbalance || true)
cmdline=""
if [ -n "$pid" ]; then cmdline=$(tr '\0' ' ' < "/proc/$pid/cmdline"); fi
echo "irqbalance_cmdline=$cmdline"
echo "boot_unit=$(systemctl is-active onprem-nic-irq-affinity.service || true)"
