"""The crash-loop policy with an injected clock: growing delays, a cap, resets, and requested stops."""

from __future__ import annotations

from datetime import UTC, datetime

from reconciler.daemon.crashloop import CrashLoops
from reconciler.model import combine_maps, load_map_text
from reconciler.plan.desired import desired_state
from reconciler.plan.observed import ObservedState
from reconciler.plan.planner import Plan, plan_update
from reconciler.testing import synthesize

T0 = 1_900_000_000.0


def _stamp(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def _died(ran: float, finished: float) -> tuple[Plan, ObservedState]:
    desired = desired_state(combine_maps([load_map_text("name: m\napp: {image: x}\n", "/tmp/m.yaml")]))
    snapshot = synthesize(desired)
    snapshot.container("m.app")["State"].update(
        Running=False, Status="exited", ExitCode=1, StartedAt=_stamp(finished - ran), FinishedAt=_stamp(finished)
    )
    observed = snapshot.observed()
    return plan_update(desired, observed), observed


def test_quick_deaths_wait_twice_as_long_each_time_up_to_the_cap() -> None:
    now = [T0]
    loops = CrashLoops(threshold=10, backoff_max=5, clock=lambda: now[0])
    waits = []
    for crash in range(5):
        finished = T0 + 100 * crash
        now[0] = finished + 0.5
        plan, observed = _died(ran=1, finished=finished)
        held, wait = loops.hold(plan, observed)
        assert not held.actions
        waits.append(round(wait["m.app"], 1))
    assert waits == [0.5, 1.5, 3.5, 4.5, 4.5]  # 1, 2, 4, then the 5 s cap, each less the 0.5 s gone by


def test_a_long_run_resets_the_count_and_a_late_look_restarts_at_once() -> None:
    now = [T0 + 0.1]
    loops = CrashLoops(threshold=10, backoff_max=300, clock=lambda: now[0])
    plan, observed = _died(ran=1, finished=T0)
    assert loops.hold(plan, observed)[1]
    now[0] = T0 + 1000
    plan, observed = _died(ran=60, finished=T0 + 999)
    held, waits = loops.hold(plan, observed)
    assert held.actions
    assert not waits
    assert "m.app" not in loops.crashes


def test_a_requested_stop_is_not_a_crash() -> None:
    now = [T0 - 0.5]
    loops = CrashLoops(threshold=10, backoff_max=300, clock=lambda: now[0])
    loops.stop_requested("m.app")
    now[0] = T0 + 0.1
    plan, observed = _died(ran=1, finished=T0)
    held, waits = loops.hold(plan, observed)
    assert held.actions
    assert not waits
