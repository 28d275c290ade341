#!/bin/sh
# Start state for the proof, also on a VM that ran it before: irqbalance stopped with its packaged
# options, no files of the role, the spare NICs up (their drivers request the MSI-X vectors when the
# interface is opened) and every one of their IRQs on all CPUs. $@: the NICs' MACs.
set -eu
systemctl stop irqbalance.service
sed -i '/^IRQBALANCE_ARGS=/d' /etc/default/irqbalance
systemctl disable --now onprem-nic-irq-affinity.service 2>/dev/null || true
rm -rf /etc/systemd/system/onprem-nic-irq-affinity.service /etc/onprem/nic-irq-affinity.json \
  /usr/local/sbin/onprem-nic-irq-affinity /usr/local/lib/onprem-nic-irq-affinity
# Stands in for the host's network configuration (systemd-networkd, ifupdown), which brings the NICs up at
# boot before network-online.target; the lab VM's spare NICs are otherwise never up.
cat > /usr/local/sbin/niclab-spare-nics-up <<SCRIPT
#!/bin/sh
for mac in $*; do
  ip -o link show | awk -v m="link/ether \$mac " 'index(\$0, m) { sub(":\$", "", \$2); print \$2 }' | xargs -r -I{} ip link set dev {} up
done
SCRIPT
chmod 755 /usr/local/sbin/niclab-spare-nics-up
cat > /etc/systemd/system/niclab-spare-nics-up.service <<UNIT
[Unit]
Description=Lab: bring the spare NICs up
Before=network-online.target
[Service]
Type=oneshot
ExecStart=/usr/local/sbin/niclab-spare-nics-up
[Install]
WantedBy=network-online.target
UNIT
systemctl daemon-reload
systemctl enable niclab-spare-nics-up.service
for mac in "$@"; do
  ifname=$(ip -o link show | awk -v m="link/ether $mac " 'index($0, m) { sub(":$", "", $2); print $2 }')
  ip link set dev "$ifname" up
  dev=$(readlink -f "/sys/class/net/$ifname/device")
  for path in "$dev"/msi_irqs/*; do cat /sys/devices/system/cpu/online > "/proc/irq/${path##*/}/smp_affinity_list"; done
done
