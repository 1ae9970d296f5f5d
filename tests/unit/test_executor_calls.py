"""The executor's safety promises, as what the engine is asked to do and in which order.

Each test runs the whole observe → plan → execute loop (`converge`) against `reconciler.testing.FakeEngine`
— our own port, never the engine itself — and asserts on the engine calls, not on the executor's internals:
- ownership: nothing without reconciler's labels is stopped or removed, even when the plan says so;
- recreate: the replacement exists before the old container stops, the old one stops before the replacement
  starts, and goes only once the replacement runs (and passed its health gate);
- restore: a replacement that fails to start or fails its health gate is removed and the old container runs
  again under its own name;
- volume init: an init that exits non-zero is a failure, never a prepared volume.
"""

from __future__ import annotations

from typing import Any

from reconciler.executor.apply import Executor, Outcome
from reconciler.executor.converge import Converged, update
from reconciler.executor.converge import converge as loop
from reconciler.executor.engine import Engine
from reconciler.model import combine_maps, load_map_text
from reconciler.plan import naming
from reconciler.plan.desired import desired_state
from reconciler.plan.drift import Drift, Fix, Reason
from reconciler.plan.planner import Action, Op, Plan, PlanOptions, plan_update
from reconciler.plan.resources import DesiredState, Kind, ResourceId
from reconciler.testing import FakeEngine, container_id, stranger_container_json, synthesize, volume_json

APP = """
name: m
app:
  image: x
  create_options: {environment: {MODE: one}}
"""


def converge(engine: Engine, desired: DesiredState, options: PlanOptions | None = None, **executor: Any) -> Converged:
    """The one loop with an executor of these settings (concurrency, health_gate)."""
    return loop(engine, desired, update(options), executor=Executor(engine, **executor))


def desired_of(text: str) -> DesiredState:
    return desired_state(combine_maps([load_map_text(text, "/tmp/m.yaml")]))


def drifted_app(**engine_knobs: object) -> tuple[FakeEngine, DesiredState]:
    """m.app running with MODE=one while the map now says MODE=two: a recreate is due."""
    engine = FakeEngine(synthesize(desired_of(APP)))
    for knob, value in engine_knobs.items():
        setattr(engine, knob, value)
    return engine, desired_of(APP.replace("one", "two"))


def run(engine: Engine, desired: DesiredState, *, health_gate: float | None = None) -> Converged:
    return converge(engine, desired, concurrency=1, health_gate=health_gate)


def outcome(done: Converged, name: str) -> Outcome:
    return next(r.outcome for r in done.result.results if r.action.resource.name == name)


OLD = container_id("m.app")  # the id `synthesize` gives the running m.app
NEXT = naming.replacement_name("m.app")


# --- ownership -------------------------------------------------------------------------------------------


def test_a_remove_action_for_a_container_that_turned_out_to_be_a_strangers_touches_nothing() -> None:
    """Between plan and execution the name changed hands: the executor looks again and refuses."""
    engine = FakeEngine()
    stranger = stranger_container_json("m.gone")
    stranger["State"]["Running"] = True
    engine.snapshot.containers.append(stranger)
    action = Action(ResourceId(Kind.CONTAINER, "m.gone"), Op.REMOVE, (Op.REMOVE,), (), None)
    result = Executor(engine).run(Plan(waves=((action,),)))
    assert [r.outcome for r in result.results] == [Outcome.FAILED]
    assert "not ours" in (result.results[0].error or "")
    assert engine.ops() == []  # neither stopped nor removed
    assert "m.gone" in engine.names()


def test_a_removal_for_good_takes_the_anonymous_volumes_and_a_plain_one_keeps_them() -> None:
    desired = desired_of("name: m\none: {image: x, shares: /cache}\ntwo: {image: x, shares: /cache}\n")
    engine = FakeEngine(synthesize(desired))
    rid = ResourceId(Kind.CONTAINER, "m.one")
    keep = Action(ResourceId(Kind.CONTAINER, "m.two"), Op.REMOVE, (Op.REMOVE,), (), None)
    take = Action(rid, Op.REMOVE, (Op.REMOVE,), (), None, anonymous_volumes=True)
    assert Executor(engine).run(Plan(waves=((take, keep),))).ok
    assert sorted(engine.ops("remove")) == [("remove", "m.one", "volumes"), ("remove", "m.two")]


def test_a_remove_action_for_a_strangers_volume_touches_nothing() -> None:
    desired = desired_of("name: m\napp: {image: x, attaches: data}\nvolumes: {data: /data}\n")
    engine = FakeEngine()
    engine.snapshot.volumes.append(volume_json(desired.volumes["m.data"], labelled=False))
    action = Action(ResourceId(Kind.VOLUME, "m.data"), Op.REMOVE, (Op.REMOVE,), (), "m.data")
    result = Executor(engine).run(Plan(waves=((action,),)))
    assert [r.outcome for r in result.results] == [Outcome.FAILED]
    assert engine.ops() == []


def test_an_unlabelled_container_named_like_a_replacement_is_never_removed() -> None:
    """`m.app..next` without our labels is someone else's: the recreate must fail rather than remove it."""
    engine, desired = drifted_app()
    engine.snapshot.containers.append(stranger_container_json(NEXT))
    done = run(engine, desired)
    assert ("remove", NEXT) not in engine.calls
    assert NEXT in engine.names()
    assert outcome(done, "m.app") is Outcome.FAILED
    assert ("stop", "m.app") not in engine.calls  # the old container was never stopped for it


def test_creating_a_missing_container_leaves_an_unlabelled_replacement_name_alone() -> None:
    desired = desired_of(APP)
    engine = FakeEngine(synthesize(desired, containers=()))
    engine.snapshot.containers.append(stranger_container_json(NEXT))
    done = run(engine, desired)
    assert done.ok, done.result.summary()
    assert ("remove", NEXT) not in engine.calls
    assert engine.names() == {"m.app", NEXT}


def test_a_container_just_created_is_started_by_its_id_without_being_looked_at_again() -> None:
    """A cold apply's requests: the one look before the create (a leftover replacement? one that appeared
    after the plan must not run beside the new container), the create, the start of the id it returned — no
    inspect of the new container between create and start."""
    desired = desired_of(APP)
    engine = FakeEngine(synthesize(desired, containers=()))
    done = run(engine, desired)
    assert done.ok, done.result.summary()
    created = engine.calls.index(("create", "m.app"))
    assert engine.calls[created + 1] == ("start", "m.app")
    assert ("inspect_container", "m.app") not in engine.calls[created:]
    assert engine.running() == {"m.app"}


def test_a_container_someone_else_created_meanwhile_is_looked_at_before_it_is_started() -> None:
    """The create conflicted (another run created it with the map's spec): its id comes from a look."""
    desired = desired_of(APP)
    engine = FakeEngine(synthesize(desired, containers=()))
    twin = FakeEngine(synthesize(desired, containers=()))
    original_create = engine.create_container

    def created_by_someone_else_first(name: str, config: dict[str, Any]) -> str:
        twin_id = twin.create_container(name, config)
        engine.snapshot.containers.append(twin.container(twin_id))
        return original_create(name, config)  # the engine answers: Conflict

    engine.create_container = created_by_someone_else_first  # type: ignore[method-assign]
    done = run(engine, desired)
    assert done.ok, done.result.summary()
    created = engine.calls.index(("create", "m.app"))
    assert engine.calls[created + 1 : created + 3] == [("inspect_container", "m.app"), ("inspect_container", "m.app")]
    assert engine.calls[created + 3] == ("start", "m.app")
    assert engine.running() == {"m.app"}


def test_a_labelled_leftover_replacement_is_removed_before_the_recreate() -> None:
    engine, desired = drifted_app()
    leftover = synthesize(desired).container("m.app")
    leftover.update(Id=container_id(NEXT), Name=f"/{NEXT}")
    engine.snapshot.containers.append(leftover)
    done = run(engine, desired)
    assert done.ok
    assert engine.names() == {"m.app"}


# --- recreate order --------------------------------------------------------------------------------------


def test_a_recreate_creates_the_replacement_first_stops_the_old_one_then_starts_the_new_one() -> None:
    engine, desired = drifted_app()
    done = run(engine, desired)
    assert done.ok, done.result.summary()
    ops = [c for c in engine.ops() if c[0] != "exec"]
    assert ops == [
        ("create", NEXT),
        ("stop", "m.app"),
        ("start", NEXT),
        ("remove", "m.app"),
        ("rename", NEXT, "m.app"),
    ]
    new = engine.find("m.app")
    assert new is not None
    assert new["Id"] != OLD
    assert new["State"]["Running"]


def test_the_old_container_is_stopped_before_the_replacement_starts_and_removed_only_after() -> None:
    """The same promise as an order relation, so it survives extra steps (inspects, execs, health waits)."""
    engine, desired = drifted_app()
    run(engine, desired)
    ops = engine.ops()
    assert ops.index(("create", NEXT)) < ops.index(("stop", "m.app")) < ops.index(("start", NEXT))
    assert ops.index(("start", NEXT)) < ops.index(("remove", "m.app"))


def test_a_replacement_that_cannot_be_created_leaves_the_old_one_running_untouched() -> None:
    engine, desired = drifted_app(fail_create={NEXT})
    done = run(engine, desired)
    assert outcome(done, "m.app") is Outcome.FAILED
    assert engine.ops() == [("create", NEXT)]
    old = engine.find("m.app")
    assert old is not None
    assert old["Id"] == OLD
    assert old["State"]["Running"]


# --- restore -----------------------------------------------------------------------------------------------


def test_a_replacement_that_fails_to_start_is_removed_and_the_old_one_runs_again() -> None:
    engine, desired = drifted_app(fail_start={NEXT})
    done = run(engine, desired)
    assert outcome(done, "m.app") is Outcome.FAILED
    ops = engine.ops()
    assert ("remove", NEXT) in ops
    assert ops.index(("remove", NEXT)) < ops.index(("start", "m.app"))
    assert ("remove", "m.app") not in ops
    assert engine.names() == {"m.app"}
    old = engine.find("m.app")
    assert old is not None
    assert old["Id"] == OLD
    assert old["State"]["Running"]


def test_a_replacement_that_turns_unhealthy_is_rolled_back_to_the_old_container() -> None:
    engine, desired = drifted_app(health={NEXT: "unhealthy"})
    done = run(engine, desired, health_gate=5)
    assert outcome(done, "m.app") is Outcome.FAILED
    rolled = next(r for r in done.result.results if r.action.resource.name == "m.app")
    assert rolled.rolled_back is not None
    assert rolled.rolled_back[0] == "x:latest"
    ops = engine.ops()
    assert ops.index(("start", NEXT)) < ops.index(("remove", NEXT)) < ops.index(("start", "m.app"))
    assert ("remove", "m.app") not in ops
    assert not any(c[0] == "rename" for c in ops)
    old = engine.find("m.app")
    assert old is not None
    assert old["Id"] == OLD
    assert old["State"]["Running"]
    assert engine.names() == {"m.app"}


def test_a_healthy_replacement_passes_the_gate_and_replaces_the_old_one() -> None:
    engine, desired = drifted_app(health={NEXT: "healthy"})
    done = run(engine, desired, health_gate=5)
    assert done.ok
    new = engine.find("m.app")
    assert new is not None
    assert new["Id"] != OLD


def test_without_a_health_gate_an_unhealthy_replacement_is_kept() -> None:
    """The gate is what rolls back (so the rollback test above is not passing for another reason)."""
    engine, desired = drifted_app(health={NEXT: "unhealthy"})
    assert run(engine, desired).ok
    assert ("remove", "m.app") in engine.ops()


def test_a_fresh_container_that_turns_unhealthy_fails_its_gate_and_its_dependents_wait() -> None:
    text = "name: m\ndb: {image: x}\nweb: {image: x, links: db}\n"
    engine = FakeEngine(synthesize(desired_of(text), containers=()))
    engine.health = {"m.db": "unhealthy"}
    done = run(engine, desired_of(text), health_gate=5)
    assert outcome(done, "m.db") is Outcome.FAILED
    assert outcome(done, "m.web") is Outcome.SKIPPED
    assert ("create", "m.web") not in engine.calls


# --- volume init -----------------------------------------------------------------------------------------

VOLUME_MAP = """
name: m
app: {image: x, attaches: data, user: 2000, permissions: u=rwX}
volumes: {data: /data}
"""


def init_engine(**knobs: object) -> tuple[FakeEngine, DesiredState]:
    desired = desired_of(VOLUME_MAP)
    snapshot = synthesize(desired, containers=())
    snapshot.drop_container("m.data.init")
    engine = FakeEngine(snapshot)
    for knob, value in knobs.items():
        setattr(engine, knob, value)
    return engine, desired


def test_a_volume_init_that_exits_non_zero_is_a_failure_and_the_container_is_not_started() -> None:
    engine, desired = init_engine(exit_codes={"m.data.init": 1})
    done = run(engine, desired)
    assert outcome(done, "m.data.init") is Outcome.FAILED
    error = next(r.error for r in done.result.results if r.action.resource.name == "m.data.init")
    assert "exit 1" in (error or "")
    assert outcome(done, "m.app") is Outcome.SKIPPED
    assert ("create", "m.app") not in engine.calls
    # And the next run sees the failed init and prepares the volume again.
    again = plan_update(desired, engine.snapshot.observed())
    init = again.action_for(ResourceId(Kind.VOLUME_INIT, "m.data.init"))
    assert init is not None
    assert init.op is Op.RUN


def test_a_volume_init_that_exits_zero_prepares_the_volume_then_the_container_starts() -> None:
    engine, desired = init_engine()
    done = run(engine, desired)
    assert done.ok, done.result.summary()
    ops = engine.ops()
    assert ops.index(("create", "m.data.init")) < ops.index(("start", "m.data.init")) < ops.index(("create", "m.app"))
    # The fake keeps only a sketch of the container it created, but the init's record is complete: prepared.
    again = plan_update(desired, engine.snapshot.observed())
    assert again.action_for(ResourceId(Kind.VOLUME_INIT, "m.data.init")) is None


def test_a_strangers_container_named_like_the_init_blocks_preparation_and_is_not_removed() -> None:
    engine, desired = init_engine()
    engine.snapshot.containers.append(stranger_container_json("m.data.init"))
    done = run(engine, desired)
    assert not done.ok
    assert ("remove", "m.data.init") not in engine.calls
    assert ("create", "m.app") not in engine.calls


def test_the_plan_is_never_asked_to_drop_what_it_does_not_own() -> None:
    """Hand the executor a plan that removes everything the engine has: only ours goes."""
    desired = desired_of(APP)
    snapshot = synthesize(desired)
    snapshot.containers.append(stranger_container_json("m.other"))
    engine = FakeEngine(snapshot)
    drift = Drift(Reason.MISSING, "map", "absent", "present", Fix.CREATE)
    actions = tuple(
        Action(ResourceId(Kind.CONTAINER, c["Name"].lstrip("/")), Op.REMOVE, (Op.REMOVE,), (drift,), c["Id"])
        for c in snapshot.containers
    )
    result = Executor(engine).run(Plan(waves=(actions,)))
    outcomes = {r.action.resource.name: r.outcome for r in result.results}
    assert outcomes == {"m.app": Outcome.DONE, "m.other": Outcome.FAILED}
    assert engine.names() == {"m.other"}


def test_prune_options_do_not_matter_to_the_ownership_check() -> None:
    """Even with --prune, a stranger holding a map's name is blocked, never stopped or removed."""
    desired = desired_of(APP)
    engine = FakeEngine(synthesize(desired, containers=()))
    engine.snapshot.containers.append(stranger_container_json("m.app"))
    done = converge(engine, desired, PlanOptions(prune=True, prune_volumes=True))
    assert not done.ok
    assert [c for c in engine.ops() if c[1] == "m.app"] == []


def test_a_persistent_one_shot_that_finishes_at_once_passes_its_gate_and_a_service_that_exits_fails() -> None:
    """A `persistent` job is done when it exits 0 (found flaky by a new-user trial: whether the gate saw it
    still running decided the outcome); a service that exits right after its start fails its gate."""
    desired = desired_of("name: m\njob: {image: x, persistent: true}\nsvc: {image: x}\n")
    engine = FakeEngine(synthesize(desired, containers=()))
    engine.exit_on_start = {"m.job": 0, "m.svc": 0}
    done = run(engine, desired, health_gate=5)
    assert outcome(done, "m.job") is Outcome.DONE
    assert outcome(done, "m.svc") is Outcome.FAILED


def test_with_several_engines_each_action_line_names_its_client() -> None:
    from structlog.testing import capture_logs

    desired = desired_of("name: m\napp: {image: x}\n")
    engine = FakeEngine(synthesize(desired, containers=()))
    plan = plan_update(desired, engine.snapshot.observed())
    with capture_logs() as logs:
        assert Executor(engine).run(plan, client="far").ok
    done = [e for e in logs if e["event"] == "action done"]
    assert done
    assert {e.get("client") for e in done} == {"far"}
