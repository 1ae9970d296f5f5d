"""The watchdog's question: is the daemon busy with progress, or stuck?

Long work is legitimate — a container with a 90 s stop timeout and a 60 s health gate takes two and a half
minutes to recreate — and systemd killing the daemon in the middle of it is the worst outcome (the
service could be left stopped). So "stuck" is not "a reconcile has been running long", but "no progress for
`stuck_after` seconds", where every reconcile start, action start and action end is progress, and an action
that is running is allowed the time it is known to need on top (`budget`: its stop timeout plus health
gate). Time is injectable for tests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from reconciler.plan.planner import Action
from reconciler.plan.resources import DesiredState, Kind


def action_budget(desired: DesiredState, action: Action, health_gate: float) -> float:
    """How long an action may legitimately take beyond `stuck_after`: stopping the old container and
    waiting for the new one's health gate (and its start delay)."""
    spec = desired.containers.get(action.resource.name)
    if spec is None or action.resource.kind is not Kind.CONTAINER:
        return 0.0
    stop = float(spec.stop_timeout if spec.stop_timeout is not None else 10)
    gate = health_gate if spec.healthcheck is not None else 0.0
    return stop + gate + float(spec.start_delay or 0)


@dataclass
class _InFlight:
    last: float  # when this reconcile last made progress
    running: dict[str, float] = field(default_factory=dict)  # action → the seconds it may legitimately take


class Progress:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._reconciles: dict[Hashable, _InFlight] = {}

    def begin(self, key: Hashable) -> None:
        with self._lock:
            self._reconciles[key] = _InFlight(self.clock())

    def end(self, key: Hashable) -> None:
        with self._lock:
            self._reconciles.pop(key, None)

    def action_started(self, key: Hashable, action: str, budget: float) -> None:
        with self._lock:
            flight = self._reconciles.setdefault(key, _InFlight(self.clock()))
            flight.last = self.clock()
            flight.running[action] = budget

    def action_finished(self, key: Hashable, action: str) -> None:
        with self._lock:
            flight = self._reconciles.get(key)
            if flight is not None:
                flight.last = self.clock()
                flight.running.pop(action, None)

    def stalled_for(self) -> float:
        """Seconds the most stalled reconcile has gone without progress beyond what its running actions
        are allowed; 0 when nothing is in flight."""
        now = self.clock()
        with self._lock:
            stalls = [now - f.last - max(f.running.values(), default=0.0) for f in self._reconciles.values()]
        return max([0.0, *stalls])

    def in_flight(self) -> list[str]:
        with self._lock:
            return sorted(str(k) for k in self._reconciles)
