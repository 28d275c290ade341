#!/bin/sh
# The spare NIC's values as ethtool, ip, udevadm and sysctl print them (not through the module),
# one "key=value" a line. $1: the NIC's MAC.
set -eu
mac=$1
ifname=$(ip -o link show | awk -v m="link/ether $1 " 'index($0, m) { sub(":$", "", $2); print $2 }')
[ -n "$ifname" ] || { echo "no interface with MAC $mac" >&2; exit 1; }
echo "ifname=$ifname"
ethtool -g "$ifname" | awk '/^Current hardware settings:/ { c = 1 } c && /^RX:/ { print "rx=" $2 } c && /^TX:/ { print "tx=" $2 }'
ethtool -c "$ifname" | awk '/^rx-usecs:/ { print "rx_usecs=" $2 }'
ethtool -k "$ifname" | awk '/^generic-receive-offload:/ { print "gro=" $2 }'
echo "mtu=$(cat "/sys/class/net/$ifname/mtu")"
# 1 = NET_NAME_ENUM: the kernel's own ethN name, not renamed by udev (4 would be NET_NAME_RENAMED).
echo "name_assign_type=$(cat "/sys/class/net/$ifname/name_assign_type")"
# The name the kernel registered the device under in this boot (e1000e logs it at probe).
pci=$(basename "$(readlink "/sys/class/net/$ifname/device")")
echo "kernel_name=$(journalctl -k -b -o cat | awk -v bus="$pci" '$2 == bus && /PCI Express/ { sub(":$", "", $3); print $3; exit }')"
echo "altnames=$(ip -d link show dev "$ifname" | awk '$1 == "altname" { printf "%s ", $2 }')"
udevadm info --query=property --path="/sys/class/net/$ifname" | grep '^ID_NET_LINK_FILE=' || echo "ID_NET_LINK_FILE="
echo "rmem_max=$(sysctl -n net.core.rmem_max)"
echo "wmem_max=$(sysctl -n net.core.wmem_max)"
