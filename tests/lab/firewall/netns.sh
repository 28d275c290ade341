#!/bin/sh
# Test network for tests/lab/firewall.yml, inside the lab VM (never on a real host):
#   namespace fwtest  10.98.0.2 --veth-- fwtest0 10.98.0.1 (host end, the firewall's "test" zone)
#   namespace fwctr   10.97.0.2 --veth-- fwctr0  10.97.0.1 (a stand-in for a container bridge)
# Listeners: host 8080 and 8081, fwctr 8080 and 8081 (python3 -m http.server, transient units).
# Table ip onprem_lab_nat publishes fwctr's ports as Docker does for "-p": DNAT in prerouting,
# host 9080 -> 10.97.0.2:8080, host 9081 -> 10.97.0.2:8081. It is a separate table, like Docker's.
#   netns.sh up | down
set -eu

down() {
	for unit in fwlab-host-8080 fwlab-host-8081 fwlab-ctr-8080 fwlab-ctr-8081; do
		systemctl stop "$unit.service" 2>/dev/null || true
		systemctl reset-failed "$unit.service" 2>/dev/null || true
	done
	nft delete table ip onprem_lab_nat 2>/dev/null || true
	ip link del fwtest0 2>/dev/null || true
	ip link del fwctr0 2>/dev/null || true
	ip netns del fwtest 2>/dev/null || true
	ip netns del fwctr 2>/dev/null || true
}

pair() { # namespace host-end ns-end host-address ns-address
	ip netns add "$1"
	ip link add "$2" type veth peer name "$3"
	ip link set "$3" netns "$1"
	ip addr add "$4/24" dev "$2"
	ip link set "$2" up
	ip -n "$1" addr add "$5/24" dev "$3"
	ip -n "$1" link set lo up
	ip -n "$1" link set "$3" up
	ip -n "$1" route add default via "$4"
}

listen() { # unit-name [netns] port
	if [ $# -eq 3 ]; then
		systemd-run --quiet --unit="$1" --working-directory=/tmp ip netns exec "$2" python3 -m http.server "$3"
		port=$3 ns="ip netns exec $2"
	else
		systemd-run --quiet --unit="$1" --working-directory=/tmp python3 -m http.server "$2"
		port=$2 ns=""
	fi
	i=0
	until $ns python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 1)" "$port" 2>/dev/null; do
		i=$((i + 1)); [ $i -lt 60 ] || { echo "listener $1 did not start" >&2; exit 1; }
		sleep 0.5
	done
}

up() {
	down
	pair fwtest fwtest0 fwtest1 10.98.0.1 10.98.0.2
	pair fwctr fwctr0 fwctr1 10.97.0.1 10.97.0.2
	sysctl -q -w net.ipv4.ip_forward=1
	nft -f - <<'NFT'
table ip onprem_lab_nat {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		iifname "fwtest0" tcp dport 9080 dnat to 10.97.0.2:8080
		iifname "fwtest0" tcp dport 9081 dnat to 10.97.0.2:8081
	}
}
NFT
	listen fwlab-host-8080 8080
	listen fwlab-host-8081 8081
	listen fwlab-ctr-8080 fwctr 8080
	listen fwlab-ctr-8081 fwctr 8081
}

"$1"
