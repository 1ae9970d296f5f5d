#!/bin/sh
# Run reconciler as a container: the Docker socket read-write (it manages containers), the maps read-only.
# Build the image first: `docker build -t reconciler .` (or scripts/build-image.sh where no registry is reachable).
exec docker run -d --name reconciler --restart unless-stopped \
    -v /var/run/docker.sock:/var/run/docker.sock \
    -v /etc/reconciler/maps:/maps:ro \
    -e RECONCILER_RESYNC=300 \
    "${RECONCILER_IMAGE:-reconciler}" /maps
