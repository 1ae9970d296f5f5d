"""The status board: what the daemon's status page (`/`) and its JSON (`/api/status`) show.

Two halves:
- `Board` remembers what only the daemon knows as it happens: the recent actions (a ring buffer of the last
  `size` action outcomes, with time and error), the last action per resource, rollbacks, and the map errors
  in force (the latest reload's problems: files kept at their last good version). The controller feeds it
  from the executor's `on_event` hook and from its results — nothing here runs a loop of its own.
- `status(...)` composes one JSON document from the controller's current view: the desired state, a look at
  the engine through the controller's cached view (so an idle daemon's page makes no API requests), a plan
  made from it (pure: drift reasons, holds, blocks — the same planner the reconciles use, without executing
  or counting anything), the crash-loop counts, the board, and the dependency picture (`plan.diagram`).

Read-only and secret-free by construction: environment values never appear (an `env` drift says which
variable differs, not its values), nor do settings or tokens; the page escapes everything it shows.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from reconciler import __version__
from reconciler.model import MapProblem
from reconciler.plan.diagram import picture, state_of, states_from
from reconciler.plan.drift import Drift, Reason
from reconciler.plan.observed import ObservedState
from reconciler.plan.planner import Action, Plan
from reconciler.plan.resources import ContainerSpec, DesiredState, ResourceId

EVENTS_KEPT = 300


def _iso(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class BoardEvent:
    at: float
    resource: ResourceId
    action: str
    outcome: str  # start, a phase (creating, waiting for health, …), done, failed, skipped, rolled back
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": _iso(self.at),
            "kind": self.resource.kind.value,
            "name": self.resource.name,
            "action": self.action,
            "outcome": self.outcome,
            "error": self.error,
        }


class Board:
    def __init__(self, clock: Callable[[], float] = time.time, size: int = EVENTS_KEPT) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._events: deque[BoardEvent] = deque(maxlen=size)
        self._last: dict[ResourceId, BoardEvent] = {}
        self._rollbacks: dict[str, BoardEvent] = {}
        self._map_errors: tuple[str, ...] = ()

    def action(self, event: str, action: Action, error: str | None) -> None:
        """An executor event (start, done, failed, skipped); starts are not kept in the history."""
        entry = BoardEvent(self.clock(), action.resource, action.op.value, event, error)
        with self._lock:
            self._last[action.resource] = entry
            if event != "start":
                self._events.append(entry)

    def phase(self, action: Action, phase: str) -> None:
        """What a running action is doing now (creating, waiting for health, …): its last action, not history."""
        entry = BoardEvent(self.clock(), action.resource, action.op.value, phase)
        with self._lock:
            self._last[action.resource] = entry

    def rolled_back(self, action: Action, error: str | None) -> None:
        entry = BoardEvent(self.clock(), action.resource, action.op.value, "rolled back", error)
        with self._lock:
            self._rollbacks[action.resource.name] = entry
            self._events.append(entry)

    def map_errors(self, problems: Iterable[MapProblem]) -> None:
        with self._lock:
            self._map_errors = tuple(str(p) for p in problems)

    def snapshot(self) -> tuple[list[BoardEvent], dict[ResourceId, BoardEvent], dict[str, BoardEvent], list[str]]:
        with self._lock:
            return list(self._events), dict(self._last), dict(self._rollbacks), list(self._map_errors)


@dataclass(frozen=True)
class View:
    """What `status` composes from: the controller's current state, gathered by the controller."""

    desired: DesiredState
    observed: ObservedState | None  # None: the engine did not answer
    plan: Plan | None
    engine_error: str | None
    crash_loops: dict[str, int]
    health: tuple[bool, str]
    ready: tuple[bool, str]
    engines: list[dict[str, Any]]


def reason_text(drift: Drift) -> str:
    """A drift reason for the page: environment values are never shown, only the variable's name."""
    if drift.reason is Reason.ENV:
        change = "added" if drift.found is None else ("removed" if drift.wanted is None else "changed")
        return f"env {drift.field} {change}"
    return drift.describe()


def status(view: View, board: Board) -> dict[str, Any]:
    events, last, rollbacks, map_errors = board.snapshot()
    maps = sorted(view.desired.maps)
    return {
        "version": __version__,
        "generated": _iso(board.clock()),
        "health": {"ok": view.health[0], "reason": view.health[1]},
        "ready": {"ok": view.ready[0], "reason": view.ready[1]},
        "engines": view.engines,
        "engine_error": view.engine_error,
        "map_errors": map_errors,
        "in_sync": view.plan.in_sync if view.plan is not None else None,
        "maps": [_map(view, name, last, rollbacks) for name in maps],
        "events": [e.as_dict() for e in reversed(events)],
        "graph": picture(view.desired, states=_states(view)).as_dict(),
    }


def combine(documents: list[dict[str, Any]], health: tuple[bool, str], ready: tuple[bool, str]) -> dict[str, Any]:
    """One document from each client's (a daemon over several engines): the daemon's health and readiness,
    every engine, the maps merged by name (each container says its client), the newest events of all."""
    if not documents:
        documents = [status(View(DesiredState(), None, None, "no engine yet", {}, health, ready, []), Board())]
    first = documents[0]
    maps: dict[str, dict[str, Any]] = {}
    for doc in documents:
        for m in doc["maps"]:
            merged = maps.setdefault(m["name"], {"name": m["name"], "containers": [], "resources": [], "problems": []})
            for part in ("containers", "resources", "problems"):
                merged[part].extend(m[part])
    nodes: dict[tuple[str, str], dict[str, Any]] = {}
    for doc in documents:
        for node in doc["graph"]["nodes"]:
            nodes.setdefault((node["kind"], node["name"]), node)
    events = sorted((e for doc in documents for e in doc["events"]), key=lambda e: str(e["at"]), reverse=True)
    errors = [doc["engine_error"] for doc in documents if doc["engine_error"]]
    return {
        **first,
        "health": {"ok": health[0], "reason": health[1]},
        "ready": {"ok": ready[0], "reason": ready[1]},
        "engines": [e for doc in documents for e in doc["engines"]],
        "engine_error": "; ".join(errors) or None,
        "map_errors": sorted({p for doc in documents for p in doc["map_errors"]}),
        "in_sync": None if any(d["in_sync"] is None for d in documents) else all(d["in_sync"] for d in documents),
        "maps": [maps[name] for name in sorted(maps)],
        "events": events[:EVENTS_KEPT],
        "graph": {"nodes": list(nodes.values()), "edges": [e for doc in documents for e in doc["graph"]["edges"]]},
    }


def _map(view: View, name: str, last: dict[ResourceId, BoardEvent], rollbacks: dict[str, BoardEvent]) -> dict[str, Any]:
    d = view.desired
    containers = [s for s in d.containers.values() if s.map == name]
    others = [
        *(v.id for v in d.networks.values() if v.map == name),
        *(v.id for v in d.volumes.values() if v.map == name),
        *(v.id for v in d.inits.values() if v.map == name),
    ]
    problems = [{"name": rid.name, "problem": message} for rid, message in d.problems if _in_map(d, rid, name)]
    return {
        "name": name,
        "containers": [_container(view, spec, last, rollbacks) for spec in sorted(containers, key=lambda s: s.name)],
        "resources": [_resource(view, rid, last) for rid in sorted(others)],
        "problems": problems,
    }


def _states(view: View) -> dict[ResourceId, tuple[str, str | None]] | None:
    return states_from(view.desired, view.observed) if view.observed is not None else None


def _in_map(desired: DesiredState, rid: ResourceId, name: str) -> bool:
    return rid.name == name or rid.name.startswith(f"{name}.")


def _observed_bits(view: View, rid: ResourceId) -> dict[str, Any]:
    if view.observed is None:
        return {"state": "unknown", "health": None}
    state, health = state_of(rid, view.observed)
    return {"state": state, "health": health}


def _plan_bits(plan: Plan | None, rid: ResourceId) -> dict[str, Any]:
    if plan is None:
        return {"action": None, "drift": [], "notes": []}
    action = plan.action_for(rid)
    blocked = [b.message for b in plan.blocked if b.resource == rid]
    notes = [n.message for n in plan.notes if n.resource == rid]
    return {
        "action": "blocked" if blocked else (action.op.value if action else None),
        "drift": blocked + ([reason_text(r) for r in action.reasons] if action else []),
        "notes": notes,
    }


def _last(last: dict[ResourceId, BoardEvent], rid: ResourceId) -> dict[str, Any] | None:
    entry = last.get(rid)
    return None if entry is None else entry.as_dict()


def _container(
    view: View, spec: ContainerSpec, last: dict[ResourceId, BoardEvent], rollbacks: dict[str, BoardEvent]
) -> dict[str, Any]:
    found = view.observed.containers.get(spec.name) if view.observed is not None else None
    wanted = view.observed.images.get(spec.image) if view.observed is not None else None
    plan_bits = _plan_bits(view.plan, spec.id)
    rollback = rollbacks.get(spec.name)
    return {
        "name": spec.name,
        "client": view.desired.client,
        "config": spec.config,
        "instance": spec.instance,
        **_observed_bits(view, spec.id),
        "image": spec.image,
        "image_id": found.image_id if found is not None else None,
        "tag_id": wanted.id if wanted is not None else None,
        "update_pending": bool(found and wanted and found.image_id != wanted.id),
        "held": [n for n in plan_bits["notes"] if n.startswith("held back")],
        **plan_bits,
        "restarts": found.restart_count if found is not None else None,
        "crash_loop": view.crash_loops.get(spec.name, 0),
        "rolled_back": None if rollback is None else rollback.as_dict(),
        "last_action": _last(last, spec.id),
    }


def _resource(view: View, rid: ResourceId, last: dict[ResourceId, BoardEvent]) -> dict[str, Any]:
    return {
        "kind": rid.kind.value,
        "name": rid.name,
        **_observed_bits(view, rid),
        **_plan_bits(view.plan, rid),
        "last_action": _last(last, rid),
    }
