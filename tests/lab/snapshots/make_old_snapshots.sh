#!/bin/sh
# Create snapshots whose creation time really lies in the past: the system clock is set back for
# each 'zfs snapshot', then restored (from the monotonic uptime, so no second is lost). sanoid 2.1.0
# takes a snapshot's age from its 'creation' property, which ZFS records from the clock.
#
# usage: make_old_snapshots.sh DATASET TYPE:AGE_HOURS ...
#   TYPE hourly|daily|weekly|monthly|yearly gives sanoid's name autosnap_<time>_<type>;
#   TYPE manual gives manual-<age>h (a name sanoid never prunes).
# Prints one created snapshot name per line, in argument order.
set -eu
dataset=$1
shift
start=$(date -u +%s)
up0=$(cut -d' ' -f1 /proc/uptime)
restore() {
    up=$(cut -d' ' -f1 /proc/uptime)
    date -u -s "@$(awk -v s="$start" -v a="$up0" -v b="$up" 'BEGIN { printf "%d", s + (b - a) + 1 }')" >/dev/null
}
trap restore EXIT
for spec in "$@"; do
    kind=${spec%%:*}
    hours=${spec#*:}
    when=$((start - hours * 3600))
    date -u -s "@$when" >/dev/null
    if [ "$kind" = manual ]; then
        name="manual-${hours}h"
    else
        name="autosnap_$(date -u -d "@$when" +%Y-%m-%d_%H:%M:%S)_$kind"
    fi
    zfs snapshot "$dataset@$name"
    echo "$dataset@$name"
done
