"""The cyclic garbage collector, paused while a map is loaded or a desired state is built.

Both build tens of thousands of small containers (YAML nodes, dicts, frozen specs) and free almost none:
the collector would only scan them again and again as they pile up — a third to a half of the time of a
10,000-container `validate` (issue 17). Nothing built there forms cycles that need collecting before the
pause ends. Pausing is process-wide; the pause restores the collector only if it found it running, so
nested and concurrent pauses (daemon threads) never leave it off.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    running = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if running:
            gc.enable()
