# reconciler as a container: the daemon, run against the host's engine through its socket.
#
#   docker build -t reconciler .
#   docker run -d --name reconciler --restart unless-stopped \
#     -v /var/run/docker.sock:/var/run/docker.sock -v /etc/reconciler/maps:/maps:ro reconciler
#
# BASE is any image with python3 (>= 3.11) and its venv module; the default needs a registry. Where none is
# reachable, build a base locally (scripts/base-image.sh: Debian via debootstrap) and pass --build-arg BASE=….
# Offline builds: put the wheels of reconciler's dependencies in ./wheelhouse (scripts/build-image.sh does),
# and the build installs from there only.
ARG BASE=python:3.11-slim

FROM ${BASE} AS wheels
WORKDIR /src
COPY pyproject.toml README.md ./
COPY reconciler ./reconciler
COPY wheelhouse* ./wheelhouse/
RUN set -eu; \
    python3 -m venv /opt/build; \
    if ls wheelhouse/*.whl >/dev/null 2>&1; then offline="--no-index --find-links=wheelhouse"; else offline=""; fi; \
    /opt/build/bin/pip wheel --no-cache-dir --wheel-dir /wheels $offline .

FROM ${BASE}
COPY --from=wheels /wheels /tmp/wheels
RUN set -eu; \
    python3 -m venv /opt/reconciler; \
    /opt/reconciler/bin/pip install --no-cache-dir --no-index --find-links=/tmp/wheels reconciler; \
    rm -rf /tmp/wheels; \
    ln -s /opt/reconciler/bin/reconciler /usr/local/bin/reconciler; \
    mkdir -p /maps
ENV PYTHONUNBUFFERED=1 \
    RECONCILER_HTTP=127.0.0.1:9105
# The daemon never manages, stops or recreates a container carrying this label: its own.
LABEL io.reconciler.self="true" \
      org.opencontainers.image.title="reconciler" \
      org.opencontainers.image.description="Keeps a Docker host's containers as its container maps describe them."
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 CMD ["reconciler", "healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["reconciler", "run"]
CMD ["/maps"]
