"""The command line as a user runs it: `python -m reconciler ARGS…` in a process of its own, from the
checkout's root, with the output captured (one helper for the tests that drive the CLI)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60, entry: Sequence[str] = ("-m", "reconciler")
) -> subprocess.CompletedProcess[str]:
    """`reconciler ARGS…`; `env` is added to this process's environment; `entry`: how Python starts it."""
    return subprocess.run(
        [sys.executable, *entry, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )
