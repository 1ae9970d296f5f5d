#!/bin/sh
# Run reconciler as a container: the Docker socket read-write (it manages containers), the maps read-only.
# Build the image first: `docker build -t reconciler .` (or scripts/build-image.sh where no registry is reachable).
# RECONCILER_IMAGE, RECONCILER_NAME and RECONCILER_MAPS override the image, the container name and the maps folder.
exec docker run -d --name "${RECONCILER_NAME:-reconciler}" --restart unless-stopped \
    -v /var/run/docker.sock:/var/run/docker.sock \
    -v "${RECONCILER_MAPS:-/etc/reconciler/maps}:/maps:ro" \
    -v "${RECONCILER_STATE:-/var/lib/reconciler}:/var/lib/reconciler" \
    -e RECONCILER_RESYNC=300 \
    "${RECONCILER_IMAGE:-reconciler}" /maps
