"""What a reconcile's plan and results mean to the people and the loops around it.

The controller's reconcile decides and acts; this module tells: the plan's drift, blocks and holds in the
log (a hold once, not on every reconcile) and in `reconciler_drift_total`, every action's outcome in
`reconciler_actions_total`, an image update done or rolled back as an alert, a rollback made into a hold
(see `holds`: that container, spec and image are not tried again until the map or the tag moves), and a
newer image not taken (`update: notify`, or waiting for its window) told once per image id.

Nothing here touches the engine or the work queue: it is fed the plan and the results, so the controller
stays the only place that decides what runs next.
"""

from __future__ import annotations

import threading
from typing import Any

from reconciler.executor.apply import ActionResult, Outcome, RunResult
from reconciler.plan.drift import Reason
from reconciler.plan.planner import Plan
from reconciler.plan.resources import DesiredState

from .alerts import Alerts
from .board import Board
from .holds import HoldStore, hold_rollback
from .metrics import ClientMetrics


class Outcomes:
    def __init__(
        self,
        log: Any,
        metrics: ClientMetrics,
        alerts: Alerts,
        board: Board,
        holds: HoldStore,
        stopping: threading.Event,
    ) -> None:
        self.log = log
        self.metrics = metrics
        self.alerts = alerts
        self.board = board
        self.holds = holds
        self.stopping = stopping  # a rollback during our own shutdown is not a failure to hold
        self._said: dict[str, str] = {}  # container → the hold last logged for it

    def report(self, plan: Plan) -> None:
        """The plan about to run: blocked work, holds (once each), and every drift with its reasons."""
        for blocked in plan.blocked:
            self.log.warning("blocked", resource=str(blocked.resource), reason=blocked.message)
        for note in plan.notes:
            said = self._said.get(note.resource.name)
            if note.held and said != note.message:
                self._said[note.resource.name] = note.message  # once per hold, not on every reconcile
                self.log.warning("held back", resource=str(note.resource), note=note.message)
        for action in plan.actions:
            for reason in action.reasons:
                self.metrics.drift.labels(reason.reason.value).inc()
            self.log.info(
                "drift",
                resource=str(action.resource),
                action=action.op.value,
                reasons=[r.describe() for r in action.reasons],
            )

    def results(self, desired: DesiredState, result: RunResult) -> None:
        """Metrics for every action; an update done is told; a rollback becomes a hold."""
        for r in result.results:
            self.metrics.actions.labels(r.action.op.value, r.outcome.value).inc()
            if r.rolled_back is not None:
                self.rolled_back(desired, r)
            elif r.outcome is Outcome.DONE and any(d.reason is Reason.IMAGE for d in r.action.reasons):
                self.metrics.updates.inc()
                image = next(d for d in r.action.reasons if d.reason is Reason.IMAGE)
                text = f"updated: {image.field} {image.found} → {image.wanted}"
                self.alerts.add("update", r.action.resource.name, text)

    def rolled_back(self, desired: DesiredState, r: ActionResult) -> None:
        """A replacement failed its health gate and the previous container runs again: hold that
        (container, spec, image) so the same failing replacement is not tried again."""
        assert r.rolled_back is not None
        self.metrics.rollbacks.inc()
        self.board.rolled_back(r.action, r.error)
        name = r.action.resource.name
        spec = desired.containers.get(name)
        if self.stopping.is_set() or spec is None:
            return  # interrupted by our own shutdown: nothing failed, the next start tries again
        image_ref, image_id = r.rolled_back
        image_changed = hold_rollback(self.holds, spec.spec_hash, r)
        tried = f"the update to {image_ref} {image_id.removeprefix('sha256:')[:12]}" if image_changed else "a recreate"
        self.alerts.add("rollback", name, f"rolled back {tried}, the previous container runs again: {r.error}")
        if image_changed:
            self.log.warning(
                "image update rolled back; not retried until the tag moves",
                container=name,
                image=image_ref,
                image_id=image_id[:19],
            )
        else:
            self.log.warning(
                "recreate rolled back; held back until the map changes its spec",
                container=name,
                reasons=[d.describe() for d in r.action.reasons],
            )

    def pending(self, plan: Plan) -> None:
        """Newer images not taken (policy `notify`, or waiting for the window): told once per image id."""
        for pending in plan.pending:
            name = pending.resource.name
            if self.alerts.tell_once("pending", name, pending.describe(), detail=f"{name}@{pending.wanted}"):
                self.log.warning("update pending", container=name, image=pending.image, why=pending.why)
