"""A person's intent beside the daemon: paused containers, and whether a daemon is running at all.

The channel is two small files in the state directory (the one `holds` uses: the setting `state_dir`,
else `$STATE_DIRECTORY`, else /var/lib/reconciler), so it works the same with the daemon on the host or in
a container that mounts that directory, and needs no network:

- `paused.json` — containers a person asked the daemon to leave alone (`reconciler pause`, or `down` while
  a daemon runs), each with an optional expiry. The CLI writes it; the daemon reads it on *every* plan (a
  `stat`, re-read only when it changed), so no heal can slip in between a person's `down` and the daemon
  noticing the pause. `resume` (or `apply` of those containers) removes entries; an expired one is ignored.
- `daemon.json` — written by a running daemon (pid, map paths, a heartbeat refreshed every few seconds)
  and removed when it stops: the CLI uses it to say that a daemon manages the maps. A heartbeat older than
  `STALE_AFTER` means the daemon is gone (killed, or its container stopped).

Writes go to a temporary file renamed into place, so a reader never sees half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from reconciler.plan.graph import dependents
from reconciler.plan.naming import REPLACEMENT_SUFFIX
from reconciler.plan.planner import Note, Plan
from reconciler.plan.resources import DesiredState, Kind, ResourceId

PAUSED_FILE = "paused.json"
DAEMON_FILE = "daemon.json"
# Seconds between the daemon's heartbeats; each also wakes the map watcher (the file is beside the pauses).
BEAT_EVERY = 10.0
STALE_AFTER = 30.0  # a heartbeat older than this: no daemon


@dataclass(frozen=True)
class Pause:
    """One paused container: since when, until when (None: until resumed), and why."""

    container: str
    at: float
    until: float | None = None
    why: str = "paused"
    spec_hash: str = ""  # the container's spec when paused: a map change of it ends the pause

    def matches(self, spec_hash: str | None) -> bool:
        """Still in force for this spec (a pause without a recorded spec matches any)."""
        return not self.spec_hash or spec_hash is None or spec_hash == self.spec_hash

    def active(self, now: float) -> bool:
        return self.until is None or now < self.until

    def describe(self) -> str:
        until = "until `reconciler resume`" if self.until is None else f"until {_clock(self.until)}"
        return f"paused ({self.why}, {until})"


def _clock(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


def write_json(path: Path, data: Any) -> None:
    """Write and rename: a crash mid-write leaves the previous file, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as tmp:
        json.dump(data, tmp, indent=1)
    Path(tmp.name).replace(path)


class PauseFile:
    """`paused.json`: read cheaply and often (by mtime), written by the command line."""

    def __init__(self, directory: Path | None, clock: Callable[[], float] = time.time) -> None:
        self.path = directory / PAUSED_FILE if directory is not None else None
        self.clock = clock
        self._lock = threading.Lock()
        self._seen: tuple[int, int] | None = None
        self._pauses: dict[str, Pause] = {}

    def active(self) -> dict[str, Pause]:
        """The pauses in force now (re-reading the file only when it changed)."""
        now = self.clock()
        with self._lock:
            self._refresh()
            return {name: p for name, p in self._pauses.items() if p.active(now)}

    def next_end(self) -> float | None:
        """Seconds until the nearest pause in force runs out (None: none has an end)."""
        now = self.clock()
        ends = [p.until - now for p in self.active().values() if p.until is not None]
        return max(0.0, min(ends)) if ends else None

    def _refresh(self) -> None:
        if self.path is None:
            return
        try:
            stat = self.path.stat()
        except OSError:
            self._seen, self._pauses = None, {}
            return
        seen = (stat.st_mtime_ns, stat.st_size)
        if seen == self._seen:
            return
        self._seen = seen
        try:
            entries = json.loads(self.path.read_text()).get("paused", [])
            self._pauses = {e["container"]: Pause(**e) for e in entries}
        except (OSError, ValueError, TypeError, KeyError):
            self._pauses = {}  # an unreadable file pauses nothing: the daemon keeps healing

    def pause(self, specs: Mapping[str, str], until: float | None, why: str) -> list[str]:
        """Pause these containers (name → spec hash; replacing earlier pauses of them); returns them sorted."""
        now = self.clock()
        added = sorted(specs)
        self._change(lambda current: current | {n: Pause(n, now, until, why, specs[n]) for n in added})
        return added

    def resume(self, names: Iterable[str] | None = None) -> list[str]:
        """Resume these containers (None: all); returns those that were paused."""
        gone: list[str] = []

        def drop(current: dict[str, Pause]) -> dict[str, Pause]:
            wanted = set(current) if names is None else set(names)
            gone.extend(sorted(n for n in current if n in wanted and current[n].active(self.clock())))
            return {n: p for n, p in current.items() if n not in wanted}

        self._change(drop)
        return gone

    def _change(self, how: Callable[[dict[str, Pause]], dict[str, Pause]]) -> None:
        if self.path is None:
            raise OSError("no state directory: pauses need one (state_dir is 'off')")
        with self._lock:
            self._seen = None
            self._refresh()
            now = self.clock()
            before, self._pauses = self._pauses, {n: p for n, p in how(dict(self._pauses)).items() if p.active(now)}
            if before == self._pauses:
                return  # nothing to change: nothing written (no state directory created for nothing)
            write_json(self.path, {"paused": [asdict(p) for p in sorted(self._pauses.values(), key=_by_name)]})
            self._seen = None


def _by_name(pause: Pause) -> str:
    return pause.container


def leave_paused(plan: Plan, desired: DesiredState, paused: Mapping[str, Pause]) -> Plan:
    """The plan without actions on paused containers (their `..next` included) — nor on what only paused
    containers use (their networks, volumes, volume inits, images), so that after `down` beside the daemon
    nothing of them comes back; each paused container gets a note saying so."""
    if not paused:
        return plan
    idle = {ResourceId(Kind.CONTAINER, name) for name in paused}
    users = dependents(desired.depends_on)
    grew = True
    while grew:  # what only idle resources use is idle too (a volume ← its init ← the container)
        grew = False
        for rid, needed_by in users.items():
            if rid not in idle and rid.kind is not Kind.CONTAINER and needed_by and needed_by <= idle:
                idle.add(rid)
                grew = True

    def left(rid: ResourceId) -> bool:
        return ResourceId(rid.kind, rid.name.removesuffix(REPLACEMENT_SUFFIX)) in idle

    kept = plan.keep(lambda a: not left(a.resource))
    notes = [
        Note(a.resource, paused[a.resource.name.removesuffix(REPLACEMENT_SUFFIX)].describe())
        for a in plan.actions
        if left(a.resource) and a.resource.kind is Kind.CONTAINER
    ]
    return replace(kept, notes=kept.notes + tuple(n for n in notes if n not in kept.notes))


# --- the daemon's presence -----------------------------------------------------------------------------


class Presence:
    """`daemon.json`, kept by a running daemon: announce at start, beat while running, withdraw at stop."""

    def __init__(
        self,
        directory: Path | None,
        paths: list[str],
        clock: Callable[[], float] = time.time,
        git: Callable[[], dict[str, str | None]] | None = None,
    ) -> None:
        """`git`: with maps from git, the repository and the commit in force now (shown by `status`)."""
        self.path = directory / DAEMON_FILE if directory is not None else None
        self.paths = [str(Path(p).absolute()) for p in paths]
        self.clock = clock
        self.git = git
        self._last = 0.0

    def beat(self) -> None:
        """Refresh the heartbeat (at most every BEAT_EVERY seconds); a failure to write is not fatal."""
        now = self.clock()
        if self.path is None or now - self._last < BEAT_EVERY:
            return
        self._last = now
        try:
            state: dict[str, Any] = {"pid": os.getpid(), "paths": self.paths, "heartbeat": now}
            if self.git is not None:
                state["git"] = self.git()
            write_json(self.path, state)
        except OSError:
            self.path = None  # the holds' own warning already says the state directory is not writable

    def withdraw(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def running_daemon(directory: Path | None, clock: Callable[[], float] = time.time) -> dict[str, Any] | None:
    """What `daemon.json` says of a live daemon (pid, paths, heartbeat), or None when none is running."""
    if directory is None:
        return None
    try:
        data = json.loads((directory / DAEMON_FILE).read_text())
        fresh = clock() - float(data["heartbeat"]) < STALE_AFTER
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return data if fresh and isinstance(data, dict) else None
