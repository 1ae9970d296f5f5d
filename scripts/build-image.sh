#!/usr/bin/env bash
# scripts/build-image.sh [TAG] - build reconciler's container image without any image registry:
# a local Debian base (scripts/base-image.sh) and the Python wheels fetched here into ./wheelhouse.
# Default tag: reconciler (what deploy/docker-run.sh and deploy/compose.yaml run). Extra docker build
# arguments may follow the tag.
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${1:-reconciler}
shift || true
base=$(bash scripts/base-image.sh)
python=${PYTHON:-.venv/bin/python}
mkdir -p wheelhouse
"$python" -m pip wheel -q --disable-pip-version-check --wheel-dir wheelhouse . 2>&1 | grep -v '^WARNING: Location' >&2 || true
"$python" -m pip download -q --disable-pip-version-check --dest wheelhouse hatchling 2>&1 | grep -v '^WARNING: Location' >&2 || true
rm -f wheelhouse/reconciler-*.whl  # the image builds reconciler itself, from the source
docker build --force-rm -q --build-arg "BASE=$base" -t "$tag" "$@" . >/dev/null
echo "$tag"
