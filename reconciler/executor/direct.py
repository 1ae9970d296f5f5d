"""A person's direct verbs on containers of the maps: `stop`, `start`, `restart` and `logs`.

These are not converging: they do one thing to existing containers, as `docker compose stop/start/restart/
logs` do, and leave the rest to `apply` or the daemon. Ownership still rules: only containers carrying our
labels are touched (a stranger holding a map's name is reported, never stopped); a missing container is
reported, with `apply` as the way to create it. `stop` and `restart` give each container the map's
`stop_timeout`. The command line tells a running daemon first (see `daemon.intents`): a stopped container
is paused, so it is not started again behind the person's back; `start` resumes it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import docker

from reconciler.plan.graph import waves
from reconciler.plan.observed import ObservedState
from reconciler.plan.resources import DesiredState, Kind, ResourceId

from .engine import DockerEngine
from .errors import EngineError, classify

VERBS = ("stop", "start", "restart")


@dataclass(frozen=True)
class Done:
    """What one verb did to one container: `ok`, `skipped` (already so, missing, a stranger) or `failed`."""

    container: str
    outcome: str
    detail: str = ""
    seconds: float = 0.0


def act(
    engine: DockerEngine, desired: DesiredState, observed: ObservedState, verb: str, names: list[str]
) -> Iterator[Done]:
    """Apply `verb` to each named container in turn, in dependency order (stop: dependents first)."""
    rids = [ResourceId(Kind.CONTAINER, n) for n in names]
    order = [rid.name for wave in waves(desired.depends_on, rids) for rid in wave]
    for name in reversed(order) if verb == "stop" else order:
        yield _one(engine, desired, observed, verb, name)


def _one(engine: DockerEngine, desired: DesiredState, observed: ObservedState, verb: str, name: str) -> Done:
    found = observed.containers.get(name)
    if found is None:
        return Done(name, "skipped", "missing: `reconciler apply` creates it")
    if not found.managed:
        return Done(name, "skipped", "a container without reconciler's labels holds this name: not touched")
    running = found.status in ("running", "restarting", "paused")
    if (verb == "stop" and not running) or (verb == "start" and running):
        return Done(name, "skipped", "already stopped" if verb == "stop" else "already running")
    spec = desired.containers.get(name)
    timeout = spec.stop_timeout if spec is not None else None
    calls: dict[str, Callable[[], None]] = {
        "stop": lambda: engine.stop(name, timeout),
        "start": lambda: engine.start(name),
        "restart": lambda: engine.restart(name, timeout),
    }
    began = time.monotonic()
    try:
        calls[verb]()
    except EngineError as exc:
        return Done(name, "failed", str(exc), time.monotonic() - began)
    return Done(name, "ok", "", time.monotonic() - began)


def follow_logs(engine: DockerEngine, name: str, *, follow: bool, tail: int | None) -> Iterator[str]:
    """A container's log lines (stdout and stderr, as `docker logs`), following it if asked."""
    pending = b""
    try:
        for chunk in engine.api.logs(name, stream=True, follow=follow, tail="all" if tail is None else tail):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            yield from (line.decode(errors="replace") for line in lines)
    except docker.errors.DockerException as exc:
        raise classify(exc) from exc
    if pending:
        yield pending.decode(errors="replace")
