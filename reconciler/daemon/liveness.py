"""Is this client's loop alive, and is its engine there: the watchdog's and `/healthz`'s answer.

- **Busy is not stuck**: a reconcile counts as stuck only when it made no progress for longer than
  `stuck_after` beyond what its running actions may legitimately take (a stop timeout, a health gate —
  see `progress`); the loops beat (`heartbeat`) whenever they come round.
- **systemd's watchdog** is pinged from the heartbeat, and only while nothing is stuck: a wedged daemon is
  restarted by systemd, a busy one is not.
- **The engine**: lost (`lost()`) and back (`back()`) are told as alerts — lost only once it has been away
  longer than `engine_grace` (a restart of dockerd is not news), back only if lost was told.

Clocks are injected, so the rules are tested without waiting.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .alerts import Alerts
from .notify import Notifier
from .progress import Progress
from .settings import Settings


class Liveness:
    def __init__(
        self,
        settings: Settings,
        progress: Progress,
        notifier: Notifier,
        alerts: Alerts,
        engine_name: str,
        clock: Callable[[], float],
        log: Any,
    ) -> None:
        self.settings = settings
        self.progress = progress
        self.notifier = notifier
        self.alerts = alerts
        self.engine_name = engine_name  # "engine", or "engine <client>" with several
        self.clock = clock
        self.log = log
        self.last_progress = clock()
        self.engine_down_since: float | None = None
        self._last_watchdog = 0.0

    @property
    def engine_up(self) -> bool:
        return self.engine_down_since is None

    def lost(self) -> None:
        """The engine's connection went (the events stream ended, a request failed to connect)."""
        if self.engine_down_since is None:
            self.engine_down_since = self.clock()

    def back(self) -> None:
        """The engine answers again: say for how long it was gone (and tell, if its loss was told)."""
        if self.engine_down_since is not None:
            down_for = round(self.clock() - self.engine_down_since, 1)
            self.log.info("engine is back", down_for=down_for)
            if self.alerts.untell("engine-lost", self.engine_name):
                self.alerts.add("engine-back", self.engine_name, f"reachable again after {down_for:.0f}s")
        self.engine_down_since = None

    def stuck_for(self) -> float:
        """How long a reconcile in flight has gone without progress (beyond what its running actions may
        legitimately take); 0 when every one is advancing — busy is not stuck."""
        return self.progress.stalled_for()

    def heartbeat(self) -> None:
        """Called by the loops; pings systemd's watchdog only while no reconcile is stuck."""
        now = self.clock()
        self.last_progress = now
        down = self.engine_down_since
        if down is not None and now - down > self.settings.engine_grace:
            text = f"unreachable for {now - down:.0f}s"
            self.alerts.tell_once("engine-lost", self.engine_name, text, detail=self.engine_name)
        interval = self.notifier.watchdog_interval
        if interval and now - self._last_watchdog >= interval / 3 and self.stuck_for() <= self.settings.stuck_after:
            self._last_watchdog = now
            self.notifier.watchdog()

    def due_in(self) -> float | None:
        """Seconds until `heartbeat` has something to do: the watchdog's next ping, the engine-lost alert.
        A deadline already past is not one: the alert is told once, and a ping withheld while a reconcile is
        stuck is looked at again a ping's interval later (a past deadline would make the loop spin)."""
        now = self.clock()
        dues = []
        interval = self.notifier.watchdog_interval
        if interval:
            ping = self._last_watchdog + interval / 3 - now
            dues.append(ping if ping > 0 else interval / 3)
        down = self.engine_down_since
        if down is not None and now - down < self.settings.engine_grace:
            dues.append(down + self.settings.engine_grace - now)
        return min(dues) if dues else None

    def health(self) -> tuple[bool, str]:
        now = self.clock()
        stuck = self.stuck_for()
        if stuck > self.settings.stuck_after:
            return False, f"a reconcile has made no progress for {stuck:.0f}s"
        if now - self.last_progress > self.settings.stuck_after:
            return False, f"loop stuck for {now - self.last_progress:.0f}s"
        if self.engine_down_since is not None and now - self.engine_down_since > self.settings.engine_grace:
            return False, f"engine unreachable for {now - self.engine_down_since:.0f}s"
        return True, "ok"
