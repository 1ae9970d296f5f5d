"""The one backoff policy: exponential from `initial`, capped, never overflowing, refusing nonsense."""

from __future__ import annotations

import pytest

from reconciler.backoff import Backoff
from reconciler.daemon.queue import WorkQueue
from reconciler.watch.events import RECONNECT_BACKOFF


def test_doubles_from_the_initial_delay_up_to_the_cap() -> None:
    policy = Backoff(0.5, 10.0)
    assert [policy.delay(n) for n in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_a_very_long_outage_stays_at_the_cap() -> None:
    assert Backoff(0.2, 5.0).delay(10_000) == 5.0


@pytest.mark.parametrize(("initial", "maximum", "factor"), [(0, 1, 2), (2, 1, 2), (1, 2, 0.5)])
def test_nonsense_is_refused(initial: float, maximum: float, factor: float) -> None:
    with pytest.raises(ValueError, match="backoff needs"):
        Backoff(initial, maximum, factor)


def test_the_queue_and_the_events_stream_use_it() -> None:
    queue: WorkQueue[str] = WorkQueue(base_delay=0.5, max_delay=3.0, clock=lambda: 0.0)
    assert [queue.retry("k") for _ in range(4)] == [0.5, 1.0, 2.0, 3.0]
    assert RECONNECT_BACKOFF.delay(0) == 0.2
    assert RECONNECT_BACKOFF.delay(100) == 5.0
