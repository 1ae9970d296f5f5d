"""The daemon's pure logic without an engine: the work queue, and which keys engine events produce."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from structlog.testing import capture_logs

from reconciler.daemon.alerts import Alerts
from reconciler.daemon.controller import LOCK_RETRY, Controller, Result
from reconciler.daemon.holds import HoldStore, state_dir
from reconciler.daemon.keys import ALL, AllKey, ContainerKey
from reconciler.daemon.locks import ResourceLocks
from reconciler.daemon.progress import Progress
from reconciler.daemon.queue import WorkQueue
from reconciler.daemon.settings import Settings
from reconciler.executor.engine import CountingEngine
from reconciler.model import combine_maps, load_map_text
from reconciler.plan.desired import desired_state
from reconciler.testing import EngineSnapshot, FakeEngine, state_json, synthesize
from reconciler.watch.maps import MapSource


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_keys_are_deduplicated_and_never_processed_twice_at_once() -> None:
    queue: WorkQueue[str] = WorkQueue(clock=Clock())
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
    queue: WorkQueue[str] = WorkQueue(base_delay=0.5, max_delay=4, clock=clock)
    assert [queue.retry("k") for _ in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    queue.forget("k")
    assert queue.retry("k") == 0.5


def test_delayed_keys_come_due() -> None:
    clock = Clock()
    queue: WorkQueue[str] = WorkQueue(clock=clock)
    queue.add_after("k", 5)
    assert queue.get(timeout=0) is None
    clock.now += 5
    assert queue.get(timeout=0) == "k"


def test_rate_limit_caps_keys_per_second() -> None:
    clock = Clock()
    queue: WorkQueue[str] = WorkQueue(rate=2, burst=2, clock=clock)
    for key in "abcd":
        queue.add(key)
    assert [queue.get(timeout=0) for _ in range(3)] == ["a", "b", None]
    clock.now += 0.5  # one more token
    assert queue.get(timeout=0) == "c"


def test_shutdown_wakes_waiters() -> None:
    queue: WorkQueue[str] = WorkQueue()
    got: list[str | None] = []
    waiter = threading.Thread(target=lambda: got.append(queue.get()))
    waiter.start()
    queue.shutdown()
    waiter.join(5)
    assert got == [None]


def controller(
    text: str, engine: CountingEngine | None = None, *, alerts: Alerts | None = None, **settings: Any
) -> Controller:
    """A controller over `engine` (default: an empty recording fake, for tests that never reach the engine)."""
    maps = combine_maps([load_map_text(text, "m.yaml")])
    settings.setdefault("state_dir", "off")
    ctl = Controller(Settings(paths=[], **settings), engine or FakeEngine(), MapSource([]), alerts=alerts)
    ctl.maps = maps
    ctl.desired = desired_state(maps)
    return ctl


def event(kind: str, action: str, actor: str, **attributes: Any) -> dict[str, Any]:
    return {"Type": kind, "Action": action, "Actor": {"ID": actor, "Attributes": attributes}}


def test_event_keys() -> None:
    ctl = controller(
        "name: m\napp: {image: '127.0.0.1:5000/x/app:live'}\nweb: {image: nginx}\nproxy: {image: 'nginx:latest'}\n"
    )
    # Recorded shapes (docker.io 26.1.5): a pull names the reference in the actor's ID only. A moved tag
    # concerns the containers that run it (their plans take dependents along), not everything.
    pull = event("image", "pull", "127.0.0.1:5000/x/app:live", name="127.0.0.1:5000/x/app", g="2")
    assert ctl.keys_for(pull) == [ContainerKey("m.app")]
    tag = event("image", "tag", "sha256:9f10", name="nginx:latest")
    assert ctl.keys_for(tag) == [ContainerKey("m.proxy"), ContainerKey("m.web")]
    assert ctl.keys_for(event("image", "untag", "sha256:9f10", name="nginx:latest")) == ctl.keys_for(tag)
    assert ctl.keys_for(event("image", "tag", "sha256:1", name="other:1")) == []
    assert ctl.keys_for(event("image", "delete", "sha256:1", name="sha256:1")) == [ALL]
    assert ctl.keys_for(event("container", "die", "c1", name="m.app", exitCode="1")) == [ContainerKey("m.app")]
    assert ctl.keys_for(event("container", "die", "c2", name="someone-else")) == []
    assert ctl.keys_for(event("container", "die", "c3", name="m.app..next")) == []  # our own replacement
    assert ctl.keys_for(event("container", "exec_start: sh", "c1", name="m.app")) == []
    assert ctl.keys_for(event("container", "health_status: healthy", "c1", name="m.app")) == []
    assert ctl.keys_for(event("container", "die", "c4", name="m.app", **{"io.reconciler.self": "true"})) == []


def test_a_requested_stop_is_not_a_crash() -> None:
    ctl = controller("name: m\napp: {image: nginx}\n")
    ctl.on_event(event("container", "kill", "c1", name="m.app", signal="9"))  # keys_for itself is pure
    assert "m.app" in ctl.crash_loops.stop_requests


def test_all_runs_beside_other_keys() -> None:
    """The queue no longer runs `ALL` alone: overlapping work is serialised by the controller's resource locks
    (what a plan touches), so a full reconcile never holds healing of an unrelated container back."""
    queue: WorkQueue[str | AllKey] = WorkQueue(clock=Clock())
    queue.add("a")
    queue.add(ALL)
    queue.add("b")
    assert [queue.get(timeout=0) for _ in range(3)] == ["a", ALL, "b"]
    queue.add(ALL)  # but still never twice at once
    assert queue.get(timeout=0) is None
    queue.done(ALL)
    assert queue.get(timeout=0) == ALL


def test_rename_and_network_events() -> None:
    ctl = controller("name: m\napp: {image: nginx}\n")
    renamed = event("container", "rename", "c1", name="elsewhere", oldName="/m.app")
    assert ctl.keys_for(renamed) == [ContainerKey("m.app")]  # the map's name went missing: bring it back
    ctl.cache._containers = [{"Id": "c1", "Names": ["/m.app"]}]
    assert ctl.keys_for(event("network", "disconnect", "n1", container="c1", name="bridge")) == [ContainerKey("m.app")]
    assert ctl.keys_for(event("network", "disconnect", "n1", container="zz", name="bridge")) == []


def test_crash_loop_backoff_holds_restarts_and_never_overflows() -> None:
    from reconciler.plan.planner import plan_update
    from reconciler.testing import synthesize

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
    ctl.crash_loops.crashes["m.app"] = (5000, "an earlier crash")  # 2**5000 would overflow a float
    held = ctl._planner(ALL)(ctl.desired, observed)
    assert not held.actions  # held back, with the capped delay
    assert ctl.crash_loops.crashes["m.app"][0] == 5001
    assert ctl.queue.depth == 1  # and scheduled again


# --- resource locks, progress and holds, against a fake of our own engine port ------------------------


class SlowStarts(FakeEngine):
    """The shipped fake (`reconciler.testing.FakeEngine`) over a synthesized snapshot: reads answer from it,
    `start` and `stop` change it. `slow` names block in `start` until `release` is set, like a long recreate
    or health gate."""

    def __init__(self, snapshot: EngineSnapshot, slow: set[str] | None = None) -> None:
        super().__init__(snapshot)
        self.slow = slow or set()
        self.release = threading.Event()
        self.entered = threading.Event()
        self.started: list[str] = []

    def start(self, ident: str) -> None:
        name = self._name(ident)
        if name in self.slow:
            self.entered.set()
            assert self.release.wait(10)
        super().start(ident)
        with self.lock:
            self.started.append(name)


def stopped(snapshot: EngineSnapshot, *names: str) -> EngineSnapshot:
    for name in names:
        snapshot.container(name)["State"] = state_json("exited", 0)
    return snapshot


TWO = "name: m\na: {image: x}\nb: {image: x}\n"


def fake_controller(text: str, stopped_names: tuple[str, ...], slow: set[str]) -> tuple[Controller, SlowStarts]:
    ctl = controller(text)
    engine = SlowStarts(stopped(synthesize(ctl.desired), *stopped_names), slow)
    real = controller(text, engine)
    return real, engine


def test_resource_locks_are_all_or_nothing() -> None:
    locks = ResourceLocks()
    assert locks.try_acquire("k1", {"x", "y"}) == frozenset({"x", "y"})
    assert locks.try_acquire("k2", {"y", "z"}) is None  # y is k1's: nothing taken
    assert locks.held_by("k2") == frozenset()
    assert locks.holder_of({"z", "y"}) == "k1"
    locks.release("k1", {"y"})
    assert locks.try_acquire("k2", {"y", "z"}) == frozenset({"y", "z"})
    locks.release_all("k1")
    assert locks.held_by("k1") == frozenset()


def test_an_unrelated_key_runs_while_a_slow_one_is_in_flight_and_an_overlapping_one_waits() -> None:
    ctl, engine = fake_controller(TWO, ("m.a", "m.b"), slow={"m.a"})
    results: dict[str, Any] = {}
    slow = threading.Thread(target=lambda: results.setdefault("a", ctl.reconcile(ContainerKey("m.a"))))
    slow.start()
    assert engine.entered.wait(5)  # m.a's start is in flight (and m.a is locked)
    try:
        assert ctl.reconcile(ContainerKey("m.b")) == Result()  # not held back by m.a's slow action
        assert "m.b" in engine.started
        # A full reconcile would touch m.a too: it does not wait (no worker blocked), it comes back shortly.
        assert ctl.reconcile(ALL) == Result(requeue_after=LOCK_RETRY)
        assert ctl.locks.held_by(ALL) == frozenset()
    finally:
        engine.release.set()
        slow.join(10)
    assert results["a"] == Result()
    assert engine.started.count("m.a") == 1  # started once, never twice


def test_a_full_reconcile_frees_each_resource_once_its_action_is_over() -> None:
    ctl, engine = fake_controller(TWO, ("m.a", "m.b"), slow={"m.a"})
    runner = threading.Thread(target=ctl.reconcile, args=(ALL,))
    runner.start()
    try:
        assert engine.entered.wait(5)
        wait_until(lambda: "m.b" in engine.started)
        # m.b is done: free for healing, although ALL is still busy with m.a.
        wait_until(lambda: ctl.locks.held_by(ALL) == {"container:m.a"})
        engine.snapshot.container("m.b")["State"] = state_json("exited", 137)  # killed again meanwhile
        ctl.cache.relist()
        assert ctl.reconcile(ContainerKey("m.b")) == Result()
        assert engine.started.count("m.b") == 2
    finally:
        engine.release.set()
        runner.join(10)


def wait_until(condition: Any, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met"
        time.sleep(0.01)


def test_events_of_our_own_actions_do_not_requeue_a_key_past_its_backoff() -> None:
    ctl = controller(TWO)
    ctl.locks.try_acquire(ContainerKey("m.a"), {"container:m.a"})  # m.a's reconcile is recreating m.a
    for action in ("stop", "die", "start", "destroy", "rename"):
        ctl.on_event(event("container", action, "c1", name="m.a", oldName="/m.a..next"))
    assert ctl.queue.depth == 0  # noted, not queued
    ctl.on_event(event("container", "die", "c2", name="m.b"))  # another container: queued as ever
    assert ctl.queue.depth == 1
    ctl.locks.release_all(ContainerKey("m.a"))
    ctl._follow_up(ContainerKey("m.a"), Result(failed=True))
    assert ctl.queue.depth == 2  # only the delayed retry (its backoff), not an immediate second attempt
    assert ctl.queue.get(timeout=0) == ContainerKey("m.b")
    assert ctl.queue.get(timeout=0) is None


def test_after_a_successful_reconcile_suppressed_events_are_looked_at_once() -> None:
    ctl = controller(TWO)
    ctl.locks.try_acquire(ContainerKey("m.a"), {"container:m.a"})
    ctl.on_event(event("container", "die", "c1", name="m.a"))
    ctl.locks.release_all(ContainerKey("m.a"))
    ctl._follow_up(ContainerKey("m.a"), Result())
    assert ctl.queue.get(timeout=0) == ContainerKey("m.a")
    assert ctl.queue.get(timeout=0) is None


def test_after_a_look_at_everything_its_suppressed_events_are_one_more_look_at_everything() -> None:
    """A cold start of N containers under ALL queued N container keys, each planning the whole desired
    state again (quadratic at 500): one more look at everything instead."""
    ctl = controller(TWO)
    ctl.locks.try_acquire(ALL, {"container:m.a", "container:m.b"})
    ctl.on_event(event("container", "start", "c1", name="m.a"))
    ctl.on_event(event("container", "start", "c2", name="m.b"))
    ctl.locks.release_all(ALL)
    ctl._follow_up(ALL, Result())
    assert ctl.queue.get(timeout=0) == ALL
    assert ctl.queue.get(timeout=0) is None


def test_watchdog_tells_busy_from_stuck() -> None:
    clock = Clock()
    progress = Progress(clock)
    progress.begin("k")
    clock.now += 100
    assert progress.stalled_for() == 100  # a reconcile without any action for 100 s
    progress.action_started("k", "container:m.a", budget=150)  # e.g. a 90 s stop timeout + a 60 s gate
    clock.now += 200
    assert progress.stalled_for() == 50  # allowed 150 s beyond the last progress mark
    progress.action_finished("k", "container:m.a")
    assert progress.stalled_for() == 0
    progress.end("k")
    clock.now += 1000
    assert progress.stalled_for() == 0  # idle is not stuck


HEALTHY = "name: m\napp: {image: x, healthcheck: {test: [CMD, 'true']}, create_options: {environment: {V: '2'}}}\n"


def test_a_failed_health_gate_holds_that_spec_whatever_drifted() -> None:
    from reconciler.plan.planner import HeldBack, PlanOptions, plan_update

    ctl = controller(HEALTHY)
    old = controller(HEALTHY.replace("'2'", "'1'"))
    snapshot = synthesize(old.desired)  # the engine runs the old spec (V=1); the map wants V=2
    observed = snapshot.observed()
    spec = ctl.desired.containers["m.app"]
    assert [a.op.value for a in plan_update(ctl.desired, observed).actions] == ["recreate"]
    image_id = observed.images["x:latest"].id
    hold = HeldBack("m.app", spec.spec_hash, image_id, "its replacement became unhealthy")
    plan = plan_update(ctl.desired, observed, PlanOptions(held=frozenset({hold})))
    assert not plan.actions
    assert [n.message for n in plan.notes] == ["held back: its replacement became unhealthy"]
    assert not plan.in_sync  # no action, but a change the map asks for is not made: scripts must see it
    assert [n.held for n in plan.notes] == [True]
    # Killed meanwhile: still started (healing goes on), only the replacement is held.
    snapshot.container("m.app")["State"] = state_json("exited", 137)
    plan = plan_update(ctl.desired, snapshot.observed(), PlanOptions(held=frozenset({hold})))
    assert [a.op.value for a in plan.actions] == ["start"]
    # Another spec (the map changed) or another image id (the tag moved): tried again.
    moved = HeldBack("m.app", spec.spec_hash, "sha256:" + "9" * 64)
    assert [a.op.value for a in plan_update(ctl.desired, observed, PlanOptions(held=frozenset({moved}))).actions] == [
        "recreate"
    ]
    edited = HeldBack("m.app", "another-spec", image_id)
    assert plan_update(ctl.desired, observed, PlanOptions(held=frozenset({edited}))).actions


def test_a_rollback_is_held_and_persisted_and_not_logged_as_an_image_update(tmp_path: Path) -> None:
    from reconciler.executor.apply import ActionResult, Outcome
    from reconciler.plan.planner import plan_update

    ctl = controller(HEALTHY, state_dir=str(tmp_path))
    old = controller(HEALTHY.replace("'2'", "'1'"))
    observed = synthesize(old.desired).observed()
    action = plan_update(ctl.desired, observed).actions[0]
    image_id = observed.images["x:latest"].id
    rolled = ActionResult(action, Outcome.FAILED, "the replacement became unhealthy", 1.0, ("x:latest", image_id))
    with capture_logs() as logs:
        ctl.outcomes.rolled_back(ctl.desired, rolled)
    assert [e["event"] for e in logs] == ["recreate rolled back; held back until the map changes its spec"]
    assert ctl.holds.rejected_images == frozenset()  # no image changed: no image is rejected
    (hold,) = ctl.holds.holds
    assert (hold.container, hold.spec_hash, hold.image_id) == (
        "m.app",
        ctl.desired.containers["m.app"].spec_hash,
        image_id,
    )
    # A restarted daemon reads it back.
    again = controller(HEALTHY, state_dir=str(tmp_path))
    assert again.holds.holds == ctl.holds.holds
    # Once the map changes the spec, the hold goes.
    edited = controller(HEALTHY.replace("'2'", "'3'"), state_dir=str(tmp_path))
    edited.holds.keep_only([("m.app", "changed", image_id)])
    assert edited.holds.holds == frozenset()
    assert json.loads((tmp_path / "held.json").read_text())["holds"] == []


def test_a_rollback_caused_by_our_own_shutdown_is_not_held() -> None:
    from reconciler.executor.apply import ActionResult, Outcome
    from reconciler.plan.planner import plan_update

    ctl = controller(HEALTHY)
    observed = synthesize(controller(HEALTHY.replace("'2'", "'1'")).desired).observed()
    action = plan_update(ctl.desired, observed).actions[0]
    ctl.stopping.set()
    ctl.outcomes.rolled_back(
        ctl.desired, ActionResult(action, Outcome.FAILED, "interrupted", 1.0, ("x:latest", "sha256:1"))
    )
    assert ctl.holds.holds == frozenset()


def test_an_unwritable_state_dir_keeps_holds_in_memory(tmp_path: Path) -> None:
    from reconciler.plan.planner import HeldBack

    blocker = tmp_path / "file"
    blocker.write_text("")
    store = HoldStore(blocker / "state")  # its parent is a file: cannot be created
    with capture_logs() as logs:
        store.hold(HeldBack("m.app", "h", "i"))
        store.hold(HeldBack("m.other", "h", "i"))
    assert len(store.holds) == 2
    assert [e["log_level"] for e in logs] == ["warning"]  # said once


def test_state_dir_setting_then_systemd_then_default(monkeypatch: Any) -> None:
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    assert state_dir(None) == Path("/var/lib/reconciler")
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/private/reconciler:/other")
    assert state_dir(None) == Path("/var/lib/private/reconciler")
    assert state_dir("/srv/state") == Path("/srv/state")


def test_the_unit_gives_the_daemon_its_stop_timeout_plus_a_margin_and_a_state_directory() -> None:
    unit = (Path(__file__).resolve().parents[2] / "deploy" / "reconciler.service").read_text()
    values = dict(line.split("=", 1) for line in unit.splitlines() if "=" in line and not line.startswith("#"))
    stop_sec = float(values["TimeoutStopSec"].removesuffix("s"))
    margin = stop_sec - Settings(paths=[]).stop_timeout
    assert 10 <= margin <= 30
    assert values["StateDirectory"] == "reconciler"


def test_the_daemons_engine_retries_transient_errors_for_a_bounded_time(tmp_path: Path) -> None:
    import docker

    from reconciler.daemon.run import ENGINE_ATTEMPTS
    from reconciler.executor.engine import DockerEngine
    from reconciler.executor.errors import RetryableEngineError

    # The daemon's settings on an engine that is not there (a fixed API version: no probe at construction).
    engine = DockerEngine.from_api(docker.APIClient(f"unix://{tmp_path}/no-engine.sock", version="1.45"))
    engine.attempts, engine.retry_for = ENGINE_ATTEMPTS, 1.0
    started = time.monotonic()
    try:
        engine.ping()
    except RetryableEngineError:
        pass
    else:
        raise AssertionError("no engine there")
    took = time.monotonic() - started
    assert 1.0 <= took < 8  # retried for about retry_for seconds (the backoff's last wait included), then gave up
    assert 3 <= engine.request_count < ENGINE_ATTEMPTS


def test_a_rolled_back_image_is_not_deployed_again_by_a_cascade() -> None:
    """issue 10: after an image update of `app` was rolled back, a recreate of its link target `db` cascades —
    but must not move `app` to the image that failed; the hold turns it into a note."""
    from reconciler.plan.planner import HeldBack, PlanOptions, plan_update

    text = "name: m\ndb: {image: x, create_options: {environment: {V: '2'}}}\napp: {image: x, links: db}\n"
    ctl = controller(text)
    observed = synthesize(controller(text.replace("'2'", "'1'")).desired).observed()
    assert {a.resource.name: a.op.value for a in plan_update(ctl.desired, observed).actions} == {
        "m.db": "recreate",
        "m.app": "recreate",  # the cascade
    }
    spec = ctl.desired.containers["m.app"]
    hold = HeldBack("m.app", spec.spec_hash, observed.images["x:latest"].id, "image update failed its gate")
    plan = plan_update(ctl.desired, observed, PlanOptions(held=frozenset({hold})))
    assert {a.resource.name: a.op.value for a in plan.actions} == {"m.db": "recreate"}
    assert [(n.resource.name, n.message) for n in plan.notes] == [("m.app", "held back: image update failed its gate")]


def test_a_recreate_leased_by_another_reconciler_is_looked_at_again_not_failed() -> None:
    """A person's `apply` holds the lease of m.a's replacement: the daemon leaves it (no error, no backoff)
    and looks again shortly to see how it ended."""
    from reconciler.daemon.controller import LEASE_RECHECK
    from reconciler.executor import lease
    from reconciler.plan import naming

    changed = controller("name: m\na: {image: x, create_options: {environment: {V: '2'}}}\n")
    engine = FakeEngine(synthesize(controller("name: m\na: {image: x}\n").desired))
    engine.create_container(
        naming.replacement_name("m.a"),
        {
            "image": "x:latest",
            "labels": {naming.LABEL_MANAGED: "true", **lease.lease_labels("elsewhere/1/x", time.time() + 600)},
        },
    )
    ctl = controller("name: m\na: {image: x, create_options: {environment: {V: '2'}}}\n", engine)
    assert changed.desired.containers["m.a"].spec_hash == ctl.desired.containers["m.a"].spec_hash
    assert ctl.reconcile(ALL) == Result(requeue_after=LEASE_RECHECK)
    assert not engine.ops("stop", "remove")  # the other reconciler's old container and replacement stay


def test_an_idle_queue_sleeps_instead_of_polling() -> None:
    """An idle daemon must cost nothing: a worker waiting on an empty queue sleeps until its deadline (or an
    `add`), in one wait — it used to wake every 50 ms (80 wake-ups a second for four workers)."""
    queue: WorkQueue[str] = WorkQueue()
    waits: list[float | None] = []
    real_wait = queue._cond.wait

    def counted(timeout: float | None = None) -> bool:
        waits.append(timeout)
        return real_wait(timeout)

    queue._cond.wait = counted  # type: ignore[method-assign]
    assert queue.get(timeout=0.3) is None
    assert len(waits) <= 2, waits  # one wait for the deadline (a spurious wake-up may add one)
    waits.clear()
    threading.Timer(0.1, lambda: queue.add("k")).start()
    assert queue.get() == "k"
    assert waits[0] is None  # no deadline, nothing delayed: it waits for an `add`, not for a tick


def test_a_network_event_forgets_only_the_inspect_of_the_container_it_names() -> None:
    """Every container start on the host connects it to a network: forgetting all inspects on each made a
    daemon beside busy neighbours (or its own cold start) re-inspect every container it keeps, per event."""
    from reconciler.executor.cache import CachedEngine
    from reconciler.testing import synthesize

    ctl = controller(TWO)
    engine = FakeEngine(synthesize(ctl.desired))
    cache = CachedEngine(engine)
    a, b = (engine.container(name)["Id"] for name in ("m.a", "m.b"))
    for ident in (a, b, "m.a", "m.b"):
        cache.inspect_container(ident)
    engine.calls.clear()
    cache.invalidate(event("network", "connect", "n1", container="f" * 64, name="bridge"))  # a neighbour's
    cache.invalidate(event("network", "create", "n2", name="elsewhere"))
    for ident in (a, b, "m.a", "m.b"):
        cache.inspect_container(ident)
    assert engine.ops("inspect_container") == []
    cache.invalidate(event("network", "disconnect", "n1", container=a, name="bridge"))
    cache.inspect_container("m.a")
    cache.inspect_container("m.b")
    assert engine.ops("inspect_container") == [("inspect_container", "m.a")]


def test_a_burst_of_container_events_becomes_one_look_at_everything() -> None:
    """A cold start or a host reboot is an event per container: past a handful of waiting container keys
    they are one ALL (each would observe and plan the whole desired state: quadratic at 500 containers)."""
    names = [f"c{i}" for i in range(12)]
    ctl = controller("name: m\n" + "".join(f"{n}: {{image: x}}\n" for n in names))
    for i, n in enumerate(names[:3]):
        ctl.on_event(event("container", "die", f"id{i}", name=f"m.{n}"))
    assert ctl.queue.depth == 3  # a few: each its own small reconcile
    for i, n in enumerate(names[3:], start=3):
        ctl.on_event(event("container", "die", f"id{i}", name=f"m.{n}"))
    taken = [ctl.queue.get(timeout=0) for _ in range(3)]
    assert taken[0] == ALL
    assert ALL not in taken[1:]
    assert all(k is None or isinstance(k, ContainerKey) for k in taken[1:])
    assert ctl.queue.depth <= 1


def test_collapsing_keeps_delayed_keys_and_others() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add_after("c:late", 60)
    queue.add("prune:m")
    for i in range(5):
        queue.add(f"c:{i}")
    assert queue.collapse(lambda k: k.startswith("c:"), "*", above=4)
    assert [queue.get(timeout=0), queue.get(timeout=0), queue.get(timeout=0)] == ["prune:m", "*", None]
    assert queue.depth == 1  # the delayed key keeps its time
    assert not queue.collapse(lambda k: k.startswith("c:"), "*", above=4)


def test_the_idle_loop_sleeps_until_a_pause_runs_out_and_otherwise_needs_no_timer(tmp_path: Path) -> None:
    """The daemon's loop wakes for deadlines only: the nearest end of a pause in force; none without one
    (a pause made or ended is seen by the watcher, see the next test)."""
    ctl = controller(TWO, state_dir=str(tmp_path))
    assert ctl.due_in() is None  # nothing paused, no watchdog, the engine up: no deadline at all
    pauses = ctl.guards.pauses
    now = time.time()
    pauses.pause({"m.a": "", "m.b": ""}, now + 30, "maintenance")
    assert 28 < (ctl.due_in() or 0) <= 30
    pauses.resume(["m.a"])
    pauses.pause({"m.a": ""}, now + 4, "a quick look")
    assert 2 < (ctl.due_in() or 0) <= 4  # the nearest end
    pauses.resume()
    pauses.pause({"m.a": ""}, None, "until resumed")
    assert ctl.due_in() is None  # until `resume`: the watcher sees that


def test_the_idle_loop_wakes_for_the_watchdog_and_the_engine_lost_alert() -> None:
    ctl = controller(TWO)
    clock = Clock()
    ctl.liveness.clock = clock
    ctl.liveness.notifier.watchdog_interval = 30.0
    ctl.liveness._last_watchdog = clock.now
    assert ctl.due_in() == 10.0  # a ping every third of WatchdogSec
    ctl.liveness.lost()
    clock.now += 8
    assert ctl.due_in() == 2.0
    ctl.liveness.notifier.watchdog_interval = None
    assert ctl.due_in() == ctl.settings.engine_grace - 8  # then the engine-lost alert is due
    clock.now += ctl.settings.engine_grace
    ctl.heartbeat()  # the alert is told, once
    assert ctl.due_in() is None  # a deadline past is none: an engine down for hours must not make the loop spin
    ctl.liveness.back()
    assert ctl.due_in() is None


def test_a_watchdog_ping_withheld_while_stuck_is_looked_at_again_a_ping_later_not_at_once() -> None:
    ctl = controller(TWO)
    clock = Clock()
    ctl.liveness.clock = clock
    ctl.progress.clock = clock
    ctl.liveness.notifier.watchdog_interval = 30.0
    ctl.progress.begin("k")  # a reconcile that makes no progress
    clock.now += ctl.settings.stuck_after + 1
    ctl.heartbeat()  # stuck: systemd's watchdog is not pinged, so it restarts the daemon
    assert ctl.due_in() == 10.0  # not 0: the loop would spin until systemd gave up on it


def test_the_watcher_tells_of_a_pause_file_written_beside_the_maps(tmp_path: Path) -> None:
    """The real watcher (watchfiles) over a maps folder and a state folder: the pause file's writer (write,
    then rename over it) reaches its callback, and the maps' callback hears nothing of it."""
    from reconciler.daemon.intents import PAUSED_FILE, PauseFile
    from reconciler.watch.maps import MapWatcher

    maps, state = tmp_path / "maps", tmp_path / "state"
    maps.mkdir()
    state.mkdir()
    (maps / "m.yaml").write_text(TWO)
    heard: list[str] = []
    told = threading.Event()

    def pauses_changed() -> None:
        heard.append("pauses")
        told.set()

    watcher = MapWatcher(MapSource([maps]), lambda: heard.append("maps"), also={state / PAUSED_FILE: pauses_changed})
    assert watcher.watching_also
    watcher.start()
    try:
        time.sleep(0.5)  # watching has begun
        PauseFile(state).pause({"m.a": ""}, None, "maintenance")
        assert told.wait(5), heard
        assert "maps" not in heard
        told.clear()
        (maps / "m.yaml").write_text(TWO.replace("b:", "c:"))
        deadline = time.monotonic() + 5
        while "maps" not in heard and time.monotonic() < deadline:
            time.sleep(0.05)
        assert heard.count("maps") == 1
        assert not told.is_set()
    finally:
        watcher.stop()


def test_one_containers_reconcile_looks_at_what_it_reads_and_further_when_its_network_is_renewed() -> None:
    """A die event heals that container from a look at its own neighbourhood; but when the network it joins
    is gone, creating it again reconnects every container on it, and those are recreated too."""
    text = (
        "name: m\nnetworks: {net: null}\na: {image: x, networks: {net: null}}\nb: {image: x, networks: {net: null}}\n"
    )
    engine = FakeEngine(synthesize(controller(text).desired))
    ctl = controller(text, engine)
    engine.remove_network("m.net")
    engine.calls.clear()
    assert ctl.reconcile(ContainerKey("m.a")) == Result()
    assert [c[1] for c in engine.ops("create_network")] == ["m.net"]
    assert sorted(c[1] for c in engine.ops("create")) == ["m.a..next", "m.b..next"]
    assert sorted(c[1] for c in engine.ops("rename")) == ["m.a..next", "m.b..next"]
