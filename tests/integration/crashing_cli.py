"""`python -m tests.integration.crashing_cli N ARGS…`: reconciler's command line, killed abruptly (exit 137,
no cleanup) at the N-th step boundary of its executor — the crash-safety tests' fault injection.

The hook is the executor's `on_step` parameter; this wrapper passes it to every executor the command line
makes, so production code reads nothing from the environment for tests.
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
from typing import Any

from reconciler import cli
from reconciler.executor import apply


def crash_at(limit: int) -> None:
    steps = itertools.count(1)
    lock = threading.Lock()

    def step() -> None:
        with lock:
            if next(steps) >= limit:
                os._exit(137)

    original = apply.Executor.__init__

    def init(self: apply.Executor, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("on_step", step)
        original(self, *args, **kwargs)

    # Deliberate: the hook goes in from outside, so the CLI under test runs unchanged.
    apply.Executor.__init__ = init  # type: ignore[method-assign]


if __name__ == "__main__":
    crash_at(int(sys.argv[1]))
    sys.argv = ["reconciler", *sys.argv[2:]]
    cli.main()
