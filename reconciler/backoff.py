"""One backoff policy for every "try again later" of the daemon.

Four loops wait before trying again, each for its own reason: a work-queue key whose reconcile failed
(`daemon.queue`), a container that crash-loops (`daemon.crashloop`), an engine that is not there yet
(`daemon.run`) and an events stream that will not open (`watch.events`). They share this one policy —
exponential from `initial`, capped at `maximum` — so that "how long until the next try" is computed in one
place, tested once, and configured by the same two numbers everywhere. Engine *calls* are retried by the
one retry loop of `executor.errors` (tenacity, with jitter, bounded by time), which is a different thing:
a call that fails inside one step, not a loop that waits for the world to change.

Pure arithmetic (no clock, no sleeping): the callers own their clocks and waits, so tests inject both.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    initial: float
    maximum: float
    factor: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.maximum or self.factor < 1:
            raise ValueError(f"backoff needs 0 < initial <= maximum and factor >= 1, got {self}")

    def delay(self, failures: int) -> float:
        """The wait after `failures` failures in a row (0: after the first one, `initial`)."""
        # The exponent is bounded so a long outage never overflows a float.
        return float(min(self.initial * self.factor ** min(max(failures, 0), 64), self.maximum))
