#!/bin/sh
# Booted-systemd check of the Debian package, in a systemd-nspawn container of a debootstrapped Debian.
#
#   sudo tests/deb/nspawn_check.sh [ROOT [DEB]]
#
# ROOT defaults to /var/tmp/indiredis-nspawn (kept between runs: the first run downloads a minimal
# bookworm, about a minute on a good mirror; later runs take a few seconds), DEB to the newest
# dist/indiredis_*.deb (`make deb`). INDIREDIS_DEBIAN_MIRROR overrides the mirror.
# Installs redis-server, indi-bin and the .deb's dependencies in the container and boots it; inside,
# with Redis and an indiserver (telescope + CCD simulators) running: installs the .deb (nothing may
# start), runs `systemctl enable --now indiredis-inditoredis` and checks `systemctl is-active` and the
# journal's start-up lines, starts a second inditoredis from the template (indiredis-inditoredis@dome2,
# its own key prefix), restarts redis-server and finds the reconnect in the journal by its MESSAGE_ID,
# reinstalls the package (both are restarted); after a boot with indiredis-indiserver, checks that the
# simulators reach Redis, then again with `[redis] socket = /run/redis/redis-server.sock` in common.ini
# (redis-server's Unix socket, unixsocketperm 770, the unit in group redis by a drop-in); then removes the
# package (everything is stopped) and purges it.
# Run by tests/deb/test_package.py, which skips it when no container can be booted here.
set -eu
ROOT=${1:-/var/tmp/indiredis-nspawn}
DEB=${2:-$(ls dist/indiredis_*.deb | tail -n 1)}
MIRROR=${INDIREDIS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
export DEBIAN_FRONTEND=noninteractive
command -v systemd-nspawn >/dev/null && command -v debootstrap >/dev/null || \
    apt-get install -y -q --no-install-recommends systemd-container debootstrap

# a root only counts once debootstrap finished: it is built aside and renamed
if [ ! -x "$ROOT/bin/systemctl" ]; then
    # a run interrupted during debootstrap may have left /proc or /sys mounted in the half-built root
    awk -v prefix="$ROOT.new/" 'index($2, prefix) == 1 { print $2 }' /proc/mounts | sort -r | \
        while read -r mount; do umount -l "$mount"; done
    rm -rf --one-file-system "$ROOT.new" "$ROOT"
    debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus bookworm "$ROOT.new" "$MIRROR"
    mv "$ROOT.new" "$ROOT"
fi
printf '127.0.0.1 localhost\n::1 localhost\n' > "$ROOT/etc/hosts"
cp "$DEB" "$ROOT/root/"
# the package itself is installed in the booted container, to run its maintainer scripts under systemd;
# installing and purging it here first brings in its dependencies
chroot "$ROOT" sh -c "apt-get update -q && apt-get install -y -q --no-install-recommends redis-server indi-bin /root/$(basename "$DEB") && dpkg -P indiredis"
# what the Unix socket block below changes, undone in case an earlier run stopped before undoing it
sed -i '/^unixsocket/d' "$ROOT/etc/redis/redis.conf"
rm -rf "$ROOT/etc/systemd/system/indiredis-inditoredis.service.d"
cat > "$ROOT/etc/systemd/system/indiserver.service" <<'UNIT'
[Unit]
Description=indiserver with the telescope and CCD simulators
[Service]
ExecStart=/usr/bin/indiserver indi_simulator_telescope indi_simulator_ccd
[Install]
WantedBy=multi-user.target
UNIT
chroot "$ROOT" systemctl enable indiserver.service redis-server.service
# --register=no --keep-unit: the host needs no systemd-machined (its PID 1 need not even be systemd)
systemd-nspawn -q -D "$ROOT" --register=no --keep-unit -b >/dev/null 2>&1 &
NSPAWN=$!
trap 'kill $NSPAWN 2>/dev/null || true; wait $NSPAWN 2>/dev/null || true' EXIT
# the container's PID 1 seen from here: a process under systemd-nspawn that is PID 1 in its own PID
# namespace (not `pgrep -P`: nspawn's first child is a short-lived intermediate process)
container_init() {
    for pid in $(pgrep -x systemd); do
        [ "$(awk '/^NSpid:/ { print $NF }' /proc/$pid/status 2>/dev/null)" = 1 ] || continue
        ancestor=$pid
        while [ -n "$ancestor" ] && [ "$ancestor" -gt 1 ]; do
            [ "$ancestor" = "$NSPAWN" ] && { echo "$pid"; return; }
            ancestor=$(awk '/^PPid:/ { print $2 }' /proc/$ancestor/status 2>/dev/null)
        done
    done
}
INIT=
for _ in $(seq 150); do INIT=$(container_init); [ -n "$INIT" ] && break; sleep 0.2; done
[ -n "$INIT" ] || { echo "systemd-nspawn did not start a container"; exit 1; }
inside() { nsenter -t "$INIT" -a "$@"; }
inside systemctl is-system-running --wait || true
echo "container booted"
UNIT=indiredis-inditoredis
inside apt-get install -y -q --no-install-recommends "/root/$(basename "$DEB")"
for unit in $UNIT indiredis-web.socket; do
    [ "$(inside systemctl is-active $unit)" = inactive ] || { echo "$unit started on installation"; exit 1; }
done
inside systemctl enable --now $UNIT
inside systemctl is-active $UNIT
inside systemctl show -p StatusText $UNIT
inside journalctl -u $UNIT --no-pager | tail -n 8
inside journalctl -u $UNIT --no-pager | grep -q "inditoredis ready"
# a second instance from the template, as the README says to make one
INSTANCE=indiredis-inditoredis@dome2
inside sh -c 'printf "[redis]\nkeyprefix = dome2_\n[service]\nblob_folder = /var/lib/indiredis/dome2\n" > /tmp/dome2.ini &&
    install -m 0640 -g indiredis /tmp/dome2.ini /etc/indiredis/inditoredis-dome2.ini'
inside systemctl enable --now $INSTANCE
[ "$(inside systemctl is-active $INSTANCE)" = active ] || { echo "$INSTANCE is not active"; exit 1; }
for _ in $(seq 50); do
    inside redis-cli smembers dome2_devices | grep -q "Telescope Simulator" && break; sleep 0.2
done
inside redis-cli smembers dome2_devices | grep -q "Telescope Simulator" || { echo "$INSTANCE wrote nothing"; exit 1; }
echo "template instance active"
# the journal's fields (docs/journal.md): restarting redis-server is logged as a loss, then a recovery,
# each with its MESSAGE_ID (taken from the installed package, where it is defined) and INDIREDIS_LINK=redis
RESTORED=$(inside python3 -c 'from indiredis.events import Event; print(Event.LINK_RESTORED.value)')
LOST=$(inside python3 -c 'from indiredis.events import Event; print(Event.LINK_LOST.value)')
inside systemctl restart redis-server
for _ in $(seq 100); do
    inside journalctl -u $UNIT MESSAGE_ID="$RESTORED" -q --no-pager | grep -q "connected to Redis" && break; sleep 0.2
done
inside journalctl -u $UNIT MESSAGE_ID="$LOST" INDIREDIS_LINK=redis -q --no-pager | grep "Redis unavailable" || \
    { echo "no MESSAGE_ID=$LOST line for the loss of Redis"; exit 1; }
inside journalctl -u $UNIT MESSAGE_ID="$RESTORED" INDIREDIS_LINK=redis -q --no-pager | grep "connected to Redis" || \
    { echo "no MESSAGE_ID=$RESTORED line for the reconnect to Redis"; exit 1; }
echo "journal: link lost and restored"
FIRST=$(inside systemctl show -p MainPID --value $UNIT)
FIRST_INSTANCE=$(inside systemctl show -p MainPID --value $INSTANCE)
inside apt-get install -y -q --reinstall "/root/$(basename "$DEB")"
SECOND=$(inside systemctl show -p MainPID --value $UNIT)
SECOND_INSTANCE=$(inside systemctl show -p MainPID --value $INSTANCE)
[ "$SECOND" != "$FIRST" ] && [ "$(inside systemctl is-active $UNIT)" = active ] || \
    { echo "not restarted by the upgrade (main pid $FIRST, then $SECOND)"; exit 1; }
[ "$SECOND_INSTANCE" != "$FIRST_INSTANCE" ] && [ "$(inside systemctl is-active $INSTANCE)" = active ] || \
    { echo "$INSTANCE not restarted by the upgrade (main pid $FIRST_INSTANCE, then $SECOND_INSTANCE)"; exit 1; }
echo "restarted by the upgrade"
# --- indiredis-indiserver (drivers block) ---------------------------------------------------------------
# the shipped indiserver unit enabled with indiredis-inditoredis, in place of the hand-made indiserver.service
# (both would take port 7624); after a boot the simulators of /etc/indiredis/indiserver.ini (as shipped)
# reach Redis, indiserver runs sandboxed as indiredis, and a driver started through its FIFO appears too
inside systemctl disable --now indiserver.service
inside systemctl enable indiredis-indiserver $UNIT
inside systemctl show -p After --value $UNIT | grep -q "indiredis-indiserver.service" || \
    { echo "$UNIT is not ordered after indiredis-indiserver"; exit 1; }
inside systemctl stop $UNIT $INSTANCE
inside redis-cli flushall >/dev/null  # nothing in Redis from before the boot
inside systemctl poweroff || true
wait $NSPAWN 2>/dev/null || true
systemd-nspawn -q -D "$ROOT" --register=no --keep-unit -b >/dev/null 2>&1 &
NSPAWN=$!
INIT=
for _ in $(seq 150); do INIT=$(container_init); [ -n "$INIT" ] && break; sleep 0.2; done
[ -n "$INIT" ] || { echo "the container did not boot again"; exit 1; }
inside systemctl is-system-running --wait || true
echo "container booted again"
for _ in $(seq 150); do
    [ "$(inside redis-cli smembers indi_devices | grep -c "Telescope Simulator\|CCD Simulator")" = 2 ] && break
    sleep 0.2
done
[ "$(inside redis-cli smembers indi_devices | grep -c "Telescope Simulator\|CCD Simulator")" = 2 ] || \
    { inside journalctl -u indiredis-indiserver -u $UNIT --no-pager | tail -n 20; echo "no simulators in Redis after boot"; exit 1; }
SERVER=$(inside systemctl show -p MainPID --value indiredis-indiserver)
[ "$(inside stat -c %U "/proc/$SERVER")" = indiredis ] && [ "$(inside readlink "/proc/$SERVER/exe")" = /usr/bin/indiserver ] || \
    { echo "indiredis-indiserver's main process is not indiserver run by indiredis"; exit 1; }
inside test -p /run/indiredis/indiserver.fifo || { echo "no indiserver FIFO"; exit 1; }
inside sh -c 'echo "start indi_simulator_focus" > /run/indiredis/indiserver.fifo'
for _ in $(seq 150); do inside redis-cli smembers indi_devices | grep -q "Focuser Simulator" && break; sleep 0.2; done
inside redis-cli smembers indi_devices | grep -q "Focuser Simulator" || { echo "the FIFO started nothing"; exit 1; }
echo "indiserver unit: simulators in Redis after boot"
# --- end of the indiredis-indiserver block ---------------------------------------------------------------
# --- Redis over its Unix socket ([redis] socket, docs/configuration.md) ----------------------------------
# Debian's redis-server listening on /run/redis/redis-server.sock with unixsocketperm 770, the unit given
# the group redis by a drop-in, `socket = ...` in common.ini: the simulators reach Redis through the socket
SOCKET=/run/redis/redis-server.sock
inside sh -c "printf 'unixsocket $SOCKET\nunixsocketperm 770\n' >> /etc/redis/redis.conf"
inside systemctl restart redis-server
for _ in $(seq 50); do inside test -S $SOCKET && break; sleep 0.2; done
inside test -S $SOCKET || { echo "redis-server does not listen on $SOCKET"; exit 1; }
inside mkdir -p /etc/systemd/system/$UNIT.service.d
inside sh -c "printf '[Service]\nSupplementaryGroups=redis\n' > /etc/systemd/system/$UNIT.service.d/redis-socket.conf"
inside sed -i "s|^\[redis\]\$|[redis]\nsocket = $SOCKET|" /etc/indiredis/common.ini
inside grep -q "^socket = $SOCKET" /etc/indiredis/common.ini || { echo "common.ini has no [redis] socket"; exit 1; }
inside systemctl daemon-reload
inside systemctl stop $UNIT
inside redis-cli flushall >/dev/null
inside systemctl start $UNIT
for _ in $(seq 150); do
    [ "$(inside redis-cli smembers indi_devices | grep -c "Telescope Simulator\|CCD Simulator")" = 2 ] && break
    sleep 0.2
done
[ "$(inside redis-cli smembers indi_devices | grep -c "Telescope Simulator\|CCD Simulator")" = 2 ] || \
    { inside journalctl -u $UNIT --no-pager | tail -n 20; echo "no simulators in Redis through $SOCKET"; exit 1; }
inside journalctl -u $UNIT --no-pager | grep "connected to Redis unix:$SOCKET" || \
    { echo "$UNIT did not say it connected to unix:$SOCKET"; exit 1; }
inside redis-cli client list | grep -q "addr=$SOCKET" || { echo "no Redis client on $SOCKET"; exit 1; }
echo "unix socket: simulators in Redis through $SOCKET"
inside sed -i '/^unixsocket/d' /etc/redis/redis.conf  # the kept root back to Debian's configuration
inside rm -r /etc/systemd/system/$UNIT.service.d
inside systemctl daemon-reload
# --- end of the Unix socket block ----------------------------------------------------------------------
inside dpkg -r indiredis
[ "$(inside systemctl is-active $UNIT)" != active ] && [ "$(inside systemctl is-active $INSTANCE)" != active ] && \
    [ -z "$(inside find /proc -maxdepth 1 -user indiredis)" ] || \
    { echo "still running after removal"; exit 1; }
echo "stopped by removal"
inside dpkg -P indiredis
echo "nspawn check passed"
