#!/bin/bash
# Stage 1 of the lab VM image: a partitioned raw disk image with a Debian 12
# root filesystem made by debootstrap. Stage 2 (first boot, grub-install,
# update-grub) runs inside the guest and is driven by labvm.py.
#
# usage: build-image.sh RAW_IMAGE BOOT_DIR PUBKEY
#   RAW_IMAGE  raw disk image to create (sparse, 8 GiB)
#   BOOT_DIR   where vmlinuz and initrd.img are copied for the first boot
#   PUBKEY     SSH public key baked into root's authorized_keys
set -euo pipefail

RAW=$1
BOOT_DIR=$2
PUBKEY=$3
RECIPE=$(cd "$(dirname "$0")/recipe" && pwd)
MIRROR=http://deb.debian.org/debian
SUITE=bookworm
SIZE=8G
# Partition 1 starts at 1 MiB; loop partition nodes do not appear on this
# host, so the filesystem is reached through an offset loop device.
PART_OFFSET=$((1024 * 1024))

[ "$(id -u)" -eq 0 ] || { echo "build-image.sh: must run as root (losetup, mount, chroot)" >&2; exit 1; }
for tool in debootstrap sfdisk losetup mkfs.ext4 chroot; do
    command -v "$tool" >/dev/null || { echo "build-image.sh: $tool is missing" >&2; exit 1; }
done

MNT=$(mktemp -d /tmp/labvm-root.XXXXXX)
LOOP=""

cleanup() {
    set +e
    for sub in dev/pts dev proc sys run; do
        mountpoint -q "$MNT/$sub" && umount -l "$MNT/$sub"
    done
    mountpoint -q "$MNT" && umount "$MNT"
    [ -n "$LOOP" ] && losetup -d "$LOOP"
    rmdir "$MNT"
}
trap cleanup EXIT

log() { printf '[build-image %s] %s\n' "$(date +%T)" "$*"; }

in_root() { LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive chroot "$MNT" "$@"; }

# Package list: one place, two apt passes split at the [after-kernel] marker.
read_packages() {
    sed -e 's/#.*//' -e 's/[[:space:]]//g' "$RECIPE/packages.txt" | awk -v want="$1" '
        $0 == "[after-kernel]" { stage = 2; next }
        $0 == "" { next }
        (stage == 2) == (want == 2) { print }'
}
mapfile -t PKGS_1 < <(read_packages 1)
mapfile -t PKGS_2 < <(read_packages 2)

log "disk: $RAW ($SIZE sparse, MBR, one ext4 partition at 1 MiB)"
rm -f "$RAW"
truncate -s "$SIZE" "$RAW"
echo 'start=2048, type=83, bootable' | sfdisk --quiet --label dos "$RAW"
LOOP=$(losetup --find --show --offset "$PART_OFFSET" "$RAW")
mkfs.ext4 -q -L labroot "$LOOP"
mount "$LOOP" "$MNT"

log "debootstrap $SUITE (minbase)"
debootstrap --variant=minbase --components=main,contrib,non-free,non-free-firmware \
    "$SUITE" "$MNT" "$MIRROR" >/dev/null

mount --bind /dev "$MNT/dev"
mount --bind /dev/pts "$MNT/dev/pts"
mount -t proc proc "$MNT/proc"
mount -t sysfs sysfs "$MNT/sys"
mount -t tmpfs tmpfs "$MNT/run"

# Guest configuration files, then host DNS for the chroot's apt only.
cp -a "$RECIPE/rootfs/." "$MNT/"
cp /etc/resolv.conf "$MNT/etc/resolv.conf"
# No service may start inside the chroot.
printf '#!/bin/sh\nexit 101\n' > "$MNT/usr/sbin/policy-rc.d"
chmod 0755 "$MNT/usr/sbin/policy-rc.d"
in_root debconf-set-selections <<'EOF'
grub-pc grub-pc/install_devices_empty boolean true
grub-pc grub-pc/install_devices multiselect
zfs-dkms zfs-dkms/note-incompatible-licenses note
EOF

log "apt pass 1: ${PKGS_1[*]}"
in_root apt-get -q update >/dev/null
in_root apt-get -q -y install "${PKGS_1[@]}" >/dev/null

KVER=$(in_root linux-version list | in_root linux-version sort | tail -n 1)
log "image kernel: $KVER"

log "apt pass 2 (DKMS against $KVER): ${PKGS_2[*]}"
in_root apt-get -q -y install "${PKGS_2[@]}" >/dev/null
# The chroot's uname is the host kernel's: build explicitly for the image's.
in_root dkms autoinstall -k "$KVER"
in_root dkms status
in_root modinfo -k "$KVER" -F version zfs >/dev/null \
    || { echo "build-image.sh: zfs module not built for $KVER" >&2; exit 1; }
log "zfs module for $KVER: $(in_root modinfo -k "$KVER" -F version zfs)"
in_root update-initramfs -u -k "$KVER" >/dev/null

log "configure boot, network and access"
in_root systemctl enable systemd-networkd.service ssh.service >/dev/null
# Nothing on the boot path may wait for the network or run housekeeping.
in_root systemctl mask systemd-networkd-wait-online.service apt-daily.timer \
    apt-daily-upgrade.timer man-db.timer e2scrub_all.timer e2scrub_reap.service \
    fstrim.timer >/dev/null 2>&1
# Installed for the monitoring roles, run only where they configure them (the monitoring host). Debian's
# collector timers stay off in the lab: each runs at every boot and every 15 minutes, and under emulation
# apt_info.py's package-cache load alone costs about a minute of CPU; the container tier runs them.
in_root systemctl disable prometheus.service prometheus-alertmanager.service \
    prometheus-node-exporter-apt.timer prometheus-node-exporter-nvme.timer \
    prometheus-node-exporter-smartmon.timer >/dev/null 2>&1
# Installed for the hardening and LLM serving roles, which enable them where they configure them.
in_root systemctl disable fail2ban.service haproxy.service >/dev/null 2>&1
# Installed for the zfs_snapshots and zfs_replication roles: sanoid's timer would snapshot and prune by the
# package's example policy, ZED would mail root; the roles enable them with their own configuration.
in_root systemctl disable sanoid.timer zfs-zed.service >/dev/null 2>&1
install -d -m 0700 "$MNT/root/.ssh"
install -m 0600 "$PUBKEY" "$MNT/root/.ssh/authorized_keys"
cp "$RECIPE/rootfs/etc/resolv.conf" "$MNT/etc/resolv.conf"
rm -f "$MNT/usr/sbin/policy-rc.d"
in_root passwd -l root >/dev/null
in_root apt-get -q clean

install -d "$BOOT_DIR"
cp "$MNT/boot/vmlinuz-$KVER" "$BOOT_DIR/vmlinuz"
cp "$MNT/boot/initrd.img-$KVER" "$BOOT_DIR/initrd.img"
printf '%s\n' "$KVER" > "$BOOT_DIR/kernel-version"
log "root filesystem done ($(du -sh "$MNT" --exclude=proc --exclude=sys 2>/dev/null | cut -f1))"
