#!/usr/bin/env bash
# scripts/quickstart.sh - the main job on the example map, from a fresh Debian machine (as root):
# sets everything up (scripts/bootstrap.sh: Python environment, Docker engine, local images), checks
# config/example.yaml, applies it to the local engine and shows the result. Run it again: nothing changes.
set -euo pipefail
cd "$(dirname "$0")/.."
BOOTSTRAP_TEST_SERVERS=0 bash scripts/bootstrap.sh  # the second engine and sshd are for the tests
export PATH="$PWD/.venv/bin:$PATH"
# The example's web server serves this folder (a host bind, read-only in the container).
web=/var/lib/reconciler-example/config/web
[ -f "$web/index.html" ] || { mkdir -p "$web"; echo "hello from reconciler's example map" > "$web/index.html"; }
map=${EXAMPLE_MAP:-config/example.yaml}
reconciler validate "$map"
reconciler --log-level warning apply "$map" "$@"
reconciler status "$map"
echo "try: curl http://127.0.0.1:18080/   (and: reconciler down $map)"
