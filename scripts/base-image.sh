#!/usr/bin/env bash
# scripts/base-image.sh - a local base image with python3 for the Dockerfile, where no image registry is
# reachable: Debian (the machine's own suite and mirror, read from its apt sources) bootstrapped with
# debootstrap, imported into the engine as reconciler-local/debian-python:<suite>. Cached: does nothing when
# the image exists. Prints the image reference. Needs root and the engine (scripts/engine.sh).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
ref="reconciler-local/debian-python:${suite}"
if docker image inspect "$ref" >/dev/null 2>&1; then echo "$ref"; exit 0; fi

mirror_uri() {
    local uri
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        uri=$(awk -v s="$suite" '/^URIs:/{u=$2} /^Suites:/{for(i=2;i<=NF;i++) if($i==s) print u}' \
              /etc/apt/sources.list.d/debian.sources | head -n1)
    fi
    if [ -z "${uri:-}" ]; then
        uri=$(grep -hE "^deb .* ${suite} " /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
              | awk '{print $2}' | head -n1 || true)
    fi
    [ -n "${uri:-}" ] || { echo "base-image.sh: no Debian mirror found in the apt sources" >&2; exit 1; }
    echo "$uri"
}

command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; }
root=$(mktemp -d /tmp/reconciler-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates "$suite" "$root" "$(mirror_uri)" \
    >/tmp/reconciler-base-debootstrap.log 2>&1 \
    || { tail -20 /tmp/reconciler-base-debootstrap.log >&2; exit 1; }
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" --numeric-owner -c . | docker import -c 'CMD ["/bin/sh"]' - "$ref" >/dev/null
echo "$ref"
