#!/usr/bin/env bash
# scripts/engine2.sh - a second, older Docker engine beside the main one, for the multi-engine tests, as root.
#
#   scripts/engine2.sh [-v] [--stop]
#
# Debian 12's docker.io 20.10.24 (API 1.41) is unpacked from its .deb (apt-get download + dpkg -x, never
# installed, so the main 26.1.5 stays) into $ENGINE2_ROOT and started with everything of its own: socket
# $ENGINE2_HOST, data root, exec root, pid file and a bridge ($ENGINE2_BRIDGE, $ENGINE2_BRIDGE_CIDR, apart
# from docker0's 172.17.0.0/16). It runs its own containerd (the installed binary) under its exec root and
# the installed runc. The busybox test image is copied from the main engine (docker save | docker load).
# Idempotent and quiet: when the engine answers and holds the image, nothing is done. `--stop` stops it
# (SIGTERM to its pid file's process only); its data stays.
#
# Environment knobs (all optional):
#   ENGINE2_ROOT   (default /opt/reconciler-engine2)          the unpacked package and its state
#   ENGINE2_HOST   (default unix:///run/reconciler-engine2/docker.sock)
#   ENGINE2_BRIDGE (default br-rcengine2)   ENGINE2_BRIDGE_CIDR (default 172.31.250.1/24)
#   ENGINE2_VERSION (default 20.10.24+dfsg1-1+deb12u1+b6)      ENGINE2_WAIT_SECONDS (default 60)
#   ENGINE2_IMAGES (default: the busybox and rich test images) images copied from the main engine
#   ENGINE2_TLS_ADDR (default 127.0.0.1:23760)  a TLS listener (client certificates required); the CA,
#                  server and client certificates are generated with openssl into $ENGINE2_ROOT/tls
#                  (ca.pem, cert.pem, key.pem for clients), once
set -euo pipefail

VERBOSE=0 STOP=0
for arg in "$@"; do
    case "$arg" in
        -v|--verbose) VERBOSE=1 ;;
        --stop) STOP=1 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "engine2.sh: unknown argument: $arg (usage: engine2.sh [-v] [--stop])" >&2; exit 2 ;;
    esac
done

ROOT=${ENGINE2_ROOT:-/opt/reconciler-engine2}
HOST=${ENGINE2_HOST:-unix:///run/reconciler-engine2/docker.sock}
BRIDGE=${ENGINE2_BRIDGE:-br-rcengine2}
BRIDGE_CIDR=${ENGINE2_BRIDGE_CIDR:-172.31.250.1/24}
VERSION=${ENGINE2_VERSION:-20.10.24+dfsg1-1+deb12u1+b6}
WAIT=${ENGINE2_WAIT_SECONDS:-60}
IMAGES=${ENGINE2_IMAGES:-reconciler-test/busybox:latest reconciler-test/rich:latest}
TLS_ADDR=${ENGINE2_TLS_ADDR:-127.0.0.1:23760}
TLS=$ROOT/tls
TREE=$ROOT/tree
PIDFILE=$ROOT/dockerd.pid
LOG=/var/log/reconciler-engine2.log
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

log() { if (( VERBOSE )); then echo "engine2.sh: $*" >&2; fi; }
die() { echo "engine2.sh: ERROR: $*" >&2; exit 1; }
(( EUID == 0 )) || die "must run as root"

engine2() { DOCKER_HOST=$HOST timeout 20 docker "$@"; }
answers() { engine2 version --format '{{.Server.Version}}' >/dev/null 2>&1; }
tls_answers() {
    curl -fsS --max-time 5 --cacert "$TLS/ca.pem" --cert "$TLS/cert.pem" --key "$TLS/key.pem" \
        "https://$TLS_ADDR/_ping" >/dev/null 2>&1
}

# A CA, a server certificate for the listener's address and a client certificate (docker's TLS guide).
certificates() {
    [[ -s $TLS/cert.pem && -s $TLS/server-cert.pem ]] && return 0
    mkdir -p "$TLS" && chmod 700 "$TLS"
    (
        cd "$TLS"
        openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=reconciler-engine2-ca \
            -keyout ca-key.pem -out ca.pem
        openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout server-key.pem -out server.csr
        printf 'subjectAltName=IP:%s,DNS:localhost\nextendedKeyUsage=serverAuth\n' "${TLS_ADDR%:*}" >server.ext
        openssl x509 -req -days 3650 -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial \
            -extfile server.ext -out server-cert.pem
        openssl req -newkey rsa:2048 -nodes -subj /CN=client -keyout key.pem -out client.csr
        printf 'extendedKeyUsage=clientAuth\n' >client.ext
        openssl x509 -req -days 3650 -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial \
            -extfile client.ext -out cert.pem
        rm -f server.csr client.csr server.ext client.ext
        chmod 600 ./*key.pem
    ) >>"$LOG" 2>&1 || die "generating the TLS certificates failed (see $LOG)"
}
# The engine runs as `dockerd-engine2` (a link to the unpacked dockerd): tools that look for the main engine
# by process name (`pgrep -x dockerd`, an older scripts/engine.sh) must not mistake it for that.
COMM=dockerd-engine2
pid_alive() {
    local p state
    p=$(cat "$PIDFILE" 2>/dev/null || true)
    [[ -n "$p" && "$(cat "/proc/$p/comm" 2>/dev/null)" == "$COMM" ]] || return 1
    state=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | cut -d' ' -f1)
    [[ -n "$state" && "$state" != Z ]]
}

stop_engine() {
    pid_alive || { log "not running"; return 0; }
    kill -TERM "$(cat "$PIDFILE")"
    local deadline=$((SECONDS + 30))
    while pid_alive && (( SECONDS < deadline )); do sleep 0.5; done
    pid_alive && die "dockerd (pid $(cat "$PIDFILE")) did not stop within 30 s"
    log "stopped"
}

unpack() {
    [[ -x $TREE/usr/sbin/dockerd ]] && return 0
    local tmp
    tmp=$(mktemp -d /tmp/reconciler-engine2.XXXXXX)
    log "downloading docker.io=$VERSION"
    (cd "$tmp" && apt-get download -q "docker.io=$VERSION" >>"$LOG" 2>&1) \
        || { (apt-get update -q >>"$LOG" 2>&1 && cd "$tmp" && apt-get download -q "docker.io=$VERSION" >>"$LOG" 2>&1) \
        || { rm -rf "$tmp"; die "apt-get download docker.io=$VERSION failed (see $LOG)"; }; }
    mkdir -p "$ROOT"
    rm -rf "$TREE.new"
    dpkg -x "$tmp"/docker.io_*.deb "$TREE.new"
    rm -rf "$tmp"
    mv "$TREE.new" "$TREE"
}

bridge() {
    ip link show "$BRIDGE" >/dev/null 2>&1 || ip link add "$BRIDGE" type bridge
    ip -br addr show "$BRIDGE" | grep -qF "${BRIDGE_CIDR}" || ip addr add "$BRIDGE_CIDR" dev "$BRIDGE"
    ip link set "$BRIDGE" up
}

# The package's docker-init is a link to tini-static (the installed tini package, a dependency of both
# docker.io versions); use the host's file that link resolves to.
init_path() {
    local p
    p=$(readlink -f "$TREE/usr/bin/docker-init" || true)
    if [[ -x $p ]]; then echo "$p"; return 0; fi
    command -v tini-static || command -v docker-init || die "no tini-static for --init-path (apt-get install tini)"
}

start_engine() {
    local sock=${HOST#unix://}
    mkdir -p "$(dirname "$sock")" "$ROOT/data" "$ROOT/exec"
    [[ -e $PIDFILE ]] && ! pid_alive && rm -f "$PIDFILE"
    if ! pid_alive; then
        log "starting dockerd $VERSION on $HOST (log: $LOG)"
        echo "=== $(date -Is) engine2.sh starting dockerd" >>"$LOG"
        # PATH first into the unpacked tree (docker-proxy, docker-init), then the installed containerd/runc.
        ln -sf dockerd "$TREE/usr/sbin/$COMM"
        PATH="$TREE/usr/sbin:$TREE/usr/bin:$PATH" setsid nohup "$TREE/usr/sbin/$COMM" \
            -H "$HOST" -H "tcp://$TLS_ADDR" --tlsverify --tlscacert "$TLS/ca.pem" \
            --tlscert "$TLS/server-cert.pem" --tlskey "$TLS/server-key.pem" --data-root "$ROOT/data" --exec-root "$ROOT/exec" --pidfile "$PIDFILE" \
            --bridge "$BRIDGE" --userland-proxy-path "$TREE/usr/sbin/docker-proxy" \
            --init-path "$(init_path)" --iptables=false --ip-masq=false \
            >>"$LOG" 2>&1 </dev/null &
    fi
    local deadline=$((SECONDS + WAIT))
    until answers && tls_answers; do
        (( SECONDS < deadline )) || { tail -n 20 "$LOG" | sed 's/^/    /' >&2; die "engine 2 did not answer on $HOST within ${WAIT}s"; }
        sleep 0.5
    done
}

load_images() {
    local image
    for image in $IMAGES; do
        engine2 image inspect "$image" >/dev/null 2>&1 && continue
        log "loading $image"
        docker image inspect "$image" >/dev/null 2>&1 || die "image $image is not on the main engine (run scripts/test-images.sh)"
        docker save "$image" | DOCKER_HOST=$HOST docker load -q >/dev/null
    done
}

if (( STOP )); then stop_engine; exit 0; fi
certificates
if answers && ! tls_answers; then
    log "running without the TLS listener: restarting it"
    stop_engine
fi
if ! answers; then
    unpack
    bridge
    start_engine
fi
load_images
log "engine 2 answers on $HOST: $(engine2 version --format '{{.Server.Version}} (API {{.Server.APIVersion}})')"
