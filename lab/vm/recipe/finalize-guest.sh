#!/bin/bash
# Stage 2 of the lab VM image, run inside the guest over SSH on its first
# boot (kernel and initrd given to QEMU directly). Afterwards the disk boots
# through its own GRUB, so /etc/default/grub.d/*.cfg reaches /proc/cmdline.
set -euo pipefail

grub-install --target=i386-pc /dev/vda
# Later grub-pc upgrades (roles run apt-get) must know where GRUB lives.
debconf-set-selections <<'EOF'
grub-pc grub-pc/install_devices multiselect /dev/vda
grub-pc grub-pc/install_devices_empty boolean false
EOF
update-grub
grep -q 'intel_iommu=on' /boot/grub/grub.cfg || { echo "intel_iommu=on missing from grub.cfg" >&2; exit 1; }

# The guest's own apt sources must work: the roles install packages.
apt-get -q update >/dev/null
apt-get -q clean

echo "boot time (first boot, direct kernel):"
systemd-analyze time || true
systemd-analyze blame --no-pager | head -n 8 || true
fstrim -v /
