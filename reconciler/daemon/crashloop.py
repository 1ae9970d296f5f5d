"""Crash-loop policy: a container that keeps dying soon after it starts is restarted with growing delays.

A death counts as a crash when the container ran less than `threshold` seconds and nobody asked for it (a
`docker stop`/`kill` is a request, not a crash). The n-th crash in a row waits 2^(n-1) seconds, capped at
`backoff_max`, counted from when the container finished; a run longer than the threshold resets the count.
The controller asks `hold(plan, observed)` which of the plan's starts must wait, and for how long; the clock
is injected so the policy is tested without waiting.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from reconciler.backoff import Backoff
from reconciler.logs import get_logger
from reconciler.plan.observed import ObservedState
from reconciler.plan.planner import Action, Op, Plan
from reconciler.plan.resources import Kind

log = get_logger(__name__)


def parse_time(text: str) -> datetime | None:
    """Docker's RFC 3339 with nanoseconds ("2026-11-28T00:29:02.6554356Z"); None for the zero time."""
    if not text or text.startswith("0001-"):
        return None
    head, _, frac = text.rstrip("Z").partition(".")
    frac = (frac[:6]).ljust(6, "0") if frac else "000000"
    try:
        return datetime.fromisoformat(f"{head}.{frac}+00:00")
    except ValueError:
        return None


@dataclass
class CrashLoops:
    threshold: float
    backoff_max: float
    clock: Callable[[], float] = field(default=lambda: datetime.now(UTC).timestamp())
    crashes: dict[str, tuple[int, str]] = field(default_factory=dict)  # name → (crashes in a row, FinishedAt)
    stop_requests: dict[str, float] = field(default_factory=dict)  # name → when a kill/stop was asked

    def stop_requested(self, name: str) -> None:
        """A stop or kill of this container was asked for: its next death is not a crash."""
        self.stop_requests[name] = self.clock()

    def hold(self, plan: Plan, observed: ObservedState) -> tuple[Plan, dict[str, float]]:
        """The plan without the starts that must wait, and how long each must wait (seconds)."""
        waits: dict[str, float] = {}
        for action in plan.actions:
            wait = self._wait(action, observed)
            if wait is not None:
                waits[action.resource.name] = wait
        if not waits:
            return plan, waits
        return plan.keep(lambda a: not (a.op is Op.START and a.resource.name in waits)), waits

    def _wait(self, action: Action, observed: ObservedState) -> float | None:
        if action.op is not Op.START or action.resource.kind is not Kind.CONTAINER:
            return None
        name = action.resource.name
        found = observed.containers.get(name)
        started = parse_time(found.started_at) if found else None
        finished = parse_time(found.finished_at) if found else None
        if found is None or started is None or finished is None:
            return None
        asked = self.stop_requests.get(name)
        stopped_on_request = asked is not None and asked >= started.timestamp() - 1
        if (finished - started).total_seconds() >= self.threshold or stopped_on_request:
            self.crashes.pop(name, None)
            return None
        count, last_finish = self.crashes.get(name, (0, ""))
        new_crash = last_finish != found.finished_at
        if new_crash:
            count += 1
            self.crashes[name] = (count, found.finished_at)
        delay = Backoff(min(1.0, self.backoff_max), self.backoff_max).delay(count - 1)
        waited = self.clock() - finished.timestamp()
        if waited >= delay:
            return None
        if not new_crash:
            return delay - waited  # said already, when this crash was first seen (a reconcile plans twice)
        log.warning(
            "crash loop: restart held back",
            container=name,
            crashes=count,
            exit_code=found.exit_code,
            restart_in=round(delay - waited, 1),
        )
        return delay - waited
