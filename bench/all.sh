#!/usr/bin/env bash
# Every figure of the speed table in one run, each against its baseline measured in the same run:
# start-up, validate at 100 … 10,000 containers and the no-op apply (startup_bench), the cold apply against
# the SDK floor and docker compose (cold_bench), and the daemon at 50 and at 500 containers (daemon_bench).
#     bench/all.sh [--quick]      (needs scripts/engine.sh; about 15 minutes, 10 with --quick)
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-.venv/bin/python}
quick=${1:-}
echo "== start-up, scale, no-op apply"; "$py" bench/startup_bench.py $quick
echo; echo "== cold apply"; "$py" bench/cold_bench.py "$([ "$quick" = --quick ] && echo 3 || echo 5)"
echo; echo "== daemon, 50 containers"; "$py" bench/daemon_bench.py 50 30
echo; echo "== daemon, 500 containers"; "$py" bench/daemon_bench.py 500 30
