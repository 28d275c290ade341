#!/bin/bash
# promtool and amtool for the unit tests (tests/unit/roles/prometheus), taken from the Debian 12
# packages the prometheus role installs, so rules are checked by the same Prometheus that runs them.
# Only the two binaries are unpacked into .cache/tools/; nothing is installed and no root is needed.
#
# usage: lab/tools/prometheus-tools.sh
set -euo pipefail

# Debian 12 (bookworm) versions; keep in step with the role's pinned packages.
PROMETHEUS_VERSION=${PROMETHEUS_VERSION:-2.42.0+ds-5+deb12u1}
ALERTMANAGER_VERSION=${ALERTMANAGER_VERSION:-0.25.0-1+b4}

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TOOLS=$ROOT/.cache/tools
DEBS=$TOOLS/debs

say() { echo "prometheus-tools.sh: $*"; }
die() { echo "prometheus-tools.sh: $*" >&2; exit 1; }

# reports TOOL VERSION: the binary exists and was built from that Debian version (Debian's builds
# print it as the revision: "promtool, version 2.42.0+ds (branch: debian/sid, revision: 2.42.0+ds-5+deb12u1)").
reports() {
    [ -x "$1" ] && "$1" --version 2>&1 | head -n 1 | grep -qF "revision: $2)"
}

# fetch PACKAGE VERSION: the .deb of exactly that version into $DEBS, printed as a path.
fetch() {
    local package=$1 version=$2 deb
    deb=$(find "$DEBS" -maxdepth 1 -name "${package}_${version//:/%3a}_*.deb" -print -quit)
    if [ -z "$deb" ]; then
        # apt-cache show exits 0 for a version it does not have; madison lists the ones it has.
        apt-cache madison "$package" | awk -F' *[|] *' '{print $2}' | grep -qxF "$version" ||
            die "$package=$version is not available from this machine's apt sources" \
                "(apt-cache policy $package shows what is; run apt-get update, or change the pin at the top of $0)"
        (cd "$DEBS" && apt-get download -q "$package=$version" >&2) || die "apt-get download $package=$version failed"
        deb=$(find "$DEBS" -maxdepth 1 -name "${package}_${version//:/%3a}_*.deb" -print -quit)
        [ -n "$deb" ] || die "apt-get download $package=$version left no .deb in $DEBS"
    fi
    echo "$deb"
}

# extract DEB MEMBER DEST: one file out of a package, replaced atomically.
extract() {
    local deb=$1 member=$2 dest=$3 tmp
    tmp=$(mktemp -d "$TOOLS/.extract.XXXXXX")
    if ! dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" "./$member"; then
        rm -rf "$tmp"
        die "$member is not in $deb"
    fi
    install -m 0755 "$tmp/$member" "$dest.new"
    rm -rf "$tmp"
    mv -f "$dest.new" "$dest"
}

for tool in apt-get apt-cache dpkg-deb; do
    command -v "$tool" >/dev/null || die "$tool is missing: this needs a Debian host"
done
mkdir -p "$DEBS"

if reports "$TOOLS/promtool" "$PROMETHEUS_VERSION" && reports "$TOOLS/amtool" "$ALERTMANAGER_VERSION"; then
    say "already in place"
else
    # Assignments, not "$(fetch ...)" as an argument: set -e does not see a failed substitution there.
    prometheus_deb=$(fetch prometheus "$PROMETHEUS_VERSION")
    alertmanager_deb=$(fetch prometheus-alertmanager "$ALERTMANAGER_VERSION")
    extract "$prometheus_deb" usr/bin/promtool "$TOOLS/promtool"
    extract "$alertmanager_deb" usr/bin/amtool "$TOOLS/amtool"
    reports "$TOOLS/promtool" "$PROMETHEUS_VERSION" || die "$TOOLS/promtool does not report version $PROMETHEUS_VERSION"
    reports "$TOOLS/amtool" "$ALERTMANAGER_VERSION" || die "$TOOLS/amtool does not report version $ALERTMANAGER_VERSION"
fi

"$TOOLS/promtool" --version 2>&1 | head -n 1
"$TOOLS/amtool" --version 2>&1 | head -n 1
say "promtool $PROMETHEUS_VERSION and amtool $ALERTMANAGER_VERSION in $TOOLS"
