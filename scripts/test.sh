#!/usr/bin/env bash
# scripts/test.sh - the whole test suite, from a clean clone: set-up (idempotent), quality gates
# (ruff lint + format, mypy --strict, the import contract), then pytest (unit and real-engine tests).
# Extra arguments go to pytest, e.g. `scripts/test.sh tests/unit -k extends`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export PATH="$PWD/.venv/bin:$PATH"

echo "== ruff"; paths=(reconciler tests); [ -d bench ] && paths+=(bench)
ruff check "${paths[@]}"; ruff format --check "${paths[@]}"
echo "== mypy --strict"; mypy reconciler
echo "== import contract"; lint-imports --no-cache
echo "== pytest"; pytest "$@"
# Mutation testing over the safety paths runs on demand (`RUN_MUTATION=1`, or `scripts/mutation.sh`).
if [ "${RUN_MUTATION:-0}" = 1 ] && [ "$#" -eq 0 ]; then echo "== mutation testing (ci subset)"; bash scripts/mutation.sh ci; fi
