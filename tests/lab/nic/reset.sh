#!/bin/sh
# Put the spare NIC back to the e1000e driver defaults and remove what the role writes, so that the
# proof starts from the same state on a VM that ran it before. $1: the NIC's MAC.
set -eu
ifname=$(ip -o link show | awk -v m="link/ether $1 " 'index($0, m) { sub(":$", "", $2); print $2 }')
rm -f "/etc/systemd/network/10-onprem-nic-$(echo "$1" | tr : -).link" /etc/sysctl.d/60-onprem-nic-tuning.conf
ip link set dev "$ifname" mtu 1500
ethtool -G "$ifname" rx 256 tx 256
ethtool -C "$ifname" rx-usecs 3
ethtool -K "$ifname" generic-receive-offload on
