"""The work queue: de-duplicated keys, per-key exponential backoff, a global rate limit.

Modelled on controller-runtime's workqueue. A key is a name of something to look at (a container, or
the all-key); adding a key that is already waiting does nothing, and adding a key that is being processed marks it
dirty so it is processed once more afterwards — never twice at once. Different keys, the all-key included, may
run side by side: which of them may not (their plans touch a common resource) is decided by the controller's
resource locks, which know what each plan touches. Failures back off per key
(`base · 2^n`, capped); `forget` resets that after a success. A token bucket caps how many keys per second
are handed out, so an event storm cannot turn into an engine storm. Time is injectable for tests.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from reconciler.backoff import Backoff

K = TypeVar("K", bound=Hashable)  # the key type (the daemon's typed keys; anything hashable in tests)


class WorkQueue(Generic[K]):
    def __init__(
        self,
        *,
        rate: float = 20.0,
        burst: int = 50,
        base_delay: float = 0.5,
        max_delay: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.backoff = Backoff(min(base_delay, max_delay), max_delay)  # a cap below the base caps it
        self.clock = clock
        self._cond = threading.Condition()
        self._queue: deque[K] = deque()
        self._queued: set[K] = set()
        self._processing: set[K] = set()
        self._dirty: set[K] = set()
        self._delayed: list[tuple[float, int, K]] = []
        self._seq = 0
        self._failures: dict[K, int] = {}
        self._tokens = float(burst)
        self._last_refill = clock()
        self._closed = False

    # --- adding --------------------------------------------------------------------------------------

    def add(self, key: K) -> None:
        with self._cond:
            if self._closed:
                return
            if key in self._processing:
                self._dirty.add(key)
            elif key not in self._queued:
                self._queued.add(key)
                self._queue.append(key)
            self._cond.notify()

    def collapse(self, matches: Callable[[K], bool], into: K, *, above: int) -> bool:
        """When more than `above` waiting keys match, replace them with `into` — a key whose work covers
        theirs (the controller's look at everything, for a burst of container keys). Delayed keys keep
        their time; keys being processed keep their dirty mark. True if it collapsed."""
        with self._cond:
            waiting = [k for k in self._queue if matches(k)]
            if len(waiting) <= above:
                return False
            gone = set(waiting)
            self._queue = deque(k for k in self._queue if k not in gone)
            self._queued -= gone
        self.add(into)
        return True

    def add_after(self, key: K, delay: float) -> None:
        if delay <= 0:
            self.add(key)
            return
        with self._cond:
            if self._closed:
                return
            self._seq += 1
            heapq.heappush(self._delayed, (self.clock() + delay, self._seq, key))
            self._cond.notify()

    def retry(self, key: K) -> float:
        """Schedule a failed key again after its backoff; returns the delay."""
        with self._cond:
            failures = self._failures.get(key, 0)
            self._failures[key] = failures + 1
        delay = self.backoff.delay(failures)
        self.add_after(key, delay)
        return delay

    def forget(self, key: K) -> None:
        with self._cond:
            self._failures.pop(key, None)

    def failures(self, key: K) -> int:
        with self._cond:
            return self._failures.get(key, 0)

    # --- taking --------------------------------------------------------------------------------------

    def get(self, timeout: float | None = None) -> K | None:
        """The next key to process (marked as processing), or None on timeout or shutdown."""
        deadline = None if timeout is None else self.clock() + timeout
        with self._cond:
            while True:
                if self._closed:
                    return None
                self._promote_due()
                key = self._next_eligible()
                if key is not None and self._take_token():
                    self._queue.remove(key)
                    self._queued.discard(key)
                    self._processing.add(key)
                    return key
                # Sleep until something can change: a token for a waiting key, a delayed key coming due, the
                # caller's deadline; an `add` or `shutdown` wakes us sooner. Idle, nothing at all: no polling.
                waits = [self._until_token()] if key is not None else []
                if self._delayed:
                    waits.append(max(0.0, self._delayed[0][0] - self.clock()))
                if deadline is not None:
                    remaining = deadline - self.clock()
                    if remaining <= 0:
                        return None
                    waits.append(remaining)
                self._cond.wait(min(waits) if waits else None)

    def _next_eligible(self) -> K | None:
        return self._queue[0] if self._queue else None

    def done(self, key: K) -> None:
        with self._cond:
            self._processing.discard(key)
            if key in self._dirty:
                self._dirty.discard(key)
                if key not in self._queued:
                    self._queued.add(key)
                    self._queue.append(key)
                self._cond.notify()

    def _promote_due(self) -> None:
        now = self.clock()
        while self._delayed and self._delayed[0][0] <= now:
            _due, _seq, key = heapq.heappop(self._delayed)
            if key in self._processing:
                self._dirty.add(key)
            elif key not in self._queued:
                self._queued.add(key)
                self._queue.append(key)

    def _until_token(self) -> float:
        """Seconds until the bucket holds a whole token again."""
        return max(0.0, (1.0 - self._tokens) / self.rate) if self.rate > 0 else 0.05

    def _take_token(self) -> bool:
        now = self.clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last_refill) * self.rate)
        self._last_refill = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False

    # --- state ---------------------------------------------------------------------------------------

    @property
    def depth(self) -> int:
        with self._cond:
            return len(self._queue) + len(self._delayed)

    @property
    def busy(self) -> bool:
        with self._cond:
            return bool(self._queue or self._processing)

    def shutdown(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
