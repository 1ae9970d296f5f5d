#!/usr/bin/env bash
# scripts/bootstrap.sh - everything the project needs on a Debian machine, idempotently, as root:
#   a Python >= 3.11 virtual environment in .venv with reconciler and its dev tools, a running Docker
#   engine and local registry (scripts/engine.sh), the small local test images (scripts/test-images.sh) and a
#   second engine, Debian 12's 20.10.24 beside the main one, holding the test images (scripts/engine2.sh).
# Quiet when all is well; re-running it does only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
STAMP=$VENV/.installed-from

find_python() {
    for candidate in python3.13 python3.12 python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
           "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
            command -v "$candidate"; return 0
        fi
    done
    return 1
}

if ! PYTHON=$(find_python); then
    echo "bootstrap: installing python3 (Debian package)" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
    PYTHON=$(find_python) || { echo "bootstrap: no Python >= 3.11 available" >&2; exit 1; }
fi

if [ ! -x "$VENV/bin/python" ]; then
    if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
        echo "bootstrap: installing python3-venv (Debian package)" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
        rm -rf "$VENV"
        "$PYTHON" -m venv "$VENV"
    fi
fi

want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip 2>&1 | grep -v '^WARNING: Location' >&2 || true
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e '.[dev]' 2>&1 | grep -v '^WARNING: Location' >&2 || true
    "$VENV/bin/python" -c 'import reconciler, docker, pydantic, pytest' \
        || { echo "bootstrap: installing the Python packages failed" >&2; exit 1; }
    echo "$want" > "$STAMP"
fi

# The tests verify the systemd unit with systemd-analyze (Debian's systemd package).
if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "bootstrap: installing systemd (for systemd-analyze)" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >/dev/null
fi

if [ "${BOOTSTRAP_ENGINE:-1}" = 1 ]; then
    bash scripts/engine.sh
    bash scripts/test-images.sh
    if [ "${BOOTSTRAP_TEST_SERVERS:-1}" = 1 ]; then   # what only the tests need (quickstart.sh skips it)
        bash scripts/engine2.sh   # the second engine (20.10.24) for the multi-engine tests
        bash scripts/sshd.sh      # an SSH server on loopback for the ssh:// client test
    fi
fi
