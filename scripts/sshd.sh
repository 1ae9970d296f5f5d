#!/usr/bin/env bash
# scripts/sshd.sh - an SSH server on loopback for the ssh:// client tests, as root.
#
#   scripts/sshd.sh [--stop]
#
# docker-map clients may name an engine as `base_url: ssh://user@host:port`; docker-py reaches it through
# paramiko and runs `docker system dial-stdio` on the far side. This starts Debian's OpenSSH server (the
# package is installed if missing, without starting the system's own sshd) with a configuration of its own:
# listening on $SSHD_ADDR only, key authentication only, host and client keys generated once into
# $SSHD_ROOT (host_key, client_key, known_hosts line in known_host). Its sessions reach the main engine (the
# default socket). Idempotent and quiet: when it is up, nothing is done. `--stop` stops it.
#
# Environment knobs: SSHD_ROOT (default /opt/reconciler-sshd), SSHD_ADDR (default 127.0.0.1:22220).
set -euo pipefail

ROOT=${SSHD_ROOT:-/opt/reconciler-sshd}
ADDR=${SSHD_ADDR:-127.0.0.1:22220}
PIDFILE=$ROOT/sshd.pid

running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

if [ "${1:-}" = "--stop" ]; then
    if running; then kill "$(cat "$PIDFILE")"; fi
    exit 0
fi
running && exit 0

if [ ! -x /usr/sbin/sshd ]; then
    echo "sshd.sh: installing openssh-server (Debian package; the system's sshd is not started)" >&2
    # policy-rc.d keeps the package's postinst from starting an sshd on port 22 for the whole machine.
    created_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && created_policy=1
    fi
    (apt-get install -y -qq openssh-server >/dev/null 2>&1 ||
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server >/dev/null; })
    [ "$created_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
fi

mkdir -p "$ROOT" /run/sshd
chmod 700 "$ROOT"
[ -f "$ROOT/host_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$ROOT/host_key"
[ -f "$ROOT/client_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$ROOT/client_key"
cp "$ROOT/client_key.pub" "$ROOT/authorized_keys"
host=${ADDR%:*} port=${ADDR##*:}
echo "[$host]:$port $(cut -d' ' -f1,2 "$ROOT/host_key.pub")" > "$ROOT/known_host"
cat > "$ROOT/sshd_config" <<CONF
ListenAddress $ADDR
HostKey $ROOT/host_key
PidFile $PIDFILE
AuthorizedKeysFile $ROOT/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AllowTcpForwarding no
X11Forwarding no
CONF
/usr/sbin/sshd -f "$ROOT/sshd_config" -E "$ROOT/sshd.log"
for _ in $(seq 50); do running && exit 0; sleep 0.1; done
echo "sshd.sh: sshd did not start (see $ROOT/sshd.log)" >&2
exit 1
