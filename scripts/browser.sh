#!/usr/bin/env bash
# scripts/browser.sh - what the status page's browser test needs, idempotently, as root:
#   Debian's Chromium and its WebDriver (`chromium`, `chromium-driver`; nothing ever downloads a browser)
#   and selenium in the virtualenv (the `dev` extra of pyproject.toml lists it; this installs it into an
#   environment set up before it was added).
#
#   scripts/browser.sh [VENV]     (default: .venv)
#
# Quiet when all is well. Called by scripts/bootstrap.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-.venv}
export DEBIAN_FRONTEND=noninteractive

missing=()
for pkg in chromium chromium-driver; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if (( ${#missing[@]} )); then
    echo "browser.sh: installing ${missing[*]} (Debian packages)" >&2
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v chromedriver >/dev/null 2>&1 || { echo "browser.sh: chromedriver is missing after installing chromium-driver" >&2; exit 1; }

if ! "$VENV/bin/python" -c 'import selenium' 2>/dev/null; then
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check 'selenium>=4.10' 2>&1 | grep -v '^WARNING: Location' >&2 || true
    "$VENV/bin/python" -c 'import selenium' || { echo "browser.sh: installing selenium failed" >&2; exit 1; }
fi
