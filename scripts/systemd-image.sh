#!/usr/bin/env bash
# scripts/systemd-image.sh [IMAGE] [TAG] - an image that boots systemd as PID 1, for the test of
# deploy/reconciler.service under a real systemd (tests/integration/test_systemd.py).
#
# It derives from reconciler's own image (IMAGE, default `reconciler`, as scripts/build-image.sh builds it:
# the project's Debian base made with debootstrap, reconciler installed from its wheels in /opt/reconciler
# and linked to /usr/local/bin/reconciler — the README's install steps for systemd), and adds Debian's
# systemd with apt-get. That needs the Debian mirror the base was made from (the machine's own, read from its
# apt sources): systemd is not in the base, and nothing else is installed. Default tag:
# reconciler-local/systemd. Cached by docker's build cache; prints the tag.
set -euo pipefail
cd "$(dirname "$0")/.."
from=${1:-reconciler}
tag=${2:-reconciler-local/systemd}
docker build --force-rm -q -t "$tag" - >/dev/null <<EOF_DOCKERFILE
FROM $from
RUN set -eu; \
    apt-get update -qq; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd systemd-sysv dbus >/dev/null; \
    rm -rf /var/lib/apt/lists/*; \
    systemctl mask getty.target console-getty.service systemd-udevd.service systemd-udev-trigger.service \
        systemd-logind.service systemd-timesyncd.service systemd-networkd.service systemd-resolved.service \
        systemd-firstboot.service systemd-remount-fs.service sys-kernel-config.mount sys-kernel-debug.mount \
        sys-kernel-tracing.mount >/dev/null 2>&1
# systemd, not the daemon, is PID 1 here; the image's own HEALTHCHECK asks a daemon that may not run yet.
HEALTHCHECK NONE
STOPSIGNAL SIGRTMIN+3
ENV container=docker
ENTRYPOINT ["/lib/systemd/systemd"]
CMD []
EOF_DOCKERFILE
echo "$tag"
