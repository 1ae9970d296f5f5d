"""The daemon's pure logic without an engine: the work queue, and which keys engine events produce."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from reconciler.daemon.controller import Controller
from reconciler.daemon.queue import ALL, WorkQueue
from reconciler.daemon.settings import Settings
from reconciler.model import combine_maps, load_map_text
from reconciler.plan.desired import desired_state
from reconciler.watch.maps import MapSource


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_keys_are_deduplicated_and_never_processed_twice_at_once() -> None:
    queue = WorkQueue(clock=Clock())
    queue.add("a")
    queue.add("a")
    queue.add("b")
    assert queue.depth == 2
    assert queue.get(timeout=0) == "a"
    queue.add("a")  # while "a" is being processed: marked dirty, not handed out again
    assert queue.get(timeout=0) == "b"
    assert queue.get(timeout=0) is None
    queue.done("a")  # …and only now queued once more
    assert queue.get(timeout=0) == "a"


def test_failures_back_off_exponentially_and_forget_resets() -> None:
    clock = Clock()
    queue = WorkQueue(base_delay=0.5, max_delay=4, clock=clock)
    assert [queue.retry("k") for _ in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    queue.forget("k")
    assert queue.retry("k") == 0.5


def test_delayed_keys_come_due() -> None:
    clock = Clock()
    queue = WorkQueue(clock=clock)
    queue.add_after("k", 5)
    assert queue.get(timeout=0) is None
    clock.now += 5
    assert queue.get(timeout=0) == "k"


def test_rate_limit_caps_keys_per_second() -> None:
    clock = Clock()
    queue = WorkQueue(rate=2, burst=2, clock=clock)
    for key in "abcd":
        queue.add(key)
    assert [queue.get(timeout=0) for _ in range(3)] == ["a", "b", None]
    clock.now += 0.5  # one more token
    assert queue.get(timeout=0) == "c"


def test_shutdown_wakes_waiters() -> None:
    queue = WorkQueue()
    got: list[str | None] = []
    waiter = threading.Thread(target=lambda: got.append(queue.get()))
    waiter.start()
    queue.shutdown()
    waiter.join(5)
    assert got == [None]


class _Engine:
    request_count = 0


def controller(text: str) -> Controller:
    maps = combine_maps([load_map_text(text, "m.yaml")])
    ctl = Controller(Settings(paths=[]), _Engine(), MapSource([]))  # type: ignore[arg-type]
    ctl.maps = maps
    ctl.desired = desired_state(maps)
    return ctl


def event(kind: str, action: str, actor: str, **attributes: Any) -> dict[str, Any]:
    return {"Type": kind, "Action": action, "Actor": {"ID": actor, "Attributes": attributes}}


def test_event_keys() -> None:
    ctl = controller("name: m\napp: {image: '127.0.0.1:5000/x/app:live'}\nweb: {image: nginx}\n")
    # Recorded shapes (docker.io 26.1.5): a pull names the reference in the actor's ID only.
    pull = event("image", "pull", "127.0.0.1:5000/x/app:live", name="127.0.0.1:5000/x/app", g="2")
    assert ctl.keys_for(pull) == [ALL]
    tag = event("image", "tag", "sha256:9f10", name="nginx:latest")
    assert ctl.keys_for(tag) == [ALL]
    assert ctl.keys_for(event("image", "tag", "sha256:1", name="other:1")) == []
    assert ctl.keys_for(event("container", "die", "c1", name="m.app", exitCode="1")) == ["m.app"]
    assert ctl.keys_for(event("container", "die", "c2", name="someone-else")) == []
    assert ctl.keys_for(event("container", "die", "c3", name="m.app..next")) == []  # our own replacement
    assert ctl.keys_for(event("container", "exec_start: sh", "c1", name="m.app")) == []
    assert ctl.keys_for(event("container", "health_status: healthy", "c1", name="m.app")) == []
    assert ctl.keys_for(event("container", "die", "c4", name="m.app", **{"io.reconciler.self": "true"})) == []


def test_a_requested_stop_is_not_a_crash() -> None:
    ctl = controller("name: m\napp: {image: nginx}\n")
    ctl.keys_for(event("container", "kill", "c1", name="m.app", signal="9"))
    assert "m.app" in ctl.stop_requests


def test_all_runs_alone() -> None:
    """`ALL` overlaps every container key: never at the same time as another key."""
    queue = WorkQueue(clock=Clock())
    queue.add("a")
    queue.add(ALL)
    queue.add("b")
    assert queue.get(timeout=0) == "a"
    assert queue.get(timeout=0) == "b"  # ALL waits while "a" is processed; "b" may go
    queue.done("a")
    assert queue.get(timeout=0) is None  # "b" still runs
    queue.done("b")
    assert queue.get(timeout=0) == ALL
    queue.add("c")
    assert queue.get(timeout=0) is None  # nothing else while ALL runs
    queue.done(ALL)
    assert queue.get(timeout=0) == "c"


def test_rename_and_network_events() -> None:
    ctl = controller("name: m\napp: {image: nginx}\n")
    renamed = event("container", "rename", "c1", name="elsewhere", oldName="/m.app")
    assert ctl.keys_for(renamed) == ["m.app"]  # the map's name went missing: bring it back
    ctl.cache._containers = [{"Id": "c1", "Names": ["/m.app"]}]
    assert ctl.keys_for(event("network", "disconnect", "n1", container="c1", name="bridge")) == ["m.app"]
    assert ctl.keys_for(event("network", "disconnect", "n1", container="zz", name="bridge")) == []


def test_crash_loop_backoff_holds_restarts_and_never_overflows() -> None:
    from reconciler.plan.planner import plan_update
    from tests.planfakes import synthesize

    ctl = controller("name: m\napp: {image: nginx}\n")
    snapshot = synthesize(ctl.desired)
    state = snapshot.container("m.app")["State"]
    now = datetime.now(UTC)
    state.update(
        Running=False,
        Status="exited",
        ExitCode=1,
        StartedAt=(now - timedelta(seconds=3)).isoformat().replace("+00:00", "Z"),
        FinishedAt=(now - timedelta(seconds=1)).isoformat().replace("+00:00", "Z"),
    )
    observed = snapshot.observed()
    plan = plan_update(ctl.desired, observed)
    assert [a.op.value for a in plan.actions] == ["start"]
    # The first quick death: restarted after 1 s (held now: it died 1 s ago at most).
    ctl.crashes["m.app"] = (5000, "an earlier crash")  # thousands of crashes: 2**5000 would overflow a float
    held = ctl._hold_crash_loops(plan, observed, "m.app")
    assert not held.actions  # held back, with the capped delay
    assert ctl.crashes["m.app"][0] == 5001
    assert ctl.queue.depth == 1  # and scheduled again
