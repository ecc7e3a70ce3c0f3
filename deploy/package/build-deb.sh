#!/usr/bin/env bash
# Builds the Debian packages of omnisync from binaries already compiled for
# one architecture:
#
#   deploy/package/build-deb.sh OUT_DIR VERSION DEB_ARCH BIN_DIR
#
# omnisync-edge: omni-edge, its hardened unit, its user, the serial drivers
#   loaded at boot, the device profiles, an example agent.yaml.
# omnisync-hub: omni-hub, omnictl and omni-nats, the hub's unit and user,
#   the alert rules and dashboards, an example hub.yaml.
# BIN_DIR holds omni-edge (and, for the hub package, omni-hub, omnictl and
# omni-nats; without them only omnisync-edge is built). Needs dpkg-deb.
set -euo pipefail
out=$1 version=$2 arch=$3 bin=$4
root=$(cd "$(dirname "$0")/../.." && pwd)
deploy=$root/deploy

# A Debian version starts with a digit: v1.2.0 -> 1.2.0,
# v1.2.0-3-gabc -> 1.2.0+3.gabc, an untagged abc123 -> 0.0.0~gitabc123.
debver=${version#v}
if ! [[ $debver =~ ^[0-9]+\.[0-9]+ ]]; then debver="0.0.0~git$debver"; fi
debver=$(printf '%s' "$debver" | sed 's/-/+/; s/-/./g')

mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# control PKG DESCRIPTION [DEPENDS]: the package's DEBIAN/control.
control() {
	local pkg=$1 desc=$2 size
	size=$(du -sk --exclude=DEBIAN "$tmp/$pkg" | cut -f1)
	cat >"$tmp/$pkg/DEBIAN/control" <<CONTROL
Package: $pkg
Version: $debver
Architecture: $arch
Maintainer: omnisync <packages@omnisync.example>
Section: net
Priority: optional
Installed-Size: $size
Recommends: systemd
Description: $desc
CONTROL
}

# scripts PKG UNIT: maintainer scripts that create the service's user and
# reload systemd; an upgrade restarts a running service, nothing is enabled
# or started by installing (the configuration comes first).
scripts() {
	local pkg=$1 unit=$2
	cat >"$tmp/$pkg/DEBIAN/postinst" <<SCRIPT
#!/bin/sh
set -e
if [ "\$1" = configure ]; then
	if command -v systemd-sysusers >/dev/null 2>&1; then systemd-sysusers $pkg.conf; fi
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload || true
		systemctl try-restart $unit || true
	fi
fi
SCRIPT
	cat >"$tmp/$pkg/DEBIAN/prerm" <<SCRIPT
#!/bin/sh
set -e
if [ "\$1" = remove ] && [ -d /run/systemd/system ]; then systemctl stop $unit || true; fi
SCRIPT
	cat >"$tmp/$pkg/DEBIAN/postrm" <<SCRIPT
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
SCRIPT
	chmod 0755 "$tmp/$pkg/DEBIAN/postinst" "$tmp/$pkg/DEBIAN/prerm" "$tmp/$pkg/DEBIAN/postrm"
}

build() {
	local pkg=$1
	find "$tmp/$pkg" -type d -exec chmod 0755 {} +
	dpkg-deb --root-owner-group -Zgzip --build "$tmp/$pkg" "$out/${pkg}_${debver}_${arch}.deb" >/dev/null
	echo "$out/${pkg}_${debver}_${arch}.deb"
}

pkg=omnisync-edge
d=$tmp/$pkg
install -d "$d/DEBIAN" "$d/usr/bin" "$d/usr/lib/systemd/system" "$d/usr/lib/sysusers.d" "$d/usr/lib/modules-load.d" \
	"$d/usr/share/omnisync" "$d/usr/share/doc/$pkg"
install -m 0755 "$bin/omni-edge" "$d/usr/bin/"
install -m 0644 "$deploy/systemd/omni-edge.service" "$d/usr/lib/systemd/system/"
install -m 0644 "$deploy/systemd/omnisync-edge.sysusers.conf" "$d/usr/lib/sysusers.d/$pkg.conf"
install -m 0644 "$deploy/systemd/omnisync-serial.conf" "$d/usr/lib/modules-load.d/omnisync-serial.conf"
cp -r "$root/firmware-configs" "$d/usr/share/omnisync/"
find "$d/usr/share/omnisync" -type f -exec chmod 0644 {} +
install -m 0644 "$deploy/systemd/agent.yaml" "$d/usr/share/doc/$pkg/agent.yaml.example"
control $pkg "omnisync store agent
 Keeps a store's POS events durable in an outbox and syncs them with the
 chain's hub over NATS; reads the store's scanners and RFID readers."
scripts $pkg omni-edge.service
build $pkg

if [ -x "$bin/omni-hub" ]; then
	pkg=omnisync-hub
	d=$tmp/$pkg
	install -d "$d/DEBIAN" "$d/usr/bin" "$d/usr/lib/systemd/system" "$d/usr/lib/sysusers.d" \
		"$d/usr/share/omnisync/prometheus" "$d/usr/share/omnisync/grafana" "$d/usr/share/doc/$pkg"
	install -m 0755 "$bin/omni-hub" "$bin/omnictl" "$bin/omni-nats" "$d/usr/bin/"
	install -m 0644 "$deploy/systemd/omni-hub.service" "$d/usr/lib/systemd/system/"
	install -m 0644 "$deploy/systemd/omnisync-hub.sysusers.conf" "$d/usr/lib/sysusers.d/$pkg.conf"
	install -m 0644 "$deploy/prometheus/alerts.yml" "$d/usr/share/omnisync/prometheus/"
	install -m 0644 "$deploy/grafana/dashboards/"*.json "$d/usr/share/omnisync/grafana/"
	install -m 0644 "$deploy/systemd/hub.yaml" "$d/usr/share/doc/$pkg/hub.yaml.example"
	control $pkg "omnisync hub
 Applies the stores' events to the chain's books, serves the HQ API and
 dashboard, publishes catalog and stock to the stores; with omnictl and
 omni-nats."
	scripts $pkg omni-hub.service
	build $pkg
fi
