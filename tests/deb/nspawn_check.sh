#!/bin/sh
# Booted-systemd check of the Debian package, in a systemd-nspawn container of a debootstrapped Debian.
#
#   sudo tests/deb/nspawn_check.sh [ROOT]      (after `make deb`; ROOT defaults to /var/tmp/indiredis-nspawn)
#
# Installs redis-server, indi-bin and dist/indiredis_*.deb in the container, boots it, runs
# `systemctl enable --now indiredis-inditoredis` with Redis and an indiserver (telescope + CCD
# simulators) inside, and checks `systemctl is-active` and the journal's start-up lines.
# Not part of `make test`: it downloads a Debian system (a few minutes).
set -eu
ROOT=${1:-/var/tmp/indiredis-nspawn}
DEB=$(ls dist/indiredis_*.deb | tail -n 1)
export DEBIAN_FRONTEND=noninteractive
command -v systemd-nspawn >/dev/null && command -v debootstrap >/dev/null || \
    apt-get install -y -q --no-install-recommends systemd-container debootstrap
if [ ! -x "$ROOT/bin/systemctl" ]; then
    debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus bookworm "$ROOT" http://deb.debian.org/debian
fi
printf '127.0.0.1 localhost\n::1 localhost\n' > "$ROOT/etc/hosts"
cp "$DEB" "$ROOT/root/"
chroot "$ROOT" sh -c "apt-get update -q && apt-get install -y -q --no-install-recommends redis-server indi-bin /root/$(basename "$DEB")"
cat > "$ROOT/etc/systemd/system/indiserver.service" <<'UNIT'
[Unit]
Description=indiserver with the telescope and CCD simulators
[Service]
ExecStart=/usr/bin/indiserver indi_simulator_telescope indi_simulator_ccd
[Install]
WantedBy=multi-user.target
UNIT
chroot "$ROOT" systemctl enable indiserver.service redis-server.service
systemd-nspawn -q -D "$ROOT" --register=no --keep-unit -b >/dev/null 2>&1 &
NSPAWN=$!
trap 'kill $NSPAWN 2>/dev/null || true' EXIT
for _ in $(seq 50); do INIT=$(pgrep -P $NSPAWN | head -n 1 || true); [ -n "$INIT" ] && break; sleep 0.2; done
inside() { nsenter -t "$INIT" -a "$@"; }
inside systemctl is-system-running --wait || true
echo "container booted"
inside systemctl enable --now indiredis-inditoredis
inside systemctl is-active indiredis-inditoredis
inside systemctl show -p StatusText indiredis-inditoredis
inside journalctl -u indiredis-inditoredis --no-pager | tail -n 8
inside journalctl -u indiredis-inditoredis --no-pager | grep -q "inditoredis ready"
echo "nspawn check passed"
