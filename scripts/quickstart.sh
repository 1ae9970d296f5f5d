#!/usr/bin/env bash
# scripts/quickstart.sh - the main job on the example map, from a fresh Debian machine (as root):
# sets everything up (scripts/bootstrap.sh: Python environment, Docker engine, local images), then
# validates config/example.yaml and shows the containers it resolves to.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/reconciler validate config/example.yaml "$@"
