#!/usr/bin/env bash
# scripts/engine.sh - make a real Docker engine and a local registry available
# on this Debian 12 (bookworm) machine, as root.
#
#   scripts/engine.sh [-v]
#
# What it does (idempotent; prints nothing on success unless -v is given):
#   1. If `docker info` answers, the engine is left alone.
#   2. Otherwise, if dockerd is missing or is not 26.x, installs Debian 13
#      (trixie)'s docker.io 26.1.5 + containerd + docker-cli from a temporary
#      apt source (the machine's own Debian mirror URI, read from its apt
#      sources; the machine's apt state never sees trixie). Dependencies come
#      from bookworm. Falls back to bookworm's docker.io 20.10 with a warning.
#      Also installs busybox-static, docker-registry and iproute2 if missing.
#   3. Starts dockerd in the background (log: /var/log/dockerd-reconciler.log)
#      and waits until `docker info` answers (bounded).
#   4. Starts Debian's docker-registry on 127.0.0.1:5000 with our own config
#      and storage under /var/lib/reconciler-test-registry (log:
#      /var/log/reconciler-test-registry.log), and waits until /v2/ answers.
#
# Environment knobs (all optional):
#   ENGINE_WAIT_SECONDS   (default 60)  how long to wait for dockerd
#   REGISTRY_WAIT_SECONDS (default 30)  how long to wait for the registry
#   REGISTRY_ADDR         (default 127.0.0.1:5000)
#   REGISTRY_STATE_DIR    (default /var/lib/reconciler-test-registry)
set -euo pipefail

VERBOSE=0
for arg in "$@"; do
    case "$arg" in
        -v|--verbose) VERBOSE=1 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "engine.sh: unknown argument: $arg (usage: engine.sh [-v])" >&2; exit 2 ;;
    esac
done

ENGINE_WAIT_SECONDS=${ENGINE_WAIT_SECONDS:-60}
REGISTRY_WAIT_SECONDS=${REGISTRY_WAIT_SECONDS:-30}
REGISTRY_ADDR=${REGISTRY_ADDR:-127.0.0.1:5000}
REGISTRY_STATE_DIR=${REGISTRY_STATE_DIR:-/var/lib/reconciler-test-registry}
DOCKERD_LOG=/var/log/dockerd-reconciler.log
REGISTRY_LOG=/var/log/reconciler-test-registry.log
INSTALL_LOG=/var/log/reconciler-engine-install.log
WANT_MAJOR=26

export DEBIAN_FRONTEND=noninteractive
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

log()  { if (( VERBOSE )); then echo "engine.sh: $*" >&2; fi; }
warn() { echo "engine.sh: WARNING: $*" >&2; }
die()  { echo "engine.sh: ERROR: $*" >&2; exit 1; }

(( EUID == 0 )) || die "must run as root"

CLEANUP=()
# shellcheck disable=SC2317
cleanup() { local d; for d in "${CLEANUP[@]}"; do rm -rf -- "$d"; done; }
trap cleanup EXIT

# Run a command with its output going to the install log; on failure show the
# tail of that log and return the command's status.
quietly() {
    local rc=0
    echo "+ $*" >>"$INSTALL_LOG"
    if (( VERBOSE )); then
        "$@" 2>&1 | tee -a "$INSTALL_LOG" >&2 || rc=${PIPESTATUS[0]}
    else
        "$@" >>"$INSTALL_LOG" 2>&1 || rc=$?
    fi
    if (( rc != 0 )); then
        echo "engine.sh: command failed ($rc): $*" >&2
        tail -n 20 "$INSTALL_LOG" | sed 's/^/    /' >&2
    fi
    return "$rc"
}

# The docker client: whichever is first on PATH (/usr/local/bin/docker, a newer
# CLI, may shadow /usr/bin/docker; both talk to a 26.x engine), else Debian's.
docker_bin() {
    local c
    c=$(command -v docker 2>/dev/null || true)
    if [[ -z "$c" && -x /usr/bin/docker ]]; then c=/usr/bin/docker; fi
    [[ -n "$c" ]] || return 1
    echo "$c"
}

engine_answers() {
    local c
    c=$(docker_bin) || return 1
    timeout 10 "$c" info >/dev/null 2>&1
}
registry_answers() { curl -fsS --max-time 3 "http://$REGISTRY_ADDR/v2/" >/dev/null 2>&1; }

dockerd_major() {
    local v
    command -v dockerd >/dev/null 2>&1 || { echo none; return; }
    v=$(dockerd --version 2>/dev/null | sed -n 's/^Docker version \([0-9]*\)\..*/\1/p')
    echo "${v:-unknown}"
}

# --- apt helpers ----------------------------------------------------------

APT_UPDATED=0
apt_update_once() {
    (( APT_UPDATED )) && return 0
    quietly apt-get update -q || return 1
    APT_UPDATED=1
}

missing_pkgs() {
    local p out=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || out+=("$p")
    done
    echo "${out[@]:-}"
}

# Print "URI SIGNED_BY" of the machine's main Debian source for suite $1
# (the stanza/line whose suites include exactly $1, so never -security).
debian_source() {
    local codename=$1 f=/etc/apt/sources.list.d/debian.sources line
    if [[ -r $f ]]; then
        line=$(awk -v want="$codename" '
            function flush() {
                if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " want " ") && uri != "")
                    { print uri, (sb == "" ? "-" : sb); found = 1; exit }
                types = suites = uri = sb = ""
            }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); next }
            /^[Tt]ypes:/     { sub(/^[^:]*:[ \t]*/, ""); types = $0 }
            /^[Ss]uites:/    { sub(/^[^:]*:[ \t]*/, ""); suites = $0 }
            /^URIs:/         { sub(/^[^:]*:[ \t]*/, ""); split($0, u, /[ \t]+/); uri = u[1] }
            /^[Ss]igned-[Bb]y:/ { sub(/^[^:]*:[ \t]*/, ""); sb = $0 }
            END { if (!found) flush() }
        ' "$f")
        [[ -n "$line" ]] && { echo "$line"; return 0; }
    fi
    # One-line format: deb [opts] URI SUITE COMPONENTS...
    local files=() x
    [[ -r /etc/apt/sources.list ]] && files+=(/etc/apt/sources.list)
    for x in /etc/apt/sources.list.d/*.list; do [[ -r $x ]] && files+=("$x"); done
    (( ${#files[@]} )) || return 1
    line=$(awk -v want="$codename" '
        $1 != "deb" { next }
        {
            sb = "-"; i = 2
            if ($2 ~ /^\[/) {
                opts = ""
                for (; i <= NF; i++) { opts = opts " " $i; if ($i ~ /\]$/) { i++; break } }
                if (match(opts, /signed-by=[^] ]+/)) sb = substr(opts, RSTART + 10, RLENGTH - 10)
            }
            if ($(i + 1) == want) { print $i, sb; exit }
        }
    ' "${files[@]}")
    [[ -n "$line" ]] && { echo "$line"; return 0; }
    return 1
}

EXTRA_PKGS=(busybox-static docker-registry iproute2 curl)

# Download Debian 13 (trixie) packages into a temporary folder, through a temporary apt source that reuses
# the machine's own Debian mirror (the machine's apt state never sees trixie). Prints the folder.
trixie_download() {
    local codename uri signed_by tmp aptopt
    # shellcheck disable=SC1091
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
    read -r uri signed_by < <(debian_source "$codename") || { warn "no Debian '$codename' source found in /etc/apt"; return 1; }
    [[ -n "${uri:-}" ]] || { warn "no Debian '$codename' source found in /etc/apt"; return 1; }
    if [[ "$signed_by" == "-" || ! -r "$signed_by" ]]; then
        signed_by=/usr/share/keyrings/debian-archive-keyring.gpg
    fi
    log "downloading $* from trixie via $uri (keyring $signed_by)"

    tmp=$(mktemp -d /tmp/reconciler-engine.XXXXXX)
    CLEANUP+=("$tmp")
    mkdir -p "$tmp/lists/partial" "$tmp/debs"
    echo "deb [signed-by=$signed_by] $uri trixie main" >"$tmp/sources.list"
    aptopt=(
        -o "Dir::Etc::SourceList=$tmp/sources.list"
        -o "Dir::Etc::SourceParts=/dev/null"
        -o "Dir::State::Lists=$tmp/lists"
        -o "Dir::Cache::pkgcache="
        -o "Dir::Cache::srcpkgcache="
        -o "APT::Sandbox::User=root"
    )
    quietly apt-get "${aptopt[@]}" update -q || return 1
    (cd "$tmp/debs" && quietly apt-get "${aptopt[@]}" download "$@") || return 1
    echo "$tmp/debs"
}

install_engine_from_trixie() {
    local debs extra=()
    debs=$(trixie_download docker.io containerd docker-cli) || return 1
    CLEANUP+=("$(dirname "$debs")")
    # Dependencies (runc, tini, iptables, ...) resolve from the normal bookworm sources.
    read -r -a extra <<<"$(missing_pkgs "${EXTRA_PKGS[@]}")"
    quietly apt-get install -y -q --no-install-recommends \
        "$debs"/docker.io_*.deb "$debs"/containerd_*.deb "$debs"/docker-cli_*.deb \
        "${extra[@]}" || return 1
}

# `docker compose` (the v2 plugin, Debian 13's docker-compose package) for the deployment examples.
install_compose() {
    local debs
    docker compose version >/dev/null 2>&1 && return 0
    apt_update_once || return 1
    if debs=$(trixie_download docker-compose); then
        CLEANUP+=("$(dirname "$debs")")
        quietly apt-get install -y -q --no-install-recommends "$debs"/docker-compose_*.deb && return 0
    fi
    warn "could not install the docker compose plugin from trixie"
    return 1
}

install_everything() {
    local extra=()
    apt_update_once || die "apt-get update failed"
    if [[ "$(dockerd_major)" != "$WANT_MAJOR" ]]; then
        if ! install_engine_from_trixie || [[ "$(dockerd_major)" != "$WANT_MAJOR" ]]; then
            warn "could not install docker.io $WANT_MAJOR.x from trixie; falling back to bookworm's docker.io (20.10)"
            read -r -a extra <<<"$(missing_pkgs "${EXTRA_PKGS[@]}")"
            quietly apt-get install -y -q --no-install-recommends docker.io "${extra[@]}" \
                || die "installing docker.io failed (see $INSTALL_LOG)"
        fi
    fi
}

# --- 1+2: install if needed -----------------------------------------------

: >>"$INSTALL_LOG"
need_engine=1
if engine_answers; then
    need_engine=0
    log "docker engine already answers"
fi
if (( need_engine )) && [[ "$(dockerd_major)" != "$WANT_MAJOR" ]]; then
    install_everything
fi
read -r -a missing <<<"$(missing_pkgs "${EXTRA_PKGS[@]}")"
if (( ${#missing[@]} )); then
    log "installing ${missing[*]}"
    apt_update_once || die "apt-get update failed"
    quietly apt-get install -y -q --no-install-recommends "${missing[@]}" \
        || die "installing ${missing[*]} failed (see $INSTALL_LOG)"
fi

install_compose || true

# --- 3: start dockerd -----------------------------------------------------

# Zombies do not count: PID 1 here may reap orphans only after a while.
pid_alive_as() {  # pid comm
    local state
    [[ -n "$1" && -r /proc/$1/stat ]] || return 1
    [[ "$(cat "/proc/$1/comm" 2>/dev/null)" == "$2" ]] || return 1
    state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
    [[ -n "$state" && "$state" != Z && "$state" != X ]]
}

# A private engine beside the main one (scripts/engine2.sh, a test's own dockerd) has its own --exec-root
# or --pidfile: it is not the main engine and must not stop us from starting that.
private_engine() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qE -- '--(exec-root|pidfile)'; }

live_pid_of() {  # comm -> first live pid (of the main engine, for dockerd)
    local p
    for p in $(pgrep -x "$1" || true); do
        if [[ "$1" == dockerd ]] && private_engine "$p"; then continue; fi
        if pid_alive_as "$p" "$1"; then echo "$p"; return 0; fi
    done
    return 1
}

if (( need_engine )); then
    command -v dockerd >/dev/null 2>&1 || die "dockerd is not installed"
    running=$(live_pid_of dockerd || true)
    if [[ -n "$running" ]]; then
        log "dockerd already running (pid $running); waiting for it"
    else
        if [[ -e /var/run/docker.pid ]]; then
            oldpid=$(cat /var/run/docker.pid 2>/dev/null || true)
            if ! pid_alive_as "$oldpid" dockerd; then
                log "removing stale /var/run/docker.pid ($oldpid)"
                rm -f /var/run/docker.pid
            fi
        fi
        # dockerd's own (managed) containerd: a pid file naming a dead or
        # zombie process makes dockerd wait ~10 s for it to go away.
        cpidfile=/var/run/docker/containerd/containerd.pid
        if [[ -e $cpidfile ]] && ! pid_alive_as "$(cat "$cpidfile" 2>/dev/null || true)" containerd; then
            rm -f "$cpidfile"
        fi
        log "starting dockerd (log: $DOCKERD_LOG)"
        echo "=== $(date -Is) engine.sh starting dockerd" >>"$DOCKERD_LOG"
        # New session, all fds redirected: the daemon must not hold the
        # caller's terminal or pipes open, nor die with its process group.
        setsid nohup dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
        running=$!
    fi
    deadline=$((SECONDS + ENGINE_WAIT_SECONDS))
    until engine_answers; do
        if ! pid_alive_as "$running" dockerd && ! live_pid_of dockerd >/dev/null; then
            echo "engine.sh: ERROR: dockerd exited; last lines of $DOCKERD_LOG:" >&2
            tail -n 30 "$DOCKERD_LOG" | sed 's/^/    /' >&2
            exit 1
        fi
        if (( SECONDS >= deadline )); then
            echo "engine.sh: ERROR: docker engine did not answer within ${ENGINE_WAIT_SECONDS}s; last lines of $DOCKERD_LOG:" >&2
            tail -n 30 "$DOCKERD_LOG" | sed 's/^/    /' >&2
            exit 1
        fi
        sleep 1
    done
    log "docker engine answers"
fi

# --- 5: local registry on $REGISTRY_ADDR ----------------------------------

if registry_answers; then
    log "registry already answers at http://$REGISTRY_ADDR/v2/"
else
    command -v docker-registry >/dev/null 2>&1 || die "docker-registry is not installed"
    mkdir -p "$REGISTRY_STATE_DIR/data"
    cfg="$REGISTRY_STATE_DIR/config.yml"
    pidfile="$REGISTRY_STATE_DIR/registry.pid"
    # Debian's /etc/docker/registry/config.yml listens on :5000 (all
    # interfaces) and stores under /var/lib/docker-registry; use our own.
    cat >"$cfg.new" <<EOF
# Written by scripts/engine.sh (reconciler test registry). Loopback only.
version: 0.1
log:
  level: warn
  fields:
    service: registry
storage:
  filesystem:
    rootdirectory: $REGISTRY_STATE_DIR/data
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: $REGISTRY_ADDR
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
EOF
    mv -f "$cfg.new" "$cfg"
    regpid=$(cat "$pidfile" 2>/dev/null || true)
    if pid_alive_as "$regpid" docker-registry; then
        log "docker-registry already running (pid $regpid); waiting for it"
    else
        log "starting docker-registry on $REGISTRY_ADDR (log: $REGISTRY_LOG)"
        echo "=== $(date -Is) engine.sh starting docker-registry" >>"$REGISTRY_LOG"
        setsid nohup docker-registry serve "$cfg" >>"$REGISTRY_LOG" 2>&1 </dev/null &
        regpid=$!
        echo "$regpid" >"$pidfile"
    fi
    deadline=$((SECONDS + REGISTRY_WAIT_SECONDS))
    until registry_answers; do
        if ! pid_alive_as "$regpid" docker-registry; then
            echo "engine.sh: ERROR: docker-registry exited (is $REGISTRY_ADDR taken?); last lines of $REGISTRY_LOG:" >&2
            tail -n 20 "$REGISTRY_LOG" | sed 's/^/    /' >&2
            exit 1
        fi
        if (( SECONDS >= deadline )); then
            echo "engine.sh: ERROR: registry did not answer at http://$REGISTRY_ADDR/v2/ within ${REGISTRY_WAIT_SECONDS}s; last lines of $REGISTRY_LOG:" >&2
            tail -n 20 "$REGISTRY_LOG" | sed 's/^/    /' >&2
            exit 1
        fi
        sleep 0.5
    done
    log "registry answers at http://$REGISTRY_ADDR/v2/"
fi

if (( VERBOSE )); then
    "$(docker_bin)" version --format 'engine.sh: client {{.Client.Version}}, server {{.Server.Version}}' >&2 || true
fi
exit 0
