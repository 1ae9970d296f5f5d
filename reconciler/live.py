"""Live progress of `reconciler apply` / `down` (`--progress plain|tty|json|quiet`).

The executor reports what happens — each plan before its first wave (`on_run`), each action's start and
outcome (`on_event`), and what a running action is doing now (`on_phase`: creating, starting, waiting for
health, healthy, stopping, removing, …) — and a `Progress` shows it; it never runs anything itself, so
there is still only the one converge loop (`executor.converge`).

- `tty` (the default on a terminal): one line per resource, grouped by wave and updated in place with
  rich — waiting → creating → starting → healthy / done / failed, with the time it took; the summary
  follows. While the display owns the terminal, log lines below warning are not written (they would tear
  it); warnings and errors are printed above it.
- `plain` (the default off a terminal): a line per finished action with its seconds; logs stay as
  configured (JSON).
- `json`: one JSON object per state change on stdout (`at`, `client`, `wave`, `kind`, `name`, `action`,
  `state`, `seconds`, `error`), for scripts and CI logs.
- `quiet`: nothing but the summary.

With several engines (a clients file) each client's executor gets its own hooks (`executor_hooks(client)`):
rows are per client, waves counted per client, and lines name the client.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

from reconciler import logs
from reconciler.plan.planner import Action, Op, Plan
from reconciler.plan.resources import ResourceId

FINAL = {"done", "healthy", "failed", "skipped"}
MARKS = {"done": "ok", "healthy": "ok", "failed": "FAILED", "skipped": "skipped"}


MODES = ("plain", "tty", "json", "quiet")


@dataclass
class Row:
    action: Action
    wave: str  # "1", "2", … or "pull"
    client: str = ""
    shown: bool = False  # name the client on its lines (several engines)
    state: str = "waiting"
    started: float | None = None
    ended: float | None = None
    error: str | None = None
    healthy: bool = False  # passed its health gate: "healthy" rather than "done" once finished

    def seconds(self, now: float) -> float | None:
        if self.started is None:
            return None
        return (self.ended if self.ended is not None else now) - self.started


class Progress:
    """The rows of every plan run so far, updated from the executor's hooks (any thread)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.lock = threading.Lock()
        self.rows: dict[tuple[str, ResourceId], Row] = {}
        self._waves: dict[str, int] = {}

    # The executor's hooks -------------------------------------------------------------------------------

    def on_run(self, plan: Plan, client: str = "", shown: bool = False) -> None:
        pulls = all(a.op is Op.PULL for a in plan.actions)
        with self.lock:
            for wave in plan.waves:
                label = "pull"
                if not pulls:
                    self._waves[client] = self._waves.get(client, 0) + 1
                    label = str(self._waves[client])
                for action in wave:
                    row = self.rows[client, action.resource] = Row(action, label, client, shown)
                    self.changed(row)

    def on_event(self, event: str, action: Action, error: str | None, client: str = "") -> None:
        with self.lock:
            row = self.rows.setdefault((client, action.resource), Row(action, "?", client))
            now = self.clock()
            if event == "start":
                row.started = now  # shown by the phases that follow
                return
            row.ended, row.error = now, error
            row.state = "healthy" if event == "done" and row.healthy else event
            self.changed(row)

    def on_phase(self, action: Action, phase: str, client: str = "") -> None:
        with self.lock:
            row = self.rows.get((client, action.resource))
            if row is None or row.state == phase or row.state in FINAL:
                return
            if phase == "healthy":
                row.healthy = True  # the outcome says so
                return
            row.state = phase
            self.changed(row)

    def executor_hooks(self, client: str = "", *, shown: bool = False) -> dict[str, Any]:
        """The keyword arguments that connect one client's `Executor` to this display (`shown`: name the
        client on the lines, when there are several)."""
        return {
            "on_run": lambda plan: self.on_run(plan, client, shown),
            "on_event": lambda event, action, error: self.on_event(event, action, error, client),
            "on_phase": lambda action, phase: self.on_phase(action, phase, client),
        }

    # What each mode does with a change --------------------------------------------------------------------

    def changed(self, row: Row) -> None:
        """Called under the lock after every state change."""

    def showing(self) -> AbstractContextManager[None]:
        """The context the converge runs in (the live display, for `tty`)."""
        return nullcontext()


class Plain(Progress):
    """One line per finished action — outcome, what, which, seconds — as `apply` always printed them."""

    def __init__(self, out: Callable[[str], None], clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(clock)
        self.out = out

    def changed(self, row: Row) -> None:
        if row.state not in FINAL:
            return
        a = row.action
        where = f"{row.client}: " if row.shown else ""
        line = f"  {MARKS[row.state]:<8} {a.op.value:<9} {a.resource.kind.value:<12} {where}{a.resource.name}"
        seconds = row.seconds(self.clock())
        line += f" ({seconds:.1f}s)" if row.state != "skipped" and seconds is not None else ""
        self.out(line + (f": {row.error}" if row.error else ""))
        sys.stdout.flush()


class Json(Progress):
    def __init__(self, out: IO[str]) -> None:
        super().__init__()
        self.out = out

    def changed(self, row: Row) -> None:
        seconds = row.seconds(self.clock())
        record = {
            "at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "client": row.client or None,
            "wave": row.wave,
            "kind": row.action.resource.kind.value,
            "name": row.action.resource.name,
            "action": row.action.op.value,
            "state": row.state,
            "seconds": None if seconds is None else round(seconds, 3),
            "error": row.error,
        }
        self.out.write(json.dumps(record) + "\n")
        self.out.flush()


class Tty(Progress):
    """rich's Live display: redrawn a few times a second from the rows (elapsed times keep moving)."""

    STYLES = {"done": "green", "healthy": "green", "failed": "bold red", "skipped": "yellow", "waiting": "dim"}

    def __init__(self, force: bool) -> None:
        super().__init__()
        from rich.console import Console  # noqa: PLC0415 - only a terminal display pays for rich

        self.console = Console(file=sys.stdout, force_terminal=force or None, highlight=False)

    def render(self) -> Any:
        from rich.text import Text  # noqa: PLC0415

        now = self.clock()
        text = Text()
        with self.lock:
            rows = list(self.rows.values())
        wave: tuple[str, str] | None = None
        for row in rows:
            if (row.client, row.wave) != wave:
                wave = (row.client, row.wave)
                where = f"client {row.client}: " if row.shown else ""
                text.append(where + ("pulls\n" if row.wave == "pull" else f"wave {row.wave}\n"), style="bold")
            seconds = row.seconds(now)
            took = "" if seconds is None else f"{seconds:6.1f}s"
            a = row.action
            line = f"  {row.state:<20} {a.op.value:<9} {a.resource.kind.value:<12} {a.resource.name:<40} {took}"
            text.append(line.rstrip() + "\n", style=self.STYLES.get(row.state, "cyan"))
            if row.error:
                text.append(f"      {row.error}\n", style="red")
        text.rstrip()
        return text

    @contextmanager
    def _live(self) -> Iterator[None]:
        from rich.live import Live  # noqa: PLC0415

        with (
            logs.at_least("warning"),
            Live(
                console=self.console,
                get_renderable=self.render,
                refresh_per_second=8,
                redirect_stdout=True,
                redirect_stderr=True,
            ),
        ):
            yield

    def showing(self) -> AbstractContextManager[None]:
        return self._live()


def progress_for(mode: str | None, out: Callable[[str], None]) -> Progress:
    """The display for a mode (one of `MODES`); None picks `tty` on a terminal and `plain` off one."""
    if mode is None:
        mode = "tty" if sys.stdout.isatty() else "plain"
    if mode == "tty":
        return Tty(force=True)
    if mode == "json":
        return Json(sys.stdout)
    if mode == "plain":
        return Plain(out)
    return Progress()
