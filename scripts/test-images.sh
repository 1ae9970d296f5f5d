#!/usr/bin/env bash
# scripts/test-images.sh - build the small local images the tests use (no
# registry is reachable here, so nothing is pulled).
#
#   scripts/test-images.sh [-v] [--force]
#
# Needs a running engine (run scripts/engine.sh first). Idempotent and quiet:
# an image that already exists is left alone unless --force is given.
#
# Images:
#   reconciler-test/busybox:latest  static busybox + all applet symlinks,
#       /tmp, /etc/passwd and /etc/group with root (0), app (2000:2000) and
#       nobody (65534); CMD ["/bin/sh"].
#   reconciler-test/rich:latest  FROM the busybox image (classic builder, no
#       registry) with what an image can set for a container: HEALTHCHECK
#       (`true`, every second, passes at once), ENTRYPOINT /usr/local/bin/entry
#       (runs its arguments, or idles until SIGTERM when it has none; no CMD),
#       ENV APP_MODE=image and APP_HOME=/srv/app, USER app (2000:2000),
#       VOLUME /data, EXPOSE 8080 and 5353/udp, WORKDIR /srv/app, a label.
#       The round-trip test (tests/integration/test_roundtrip.py) checks that
#       the map's silence about these means "as the image says".
#
# To add an image: write a function build_<name> DIR that fills DIR with the
# root filesystem and prints the `docker import -c` changes it wants (one per
# line), then add "REF build_<name>" to IMAGES below. An image built FROM
# another one: write dockerfile_<name> DIR that writes DIR/Dockerfile (and
# its build context) and add "REF dockerfile_<name>" after its base.
set -euo pipefail

IMAGES=(
    "reconciler-test/busybox:latest build_busybox"
    "reconciler-example/busybox:latest build_busybox"   # the example map in config/
    "reconciler-test/rich:latest dockerfile_rich"
)

VERBOSE=0
FORCE=0
for arg in "$@"; do
    case "$arg" in
        -v|--verbose) VERBOSE=1 ;;
        -f|--force) FORCE=1 ;;
        *) echo "test-images.sh: unknown argument: $arg (usage: test-images.sh [-v] [--force])" >&2; exit 2 ;;
    esac
done

log() { if (( VERBOSE )); then echo "test-images.sh: $*" >&2; fi; }
die() { echo "test-images.sh: ERROR: $*" >&2; exit 1; }

export DEBIAN_FRONTEND=noninteractive

timeout 10 docker info >/dev/null 2>&1 \
    || die "docker engine does not answer; run scripts/engine.sh first"

WORK=$(mktemp -d /tmp/reconciler-test-images.XXXXXX)
trap 'rm -rf -- "$WORK"' EXIT

# --- image builders --------------------------------------------------------

find_static_busybox() {
    local b
    if ! dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'install ok installed'; then
        log "installing busybox-static"
        { apt-get install -y -q --no-install-recommends busybox-static \
            || { apt-get update -q && apt-get install -y -q --no-install-recommends busybox-static; }; } \
            >"$WORK/apt.log" 2>&1 || { tail -n 20 "$WORK/apt.log" >&2; die "cannot install busybox-static"; }
    fi
    for b in /bin/busybox /usr/bin/busybox; do
        [[ -x $b ]] && { echo "$b"; return 0; }
    done
    die "busybox-static is installed but no busybox binary found"
}

build_busybox() {
    local dir=$1 bb applet
    bb=$(find_static_busybox)
    mkdir -p "$dir"/{bin,sbin,usr/bin,usr/sbin,etc,root,home/app,tmp,proc,sys,dev,run,var/tmp}
    chmod 1777 "$dir/tmp" "$dir/var/tmp"
    chmod 700 "$dir/root"
    cp "$bb" "$dir/bin/busybox"
    chmod 755 "$dir/bin/busybox"
    # Applets at their usual paths (bin/sh, usr/bin/env, sbin/ip, ...).
    while read -r applet; do
        [[ -n "$applet" && "$applet" == */* ]] || continue
        [[ -e "$dir/$applet" || -L "$dir/$applet" ]] && continue
        mkdir -p "$dir/$(dirname "$applet")"
        ln -s /bin/busybox "$dir/$applet"
    done < <("$dir/bin/busybox" --list-full 2>/dev/null || true)
    # Every applet also reachable in /bin (covers busyboxes without --list-full).
    while read -r applet; do
        [[ -n "$applet" && "$applet" != busybox ]] || continue
        [[ -e "$dir/bin/$applet" || -L "$dir/bin/$applet" ]] && continue
        [[ -e "$dir/sbin/$applet" || -e "$dir/usr/bin/$applet" || -e "$dir/usr/sbin/$applet" ]] && continue
        ln -s busybox "$dir/bin/$applet"
    done < <("$dir/bin/busybox" --list)
    [[ -e "$dir/bin/sh" ]] || die "busybox has no sh applet"
    rm -f "$dir/linuxrc"

    cat >"$dir/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
app:x:2000:2000:app:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
    cat >"$dir/etc/group" <<'EOF'
root:x:0:
app:x:2000:
nogroup:x:65534:
EOF
    chmod 644 "$dir/etc/passwd" "$dir/etc/group"
    chown 2000:2000 "$dir/home/app"

    # Changes for `docker import -c`, one per line.
    echo 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
    echo 'CMD ["/bin/sh"]'
}

dockerfile_rich() {
    local dir=$1
    mkdir -p "$dir"
    cat >"$dir/entry" <<'EOF'
#!/bin/sh
# Runs its arguments; without any, idles until SIGTERM (so `docker stop` is quick).
if [ "$#" -gt 0 ]; then exec "$@"; fi
trap 'exit 0' TERM
while :; do sleep 1; done
EOF
    cat >"$dir/Dockerfile" <<'EOF'
FROM reconciler-test/busybox:latest
COPY entry /usr/local/bin/entry
RUN chmod 755 /usr/local/bin/entry && mkdir -p /data /srv/app && chown 2000:2000 /data /srv/app
ENV APP_MODE=image APP_HOME=/srv/app
LABEL io.reconciler.test-image=rich
VOLUME /data
EXPOSE 8080 5353/udp
WORKDIR /srv/app
USER app
HEALTHCHECK --interval=1s --timeout=3s --start-period=0s --retries=3 CMD ["true"]
ENTRYPOINT ["/usr/local/bin/entry"]
EOF
}

# --- driver ----------------------------------------------------------------

build_from_dockerfile() {
    local ref=$1 builder=$2 dir
    dir="$WORK/${builder}.context"
    "$builder" "$dir"
    log "building $ref"
    # The classic builder needs no registry when the base image is local (BuildKit would try to reach one).
    DOCKER_BUILDKIT=0 docker build --force-rm -q -t "$ref" "$dir" >"$WORK/${builder}.log" 2>&1 \
        || { tail -n 20 "$WORK/${builder}.log" >&2; die "docker build of $ref failed"; }
}

build_image() {
    local ref=$1 builder=$2 dir changes=() line
    dir="$WORK/${builder}.rootfs"
    mkdir -p "$dir"
    "$builder" "$dir" >"$WORK/${builder}.changes"
    while IFS= read -r line; do
        if [[ -n "$line" ]]; then changes+=(-c "$line"); fi
    done <"$WORK/${builder}.changes"
    (( ${#changes[@]} )) || die "$builder printed no image changes"
    log "importing $ref"
    # Fixed owner/mtime/order, so the same inputs give the same layer.
    tar -C "$dir" --numeric-owner --sort=name --mtime='2000-01-01 00:00:00Z' -c . \
        | docker import "${changes[@]}" - "$ref" >/dev/null \
        || die "docker import of $ref failed"
}

for entry in "${IMAGES[@]}"; do
    read -r ref builder <<<"$entry"
    if (( ! FORCE )) && docker image inspect "$ref" >/dev/null 2>&1; then
        log "$ref already present"
        continue
    fi
    if [[ $builder == dockerfile_* ]]; then
        build_from_dockerfile "$ref" "$builder"
    else
        build_image "$ref" "$builder"
    fi
done
