"""Update windows in the daemon: which `auto` updates wait now, and when to look again.

A container's window is its own `update_window` (container or map level, from the model), else the
daemon's setting `update_window`, else none (always open). Outside it the plan reports its newer image as
pending (`PlanOptions.waiting`); the reconcile that saw it asks to run again when the window opens. Only
image updates wait: healing (a killed, removed or changed container) never does. The wall clock is
injected (local time: windows are in the daemon's time zone).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from functools import cache

from reconciler.model.window import Window, parse_window
from reconciler.plan.resources import DesiredState

MIN_WAIT = 1.0  # seconds: never requeue in a tight loop at the edge of a window


def local_now() -> datetime:
    return datetime.now().astimezone()


@cache
def _window(text: str) -> Window:
    return parse_window(text)


class UpdateWindows:
    def __init__(self, default: str | None = None, now: Callable[[], datetime] | None = None) -> None:
        self.default = default
        self.now = now or local_now

    def _for(self, window: str | None) -> Window | None:
        text = window or self.default
        return _window(text) if text else None

    def waiting(self, desired: DesiredState) -> frozenset[str]:
        """The `auto` containers whose window is closed now."""
        now = self.now()
        is_open: dict[str, bool] = {}  # per window text: thousands of containers share a few windows
        closed = set()
        for spec in desired.containers.values():
            text = spec.update_window or self.default
            if spec.update != "auto" or not text:
                continue
            if text not in is_open:
                is_open[text] = _window(text).is_open(now)
            if not is_open[text]:
                closed.add(spec.name)
        return frozenset(closed)

    def next_opening(self, desired: DesiredState, names: Iterable[str]) -> float | None:
        """Seconds until the earliest window of these containers opens (None: none of them waits for one)."""
        now = self.now()
        waits = []
        for name in names:
            spec = desired.containers.get(name)
            window = self._for(spec.update_window) if spec is not None and spec.update == "auto" else None
            if window is not None and not window.is_open(now):
                waits.append(max(MIN_WAIT, window.wait(now)))
        return min(waits) if waits else None
