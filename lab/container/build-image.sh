#!/usr/bin/env bash
# Build the systemd Debian 12 image that Molecule's container scenarios boot.
#
# There is no registry to pull from, so the root filesystem comes from debootstrap and is
# turned into an image with `docker import`. The sha256 of this file is the recipe hash and
# is stored as an image label: an image carrying the same hash is reused, not rebuilt.
#
#   build-image.sh            build unless an image with this recipe exists
#   build-image.sh --force    build even if it exists
#
# systemd stops on SIGRTMIN+3; docker 20.10's import cannot set STOPSIGNAL, so callers
# stop containers with that signal themselves (molecule: destroy kills them).
#
# Environment: LAB_IMAGE (tag), DEBIAN_MIRROR, LAB_IMAGE_WORK_DIR (scratch, default .cache/container-image).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
RECIPE="$(realpath "${BASH_SOURCE[0]}")"
IMAGE="${LAB_IMAGE:-onprem-lab/debian12-systemd:bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SUITE=bookworm
WORK_DIR="${LAB_IMAGE_WORK_DIR:-${REPO_ROOT}/.cache/container-image}"
LABEL=org.onprem.gpu-server.recipe-sha256

# minbase + what a booted systemd host needs + what Ansible (python3, python3-apt, sudo)
# and testinfra (procps, iproute2) use on the target.
PACKAGES=(
  systemd systemd-sysv dbus libpam-systemd
  python3 python3-apt ca-certificates
  sudo procps iproute2 apt-utils gnupg
)

# Units that only make sense on real hardware or a real console, and apt timers that would
# grab the dpkg lock in the middle of a converge.
MASKED_UNITS=(
  getty.target console-getty.service getty@tty1.service
  systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket
  systemd-udev-trigger.service systemd-remount-fs.service systemd-firstboot.service
  dev-hugepages.mount sys-fs-fuse-connections.mount sys-kernel-config.mount
  sys-kernel-debug.mount sys-kernel-tracing.mount proc-sys-fs-binfmt_misc.automount
  systemd-journald-audit.socket
  apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer
)

log() { printf 'build-image: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

force=false
case "${1:-}" in
  --force) force=true ;;
  "") ;;
  *) echo "usage: $0 [--force]" >&2; exit 2 ;;
esac

[[ ${EUID} -eq 0 ]] || die "debootstrap needs root"
command -v debootstrap >/dev/null 2>&1 || die "debootstrap not found (apt-get install debootstrap)"
docker info >/dev/null 2>&1 || die "no Docker engine answers; run lab/container/docker-engine.sh start"

recipe_sha="$(sha256sum "${RECIPE}" | cut -d' ' -f1)"
existing_sha="$(docker image inspect --format "{{ index .Config.Labels \"${LABEL}\" }}" "${IMAGE}" 2>/dev/null || true)"
if [[ "${existing_sha}" == "${recipe_sha}" && "${force}" == false ]]; then
  log "${IMAGE} is up to date (recipe ${recipe_sha:0:12}); nothing to build"
  exit 0
fi
log "building ${IMAGE} (recipe ${recipe_sha:0:12}${existing_sha:+, replacing ${existing_sha:0:12}})"

start=${SECONDS}
mkdir -p "${WORK_DIR}/debs"
rootfs="$(mktemp -d "${WORK_DIR}/rootfs.XXXXXX")"
chmod 0755 "${rootfs}" # mktemp's 0700 would become the mode of / in the image
cleanup() {
  local mp
  for mp in proc sys dev/pts dev; do
    mountpoint -q "${rootfs}/${mp}" 2>/dev/null && umount -l "${rootfs}/${mp}"
  done
  rm -rf --one-file-system "${rootfs}"
}
trap cleanup EXIT

include="$(IFS=,; echo "${PACKAGES[*]}")"
debootstrap --variant=minbase --include="${include}" --cache-dir="${WORK_DIR}/debs" \
  "${SUITE}" "${rootfs}" "${MIRROR}" >"${WORK_DIR}/debootstrap.log" 2>&1 \
  || { tail -n 30 "${WORK_DIR}/debootstrap.log" >&2; die "debootstrap failed (${WORK_DIR}/debootstrap.log)"; }
log "debootstrap done after $((SECONDS - start))s"

# The archive a real bookworm host uses, in deb822 form.
rm -f "${rootfs}/etc/apt/sources.list"
cat >"${rootfs}/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: ${MIRROR}
Suites: ${SUITE} ${SUITE}-updates ${SUITE}-backports
Components: main contrib non-free non-free-firmware
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${MIRROR%/debian}/debian-security
Suites: ${SUITE}-security
Components: main contrib non-free non-free-firmware
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES

# Package lists are part of a freshly installed host; check mode needs them to predict installs.
mount -t proc proc "${rootfs}/proc"
cp /etc/resolv.conf "${rootfs}/etc/resolv.conf"
chroot "${rootfs}" apt-get -q update >>"${WORK_DIR}/debootstrap.log" 2>&1 || die "apt-get update in the image failed"
chroot "${rootfs}" systemctl mask "${MASKED_UNITS[@]}" >/dev/null 2>&1 || die "masking units failed"
chroot "${rootfs}" systemctl set-default multi-user.target >/dev/null 2>&1
umount "${rootfs}/proc"

# Each container gets its own machine id at first boot; Docker provides hostname and resolver.
: >"${rootfs}/etc/machine-id"
rm -f "${rootfs}/var/lib/dbus/machine-id" "${rootfs}/etc/resolv.conf" "${rootfs}/etc/hostname"
rm -rf "${rootfs}"/var/cache/apt/*.bin "${rootfs}"/var/cache/apt/archives/*.deb "${rootfs}"/tmp/* "${rootfs}"/var/log/*.log

tar -C "${rootfs}" --numeric-owner --xattrs -c . | docker import \
  --change "LABEL ${LABEL}=${recipe_sha}" \
  --change 'ENV container=docker' \
  --change 'CMD ["/sbin/init"]' \
  --message "debootstrap ${SUITE} minbase + systemd" \
  - "${IMAGE}" >/dev/null || die "docker import failed"

size="$(docker image inspect --format '{{.Size}}' "${IMAGE}")"
log "built ${IMAGE} ($((size / 1024 / 1024)) MiB) in $((SECONDS - start))s"
