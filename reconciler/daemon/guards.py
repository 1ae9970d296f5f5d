"""What the daemon holds back from a plan that the pure planner cannot know: a person's pauses, crash loops.

- **Pauses** (`reconciler pause`, or `down`/`stop` beside the daemon; see `intents`): no action on a paused
  container — not even healing — while the pause is in force: not expired, and the map has not changed the
  container since (a person who edits a paused container's config wants the edit applied). `watch()` notices
  pauses made, ended or expired, logs them and keeps `reconciler_paused_containers` current.
- **Crash loops** (see `crashloop`): the starts that must wait, and how long; a crash loop is told once,
  and a container that ran long enough again makes its next one news again.

The controller asks `hold(plan, observed, desired)` in every plan it makes; the waits it gets back are its to
schedule (only the worker loop talks to the queue).
"""

from __future__ import annotations

from typing import Any

from reconciler.plan.observed import ObservedState
from reconciler.plan.planner import Plan
from reconciler.plan.resources import DesiredState

from .alerts import Alerts
from .crashloop import CrashLoops
from .intents import Pause, PauseFile, leave_paused
from .metrics import ClientMetrics


class Guards:
    def __init__(
        self, pauses: PauseFile, crash_loops: CrashLoops, alerts: Alerts, metrics: ClientMetrics, log: Any
    ) -> None:
        self.pauses = pauses
        self.crash_loops = crash_loops
        self.alerts = alerts
        self.metrics = metrics
        self.log = log
        self.paused_seen: frozenset[str] = frozenset()

    def hold(self, plan: Plan, observed: ObservedState, desired: DesiredState) -> tuple[Plan, dict[str, float]]:
        """The plan without what must wait: crash-looping starts (with how long each waits), paused containers."""
        held, waits = self.crash_loops.hold(plan, observed)
        for name in waits:
            crashes = self.crash_loops.crashes.get(name, (0, ""))[0]
            text = f"crash loop: restart held back ({crashes} crashes in a row)"
            self.alerts.tell_once("crash-loop", name, text, detail=name)
        # A container of ours that ran long enough again: its next crash loop is news again.
        ours = desired.containers
        self.alerts.forget("crash-loop", lambda told: told in self.crash_loops.crashes or told not in ours)
        return leave_paused(held, desired, self.paused(desired)), waits

    def paused(self, desired: DesiredState) -> dict[str, Pause]:
        """The pauses in force, of the containers this client keeps."""
        active = self.pauses.active()
        containers = desired.containers
        return {n: p for n, p in active.items() if n in containers and p.matches(containers[n].spec_hash)}

    def watch(self, desired: DesiredState) -> bool:
        """Log what a person paused or resumed (or what expired) and keep the gauge current; True when
        something is no longer paused (everything is worth a look then)."""
        now = frozenset(self.paused(desired))
        if now == self.paused_seen:
            return False
        paused, resumed = sorted(now - self.paused_seen), sorted(self.paused_seen - now)
        self.paused_seen = now
        self.metrics.paused.set(len(now))
        if paused:
            self.log.info("paused by a person: not healed until resumed", containers=paused)
        if resumed:
            self.log.info("resumed: managed again", containers=resumed)
        return bool(resumed)
