"""The executor's remaining safety paths, by the engine calls they make (`reconciler.testing.FakeEngine`):
removal (graceful stop first, by the observed id, volumes, networks), creation racing a stranger or an earlier
run, the labels of what is created (a replacement carries its lease and nothing else of its own), the health
gate's every outcome and its exact messages, the stop grace period, a recreate of a stopped container
(README: the old container runs again, a finished `persistent` helper stays exited), volume inits (polled,
never killed for taking long, the record they leave), network recreation, and leftovers that appear between
plan and execution. See test_executor_calls.py for the main promises; these pin the details a mutation of
reconciler/executor/apply.py would otherwise slip through.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from reconciler.executor import lease
from reconciler.executor.apply import Executor, Outcome
from reconciler.executor.converge import Converged, update
from reconciler.executor.converge import converge as loop
from reconciler.executor.engine import Json
from reconciler.executor.translate import container_config
from reconciler.model import combine_maps, load_map_text
from reconciler.plan import naming
from reconciler.plan.desired import desired_state
from reconciler.plan.observed import parse_volume
from reconciler.plan.planner import Action, Op, Plan, plan_update
from reconciler.plan.resources import DesiredState, Kind, ResourceId
from reconciler.testing import (
    FakeEngine,
    container_id,
    image_id,
    network_json,
    state_json,
    stranger_container_json,
    synthesize,
    volume_json,
)


def desired_of(text: str) -> DesiredState:
    return desired_state(combine_maps([load_map_text(text, "/tmp/m.yaml")]))


APP = "name: m\napp:\n  image: x\n  stop_timeout: 7\n  create_options: {environment: {MODE: one}}\n"
NEXT = naming.replacement_name("m.app")
ROLLED_BACK = "; rolled back, the old container keeps running"


def converge(engine: FakeEngine, desired: DesiredState, **executor: Any) -> Converged:
    """The one loop (observe → plan → execute) with an executor of these settings (health_gate, …)."""
    return loop(engine, desired, update(), executor=Executor(engine, **executor))


def result_of(done: Converged, name: str) -> tuple[Outcome, str]:
    found = next(r for r in done.result.results if r.action.resource.name == name)
    return found.outcome, found.error or ""


def drifted(**knobs: object) -> tuple[FakeEngine, DesiredState]:
    """m.app running with MODE=one while the map now says MODE=two: a recreate is due."""
    engine = FakeEngine(synthesize(desired_of(APP)))
    for knob, value in knobs.items():
        setattr(engine, knob, value)
    return engine, desired_of(APP.replace("one", "two"))


def remove(engine: FakeEngine, kind: Kind, name: str, ident: str | None) -> Outcome:
    action = Action(ResourceId(kind, name), Op.REMOVE, (Op.REMOVE,), (), ident)
    return Executor(engine).run(Plan(waves=((action,),))).results[0].outcome


# --- removal -----------------------------------------------------------------------------------------------


def test_removing_a_running_container_of_ours_stops_it_gracefully_first() -> None:
    engine = FakeEngine(synthesize(desired_of(APP)))
    engine.container("m.app")["Config"]["StopTimeout"] = 7
    assert remove(engine, Kind.CONTAINER, "m.app", container_id("m.app")) is Outcome.DONE
    assert engine.ops() == [("stop", "m.app"), ("remove", "m.app")]
    assert engine.stop_timeouts == {"m.app": 7}  # its own grace period
    assert "m.app" not in engine.names()


def test_removing_a_stopped_container_does_not_stop_it_and_a_missing_one_is_fine() -> None:
    engine = FakeEngine(synthesize(desired_of(APP)))
    engine.container("m.app")["State"] = state_json("exited", 0)
    assert remove(engine, Kind.CONTAINER, "m.app", None) is Outcome.DONE
    assert engine.ops() == [("remove", "m.app")]
    assert remove(engine, Kind.CONTAINER, "m.app", None) is Outcome.DONE  # already gone: idempotent
    assert engine.ops() == [("remove", "m.app")]


def test_removal_goes_by_the_observed_id_not_the_name() -> None:
    """The plan saw a container by its id; that container is removed, whatever its name is now."""
    engine = FakeEngine(synthesize(desired_of(APP)))
    engine.snapshot.containers.append(stranger_container_json("m.app..other"))
    assert remove(engine, Kind.CONTAINER, "m.gone", container_id("m.app")) is Outcome.DONE
    assert engine.ops() == [("stop", "m.app"), ("remove", "m.app")]
    assert engine.names() == {"m.app..other"}


def test_removing_our_volume_and_network() -> None:
    desired = desired_of(
        "name: m\nnetworks: {n: {}}\napp: {image: x, attaches: data, networks: n}\nvolumes: {data: /d}\n"
    )
    engine = FakeEngine(synthesize(desired))
    assert remove(engine, Kind.VOLUME, "m.data", "m.data") is Outcome.DONE
    assert engine.ops("remove_volume") == [("remove_volume", "m.data")]
    assert remove(engine, Kind.VOLUME, "m.data", "m.data") is Outcome.DONE  # gone: nothing to do
    assert engine.ops("remove_volume") == [("remove_volume", "m.data")]
    net = engine.snapshot.networks[0]["Id"]
    assert remove(engine, Kind.NETWORK, "m.n", net) is Outcome.DONE
    assert engine.ops("remove_network") == [("remove_network", net)]
    assert engine.snapshot.networks == []


# --- creation ------------------------------------------------------------------------------------------------


def created_plan(text: str) -> tuple[FakeEngine, DesiredState, Plan]:
    desired = desired_of(text)
    engine = FakeEngine(synthesize(desired, containers=()))
    return engine, desired, plan_update(desired, engine.snapshot.observed())


def test_a_stranger_that_took_the_name_between_plan_and_create_is_reported_not_touched() -> None:
    engine, _, plan = created_plan(APP)
    engine.snapshot.containers.append(stranger_container_json("m.app"))
    result = Executor(engine).run(plan)
    assert [r.outcome for r in result.results] == [Outcome.FAILED]
    assert result.results[0].error == "a container named m.app exists without reconciler's labels"
    assert engine.ops() == [("create", "m.app")]  # tried, refused by the engine, nothing else


def test_a_container_an_earlier_run_created_with_the_same_spec_is_accepted_another_spec_is_not() -> None:
    engine, desired, plan = created_plan(APP)
    engine.snapshot.containers.extend(synthesize(desired).containers)  # created meanwhile, same spec, running
    assert Executor(engine).run(plan).ok
    assert engine.ops() == [("create", "m.app")]  # refused by the engine; the existing one is left as it is
    engine2, _, plan2 = created_plan(APP)
    other = synthesize(desired_of(APP.replace("one", "other"))).container("m.app")
    engine2.snapshot.containers.append(other)  # …but with another spec: not silently accepted
    result2 = Executor(engine2).run(plan2)
    assert [r.outcome for r in result2.results] == [Outcome.FAILED]
    assert result2.results[0].error == "m.app was created meanwhile with another spec; run again"


def test_a_new_container_carries_our_labels_and_its_spec_hash() -> None:
    engine, desired, plan = created_plan(APP)
    assert Executor(engine).run(plan).ok
    labels = engine.configs["m.app"]["labels"]
    assert labels[naming.LABEL_MANAGED] == "true"
    assert labels[naming.LABEL_MAP] == "m"
    assert labels[naming.LABEL_SPEC_HASH] == desired.containers["m.app"].spec_hash
    assert naming.LABEL_LEASE_OWNER not in labels  # only a replacement is leased


def test_a_replacement_carries_the_labels_of_the_container_it_replaces_and_only_its_lease_besides() -> None:
    """README: found by its name `<name>..next`; the same labels as the container it replaces, no label of
    its own — but the lease that keeps a second reconciler off it."""
    engine, desired = drifted()
    assert converge(engine, desired, owner="test/1/me", clock=lambda: 1000.0).ok
    spec = desired.containers["m.app"]
    labels = engine.configs[NEXT]["labels"]
    wanted = container_config(spec)["labels"]
    assert {k: v for k, v in labels.items() if k in wanted} == wanted
    assert set(labels) - set(wanted) == {naming.LABEL_LEASE_OWNER, naming.LABEL_LEASE_EXPIRES}
    assert labels[naming.LABEL_LEASE_OWNER] == "test/1/me"
    assert int(labels[naming.LABEL_LEASE_EXPIRES]) == 1000 + 7 + lease.LEASE_MARGIN  # its stop timeout + margin
    assert labels[naming.LABEL_SPEC_HASH] == spec.spec_hash


def test_volumes_are_created_labelled_and_a_strangers_volume_is_not_adopted() -> None:
    text = "name: m\napp: {image: x, attaches: data}\nvolumes: {data: /d}\n"
    desired = desired_of(text)
    engine = FakeEngine(synthesize(desired, containers=()))
    engine.snapshot.volumes.clear()
    engine.snapshot.containers.clear()
    done = converge(engine, desired)
    assert done.ok, done.result.summary()
    volume = next(v for v in engine.snapshot.volumes if v["Name"] == "m.data")
    assert volume["Labels"][naming.LABEL_MANAGED] == "true"
    assert volume["Labels"][naming.LABEL_VOLUME_ID]  # the identity the init records
    # A stranger's volume under the name, found only at execution: refused, never adopted.
    engine2 = FakeEngine(synthesize(desired, containers=()))
    engine2.snapshot.volumes.clear()
    engine2.snapshot.containers.clear()
    stale_plan = plan_update(desired, engine2.snapshot.observed())
    engine2.snapshot.volumes.append(volume_json(desired.volumes["m.data"], labelled=False))
    result = Executor(engine2).run(stale_plan)
    outcomes = {r.action.resource.name: r.outcome for r in result.results}
    assert outcomes["m.data"] is Outcome.FAILED
    assert outcomes["m.app"] is Outcome.SKIPPED
    assert engine2.ops("create_volume", "create", "start") == []


# --- the health gate -----------------------------------------------------------------------------------------


def test_a_replacement_that_exits_at_once_is_rolled_back() -> None:
    engine, desired = drifted(exit_on_start={NEXT: 3})
    done = converge(engine, desired, health_gate=5)
    assert result_of(done, "m.app") == (Outcome.FAILED, "the replacement exited with code 3" + ROLLED_BACK)
    assert engine.names() == {"m.app"}
    assert engine.container("m.app")["Id"] == container_id("m.app")
    assert engine.container("m.app")["State"]["Running"]


def test_a_replacement_that_stays_starting_past_the_gate_is_rolled_back_with_its_image() -> None:
    engine, desired = drifted(health={NEXT: "starting"})
    done = converge(engine, desired, health_gate=0.3)
    assert result_of(done, "m.app") == (Outcome.FAILED, "the replacement was not healthy within 0.3s" + ROLLED_BACK)
    rolled = next(r for r in done.result.results if r.action.resource.name == "m.app").rolled_back
    assert rolled == ("x:latest", image_id("x:latest"))  # what the daemon holds back next time
    assert engine.names() == {"m.app"}
    assert engine.container("m.app")["State"]["Running"]


def test_a_replacement_that_becomes_healthy_later_passes() -> None:
    engine, desired = drifted(health={NEXT: "starting"})

    def heal_soon(name: str) -> None:
        def later() -> None:
            with engine.lock:
                found = engine.find(name)
                if found is not None:
                    found["State"]["Health"]["Status"] = "healthy"

        threading.Timer(0.3, later).start()

    engine.after_start = heal_soon
    done = converge(engine, desired, health_gate=10)
    assert done.ok, done.result.summary()
    assert engine.names() == {"m.app"}
    assert engine.container("m.app")["Id"] != container_id("m.app")


def test_a_stop_request_during_the_gate_rolls_back_rather_than_leaving_a_replacement() -> None:
    engine, desired = drifted(health={NEXT: "starting"})
    stop = threading.Event()
    engine.after_start = lambda name: stop.set() if name == NEXT else None
    plan = plan_update(desired, engine.snapshot.observed())
    result = Executor(engine, health_gate=30).run(plan, stop)
    assert [r.outcome for r in result.results] == [Outcome.FAILED]
    assert result.results[0].error == "the replacement was not healthy yet when we were asked to stop" + ROLLED_BACK
    assert engine.names() == {"m.app"}
    assert engine.container("m.app")["Id"] == container_id("m.app")
    assert engine.container("m.app")["State"]["Running"]


def test_a_replacement_without_a_healthcheck_passes_the_gate_at_once() -> None:
    engine, desired = drifted()
    started = time.monotonic()
    assert converge(engine, desired, health_gate=30).ok
    assert time.monotonic() - started < 5
    assert engine.names() == {"m.app"}
    assert engine.container("m.app")["Id"] != container_id("m.app")


def test_a_replacement_that_disappears_during_its_gate_is_rolled_back() -> None:
    engine, desired = drifted(health={NEXT: "starting"})

    def vanish(name: str) -> None:
        if name == NEXT:
            with engine.lock:
                engine.snapshot.containers.remove(engine.container(NEXT))

    engine.after_start = vanish
    done = converge(engine, desired, health_gate=10)
    assert result_of(done, "m.app") == (Outcome.FAILED, "the replacement disappeared" + ROLLED_BACK)
    assert engine.container("m.app")["State"]["Running"]


def test_an_unhealthy_replacement_is_reported_as_such_at_once() -> None:
    engine, desired = drifted(health={NEXT: "unhealthy"})
    started = time.monotonic()
    done = converge(engine, desired, health_gate=30)
    assert time.monotonic() - started < 5  # not after the gate's 30 s
    assert result_of(done, "m.app") == (Outcome.FAILED, "the replacement became unhealthy" + ROLLED_BACK)


def test_a_rollback_names_the_replacements_image_when_the_tag_is_gone() -> None:
    """Found by mutation testing: the image id to hold back must be read from the replacement before it is
    removed; when the tag no longer resolves, that is the only place left that knows it."""
    engine, desired = drifted(health={NEXT: "unhealthy"})
    new_image = engine.snapshot.images["x:latest"]["Id"]

    def untag(name: str) -> None:
        if name == NEXT:
            engine.snapshot.images.pop("x:latest", None)  # the tag vanished meanwhile

    engine.after_start = untag
    done = converge(engine, desired, health_gate=30)
    rolled = next(r for r in done.result.results if r.action.resource.name == "m.app").rolled_back
    assert rolled == ("x:latest", new_image)
    assert new_image


def test_a_rollback_holds_back_the_image_that_failed_not_the_one_the_tag_moved_to_meanwhile() -> None:
    """The tag moved on during the gate: its new image has not been tried; holding it back would keep the
    container from the fix it may carry until the tag moved once more."""
    engine, desired = drifted(health={NEXT: "unhealthy"})
    failed = engine.snapshot.images["x:latest"]["Id"]
    newer = {**engine.snapshot.images["x:latest"], "Id": image_id("x:newer")}

    def retag(name: str) -> None:
        if name == NEXT:
            engine.snapshot.images["x:latest"] = newer  # a pull moved the tag meanwhile

    engine.after_start = retag
    done = converge(engine, desired, health_gate=30)
    rolled = next(r for r in done.result.results if r.action.resource.name == "m.app").rolled_back
    assert rolled == ("x:latest", failed)
    assert failed != newer["Id"]


# --- recreate details ----------------------------------------------------------------------------------------


def test_the_old_container_is_stopped_with_the_maps_grace_period() -> None:
    engine, desired = drifted()
    engine.container("m.app")["Config"]["StopTimeout"] = 3  # created with another one: the map's wins
    assert converge(engine, desired).ok
    assert engine.stop_timeouts == {"m.app": 7}


def test_the_old_container_is_stopped_with_its_own_grace_period_when_the_map_sets_none() -> None:
    text = "name: m\napp: {image: x, create_options: {environment: {MODE: one}}}\n"
    engine = FakeEngine(synthesize(desired_of(text)))
    engine.container("m.app")["Config"]["StopTimeout"] = 11
    assert converge(engine, desired_of(text.replace("one", "two"))).ok
    assert engine.stop_timeouts == {"m.app": 11}


@pytest.mark.parametrize(
    ("persistent", "exit_code", "runs_again"),
    [(False, 0, True), (False, 1, True), (True, 0, False)],
    ids=["stopped-service", "failed-service", "finished-persistent-helper"],
)
def test_a_failed_recreate_of_a_stopped_container_runs_it_again_unless_a_finished_helper(
    persistent: bool, exit_code: int, runs_again: bool
) -> None:
    """README: if anything fails, the old container runs again — also when an interrupted earlier run had
    left it stopped (a `persistent` helper that had finished stays exited). It is never stopped for it."""
    text = APP + ("  persistent: true\n" if persistent else "")
    engine = FakeEngine(synthesize(desired_of(text)))
    engine.container("m.app")["State"] = state_json("exited", exit_code)
    engine.fail_start = {NEXT}
    done = converge(engine, desired_of(text.replace("one", "two")))
    outcome, error = result_of(done, "m.app")
    assert outcome is Outcome.FAILED
    assert ("create", NEXT) in engine.calls  # it was a recreate that failed
    assert ("stop", "m.app") not in engine.calls
    assert (("start", "m.app") in engine.calls) is runs_again
    assert engine.container("m.app")["State"]["Running"] is runs_again
    assert engine.container("m.app")["Id"] == container_id("m.app")
    assert engine.names() == {"m.app"}
    if runs_again:
        assert error.endswith("; rolled back, the old container runs again")


def test_after_a_recreate_the_initial_and_restart_commands_run_in_the_new_container() -> None:
    text = APP + "  exec_commands: [[echo hi, null, initial], [sleep 9, null, restart]]\n"
    engine = FakeEngine(synthesize(desired_of(text)))
    assert converge(engine, desired_of(text.replace("one", "two"))).ok
    execs = engine.ops("exec")
    assert execs == [("exec", "m.app", "echo hi"), ("exec", "m.app", "sleep 9")]
    assert engine.calls.index(("rename", NEXT, "m.app")) < engine.calls.index(execs[0])


def test_failures_of_a_recreate_say_that_the_old_container_keeps_running() -> None:
    engine, desired = drifted(fail_create={NEXT})
    assert result_of(converge(engine, desired), "m.app")[1] == (
        "creating the replacement failed; the old container keeps running: refused to create m.app..next"
    )
    engine, desired = drifted(fail_start={NEXT})
    assert result_of(converge(engine, desired), "m.app")[1] == (
        "stopping the old container or starting the replacement failed: "
        "cannot start m.app..next: port is already allocated" + ROLLED_BACK
    )
    assert engine.container("m.app")["State"]["Running"]


def test_a_stranger_that_took_the_name_before_a_recreate_is_neither_stopped_nor_replaced() -> None:
    engine, desired = drifted()
    plan = plan_update(desired, engine.snapshot.observed())
    engine.snapshot.drop_container("m.app")
    engine.snapshot.containers.append(stranger_container_json("m.app"))  # someone's own m.app, meanwhile
    result = Executor(engine).run(plan)
    assert [(r.outcome, r.error) for r in result.results] == [
        (Outcome.FAILED, "a container named m.app exists without reconciler's labels: not touched")
    ]
    assert engine.ops() == []


def test_a_container_another_reconcile_replaced_meanwhile_with_the_wanted_spec_is_left_alone() -> None:
    engine, desired = drifted()
    plan = plan_update(desired, engine.snapshot.observed())
    done = synthesize(desired).container("m.app")
    done["Id"] = container_id("m.app-by-someone-else")
    engine.snapshot.drop_container("m.app")
    engine.snapshot.containers.append(done)  # what the map wants, made by the other reconcile
    assert Executor(engine).run(plan).ok
    assert engine.ops() == []
    assert engine.container("m.app")["Id"] == done["Id"]


def test_a_recreate_whose_old_container_vanished_after_the_plan_still_brings_the_container() -> None:
    engine, desired = drifted()
    plan = plan_update(desired, engine.snapshot.observed())
    engine.snapshot.drop_container("m.app")  # removed by a person meanwhile
    result = Executor(engine).run(plan)
    assert result.ok, result.summary()
    assert engine.ops() == [("create", NEXT), ("start", NEXT), ("rename", NEXT, "m.app")]
    assert engine.container("m.app")["State"]["Running"]


def test_a_rollback_whose_old_container_vanished_meanwhile_does_not_claim_it_runs() -> None:
    engine, desired = drifted(health={NEXT: "unhealthy"})

    def vanish_old(name: str) -> None:
        if name == NEXT:
            engine.snapshot.drop_container("m.app")

    engine.after_start = vanish_old
    assert result_of(converge(engine, desired, health_gate=5), "m.app") == (
        Outcome.FAILED,
        "the replacement became unhealthy; restoring failed too: the old container is gone (removed meanwhile)",
    )
    assert engine.names() == set()  # the replacement went too; the next plan creates m.app


def test_a_restore_that_fails_too_names_every_error() -> None:
    engine, desired = drifted(fail_start={NEXT, "m.app"}, fail_remove={NEXT})
    assert result_of(converge(engine, desired), "m.app") == (
        Outcome.FAILED,
        "stopping the old container or starting the replacement failed: "
        "cannot start m.app..next: port is already allocated; restoring failed too: "
        "removing the replacement failed: cannot remove m.app..next: engine unreachable; "
        "starting the old container again failed: cannot start m.app: port is already allocated",
    )


def test_removing_a_replacement_leased_by_another_reconciler_names_it_and_touches_nothing() -> None:
    engine, desired = drifted()
    temp = leftover(desired)
    temp["Config"]["Labels"].update(lease.lease_labels("otherhost/1/x", time.time() + 3600))
    engine.snapshot.containers.append(temp)
    action = Action(ResourceId(Kind.CONTAINER, NEXT), Op.REMOVE, (Op.REMOVE,), (), temp["Id"])
    result = Executor(engine).run(Plan(waves=((action,),)))
    assert result.results[0].error == (f"{lease.IN_PROGRESS}: m.app..next is leased by otherhost/1/x; not touched")
    assert engine.ops() == []


# --- volume init ---------------------------------------------------------------------------------------------

VOLUMES = "name: m\napp: {image: x, attaches: data, user: 2000, permissions: u=rwX}\nvolumes: {data: /data}\n"


def init_engine() -> tuple[FakeEngine, DesiredState]:
    desired = desired_of(VOLUMES)
    snapshot = synthesize(desired, containers=())
    snapshot.drop_container("m.data.init")
    return FakeEngine(snapshot), desired


def test_an_init_that_cannot_start_is_removed_so_it_never_looks_prepared() -> None:
    engine, desired = init_engine()
    engine.fail_start = {"m.data.init"}
    done = converge(engine, desired)
    assert result_of(done, "m.data.init")[0] is Outcome.FAILED
    assert ("remove", "m.data.init") in engine.ops()
    assert "m.data.init" not in engine.names()
    assert ("create", "m.app") not in engine.calls


def test_a_failed_init_reports_its_output_and_stays_as_the_record_of_the_failure() -> None:
    engine, desired = init_engine()
    engine.exit_codes = {"m.data.init": 1}
    done = converge(engine, desired)
    assert result_of(done, "m.data.init") == (
        Outcome.FAILED,
        "preparing volume m.data failed (exit 1): chown: /data: Operation not permitted",
    )
    assert "m.data.init" in engine.names()  # exited 1: the next plan sees it and runs it again


def test_a_failed_init_is_removed_and_run_again_by_the_next_run() -> None:
    engine, desired = init_engine()
    engine.exit_codes = {"m.data.init": 1}
    assert not converge(engine, desired).ok
    engine.exit_codes = {}
    engine.calls.clear()
    again = converge(engine, desired)
    assert again.ok, again.result.summary()
    ops = [c for c in engine.ops() if c[1] == "m.data.init"]
    assert ops == [("remove", "m.data.init"), ("create", "m.data.init"), ("start", "m.data.init")]


def test_a_running_init_of_another_preparation_is_removed_by_force_and_started_anew() -> None:
    """An init still running for an earlier preparation (another owner or mode) is not what is wanted now."""
    engine, desired = init_engine()
    engine.keeps_running = {"m.data.init"}
    earlier = desired_of(VOLUMES.replace("2000", "3000"))
    plan = plan_update(earlier, engine.snapshot.observed()).keep(lambda a: a.resource.kind is Kind.VOLUME_INIT)
    assert not Executor(engine, init_timeout=0, sleep=lambda _s: None).run(plan).ok  # left running
    old = engine.container("m.data.init")["Id"]
    engine.keeps_running.clear()
    engine.calls.clear()
    done = converge(engine, desired)
    assert done.ok, done.result.summary()
    assert engine.ops()[:3] == [("remove", "m.data.init"), ("create", "m.data.init"), ("start", "m.data.init")]
    assert engine.container("m.data.init")["Id"] != old


def test_an_init_is_labelled_with_the_client_it_runs_for() -> None:
    engine, desired = init_engine()
    plan = plan_update(desired, engine.snapshot.observed())
    assert Executor(engine).run(plan, client="web1").ok
    assert engine.configs["m.data.init"]["labels"][naming.LABEL_CLIENT] == "web1"
    assert engine.configs["m.app"]["labels"][naming.LABEL_CLIENT] == "web1"


def test_an_init_records_the_volume_it_prepared_and_is_polled_not_waited_for() -> None:
    engine, desired = init_engine()
    assert converge(engine, desired).ok
    volume = next(v for v in engine.snapshot.volumes if v["Name"] == "m.data")
    labels = engine.configs["m.data.init"]["labels"]
    assert labels[naming.LABEL_VOLUME_CREATED] == parse_volume(volume).identity == volume["CreatedAt"]
    assert labels[naming.LABEL_MANAGED] == "true"
    assert labels[naming.LABEL_SPEC_HASH] == desired.inits["m.data.init"].spec_hash
    assert engine.ops("wait") == []  # no blocking wait a client timeout could cut short
    assert engine.names() == {"m.data.init", "m.app"}


def test_a_long_init_is_left_running_when_its_timeout_ends_and_waited_for_by_the_next_run() -> None:
    engine, desired = init_engine()
    engine.keeps_running = {"m.data.init"}
    clock = [0.0]

    def nap(seconds: float) -> None:
        clock[0] += seconds
        time.sleep(0.001)

    done = converge(engine, desired, init_timeout=0.05, sleep=nap)
    assert result_of(done, "m.data.init") == (
        Outcome.FAILED,
        "preparing volume m.data: still running after 0.05s (left running)",
    )
    assert engine.container("m.data.init")["State"]["Running"]  # never killed: a chown -R may take hours
    assert ("remove", "m.data.init") not in engine.calls
    assert ("create", "m.app") not in engine.calls
    # The next run finds the same preparation still at work and waits for it, never starting it over.
    engine.keeps_running.clear()
    engine.calls.clear()
    engine.after_start = None

    def ends(seconds: float) -> None:
        engine.container("m.data.init")["State"] = state_json("exited", 0)

    again = converge(engine, desired, sleep=ends)
    assert again.ok, again.result.summary()
    assert [c for c in engine.ops() if c[1] == "m.data.init"] == []
    assert ("create", "m.app") in engine.calls


def test_an_init_whose_volume_vanished_fails_without_creating_anything() -> None:
    engine, desired = init_engine()
    plan = plan_update(desired, engine.snapshot.observed())
    engine.snapshot.volumes.clear()
    result = Executor(engine).run(plan.keep(lambda a: a.resource.kind is Kind.VOLUME_INIT))
    assert [r.outcome for r in result.results] == [Outcome.FAILED]
    assert result.results[0].error == "volume m.data does not exist"
    assert engine.ops() == []


# --- networks ------------------------------------------------------------------------------------------------


def test_a_recreated_network_is_emptied_removed_and_made_again() -> None:
    text = "name: m\nnetworks: {n: {driver: bridge}}\napp: {image: x, networks: n}\n"
    desired = desired_of(text)
    snapshot = synthesize(desired)
    snapshot.networks[0]["Driver"] = "macvlan"  # drifted: must be recreated
    engine = FakeEngine(snapshot)
    plan = plan_update(desired, engine.snapshot.observed())
    net_action = plan.action_for(ResourceId(Kind.NETWORK, "m.n"))
    assert net_action is not None
    assert net_action.op is Op.RECREATE
    assert Executor(engine).run(Plan(waves=((net_action,),))).ok
    ops = engine.ops("disconnect", "remove_network", "create_network")
    old = network_json(desired.networks["m.n"])["Id"]
    assert ops == [("disconnect", old, container_id("m.app")), ("remove_network", old), ("create_network", "m.n")]


def test_a_stranger_that_joined_a_network_after_the_plan_keeps_it_the_network_is_not_recreated() -> None:
    text = "name: m\nnetworks: {n: {driver: bridge}}\napp: {image: x, networks: n}\n"
    desired = desired_of(text)
    snapshot = synthesize(desired)
    snapshot.networks[0]["Driver"] = "macvlan"
    engine = FakeEngine(snapshot)
    net_action = plan_update(desired, engine.snapshot.observed()).action_for(ResourceId(Kind.NETWORK, "m.n"))
    assert net_action is not None
    assert net_action.op is Op.RECREATE
    stranger = stranger_container_json("someone")
    engine.snapshot.containers.append(stranger)
    engine.snapshot.networks[0]["Containers"][stranger["Id"]] = {"Name": "someone"}  # connected meanwhile
    result = Executor(engine).run(Plan(waves=((net_action,),)))
    assert [r.outcome for r in result.results] == [Outcome.FAILED]
    assert result.results[0].error == (
        f"network m.n: containers without reconciler's labels are attached ({stranger['Id'][:12]}): not recreated"
    )
    assert engine.ops() == []  # nobody disconnected, nothing removed


def test_a_network_created_meanwhile_is_fine_when_ours_and_an_error_when_a_strangers() -> None:
    text = "name: m\nnetworks: {n: {}}\napp: {image: x, networks: n}\n"
    desired = desired_of(text)
    engine = FakeEngine(synthesize(desired, containers=()))
    engine.snapshot.networks.clear()
    plan = plan_update(desired, engine.snapshot.observed()).keep(lambda a: a.resource.kind is Kind.NETWORK)
    engine.snapshot.networks.append(network_json(desired.networks["m.n"]))
    assert Executor(engine).run(plan).ok
    engine.snapshot.networks[0] = network_json(desired.networks["m.n"], labelled=False)
    assert not Executor(engine).run(plan).ok
    assert engine.ops("remove_network", "disconnect") == []


# --- idempotence against what happened between plan and execution ------------------------------------------


def leftover(desired: DesiredState, *, running: bool = True) -> Json:
    """Our own `m.app..next` of the wanted spec, as a crashed recreate leaves it (running, by default)."""
    data = synthesize(desired).container("m.app")
    data.update(Id=container_id(NEXT), Name=f"/{NEXT}")
    if not running:
        data["State"] = state_json("created")
    return data


def test_a_finished_leftover_replacement_appearing_after_the_plan_is_adopted_not_built_again() -> None:
    """README: a replacement left complete by an interrupted run is renamed into place."""
    engine, desired = drifted()
    plan = plan_update(desired, engine.snapshot.observed())  # planned before the leftover existed
    assert plan.action_for(ResourceId(Kind.CONTAINER, NEXT)) is None
    engine.snapshot.containers.append(leftover(desired))
    result = Executor(engine).run(plan)
    assert result.ok, result.summary()
    assert engine.ops() == [("stop", "m.app"), ("remove", "m.app"), ("rename", NEXT, "m.app")]
    assert engine.names() == {"m.app"}
    assert engine.container("m.app")["Id"] == container_id(NEXT)


def test_an_unfinished_leftover_replacement_appearing_after_the_plan_is_removed_before_the_recreate() -> None:
    engine, desired = drifted()
    plan = plan_update(desired, engine.snapshot.observed())
    engine.snapshot.containers.append(leftover(desired, running=False))
    result = Executor(engine).run(plan)
    assert result.ok, result.summary()
    assert engine.ops()[:2] == [("remove", NEXT), ("create", NEXT)]
    assert engine.names() == {"m.app"}
    assert engine.container("m.app")["Id"] not in (container_id("m.app"), container_id(NEXT))


def test_a_leftover_replacement_appearing_after_the_plan_is_removed_before_a_create() -> None:
    desired = desired_of(APP)
    engine = FakeEngine(synthesize(desired, containers=()))
    plan = plan_update(desired, engine.snapshot.observed())
    engine.snapshot.containers.append(leftover(desired))
    assert Executor(engine).run(plan).ok
    assert engine.ops()[:2] == [("remove", NEXT), ("create", "m.app")]
    assert engine.names() == {"m.app"}


def test_a_volume_made_meanwhile_by_us_is_used_and_one_by_a_stranger_refused_with_a_reason() -> None:
    text = "name: m\napp: {image: x, attaches: data}\nvolumes: {data: /d}\n"
    desired = desired_of(text)
    engine = FakeEngine(synthesize(desired, containers=()))
    engine.snapshot.volumes.clear()
    engine.snapshot.containers.clear()
    plan = plan_update(desired, engine.snapshot.observed()).keep(lambda a: a.resource.kind is Kind.VOLUME)
    engine.snapshot.volumes.append(volume_json(desired.volumes["m.data"]))  # ours, made by another run
    assert Executor(engine).run(plan).ok
    assert engine.ops("create_volume") == []
    engine.snapshot.volumes[0] = volume_json(desired.volumes["m.data"], labelled=False)
    result = Executor(engine).run(plan)
    assert result.results[0].error == "volume m.data exists without reconciler's labels: not touched"
    assert engine.ops("create_volume", "remove_volume") == []
    engine.snapshot.volumes.clear()
    assert Executor(engine).run(plan).ok
    made = next(v for v in engine.snapshot.volumes if v["Name"] == "m.data")
    assert made["Driver"] == "local"


def test_refusals_name_what_they_refused() -> None:
    desired = desired_of(VOLUMES)
    engine = FakeEngine()
    engine.snapshot.volumes.append(volume_json(desired.volumes["m.data"], labelled=False))
    action = Action(ResourceId(Kind.VOLUME, "m.data"), Op.REMOVE, (Op.REMOVE,), (), "m.data")
    result = Executor(engine).run(Plan(waves=((action,),)))
    assert result.results[0].error == "volume m.data is not ours: not removed"
    engine.snapshot.containers.append(stranger_container_json("m.data.init"))
    init = desired.inits["m.data.init"]
    run_init = Action(ResourceId(Kind.VOLUME_INIT, "m.data.init"), Op.RUN, (Op.RUN,), (), None, init)
    engine.snapshot.volumes[0] = volume_json(desired.volumes["m.data"])
    result = Executor(engine).run(Plan(waves=((run_init,),)))
    assert result.results[0].error == "m.data.init exists without reconciler's labels: not touched"
    remove_init = Action(ResourceId(Kind.VOLUME_INIT, "m.data.init"), Op.REMOVE, (Op.REMOVE,), (), None)
    result = Executor(engine).run(Plan(waves=((remove_init,),)))
    assert result.results[0].error == "m.data.init is not ours (no reconciler labels): not removed"
    assert engine.ops() == []


# --- scheduling: each action as soon as its own predecessors are done --------------------------------------


class SlowToCreate(FakeEngine):
    """Creating `m.slow` waits until `m.app` has been created (or 5 s): a wave scheduler could never get
    there, because `m.app` is in the wave after `m.slow`'s."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.app_created = threading.Event()

    def create_container(self, name: str, config: Json) -> str:
        if name == "m.slow":
            self.app_created.wait(5)
        ident = super().create_container(name, config)
        if name == "m.app":
            self.app_created.set()
        return ident


def test_a_dependent_starts_once_its_own_dependency_is_done_not_the_slowest_of_the_wave_before() -> None:
    desired = desired_of("name: m\nslow: {image: x}\nbase: {image: x}\napp: {image: x, links: [[base, db]]}\n")
    engine = SlowToCreate(synthesize(desired, containers=()))
    started = time.monotonic()
    done = converge(engine, desired, concurrency=4)
    assert done.result.ok, done.result.summary()
    assert time.monotonic() - started < 4  # m.slow was not left waiting for its 5 s
    creates = [c[1] for c in engine.ops("create")]
    assert creates.index("m.app") < creates.index("m.slow")
    assert {a.resource.name for a in done.plan.waves[0]} >= {"m.slow", "m.base"}  # one wave, two speeds
    # The dependency itself still comes first: `m.app` was created and started only after `m.base` started.
    calls = engine.ops("create", "start")
    assert calls.index(("start", "m.base")) < calls.index(("create", "m.app"))


def test_a_dependent_of_a_failed_action_is_skipped_while_the_rest_goes_on() -> None:
    desired = desired_of("name: m\nslow: {image: x}\nbase: {image: x}\napp: {image: x, links: [[base, db]]}\n")
    engine = FakeEngine(synthesize(desired, containers=()))
    engine.fail_create.add("m.base")
    done = converge(engine, desired, concurrency=4)
    assert result_of(done, "m.base")[0] is Outcome.FAILED
    assert result_of(done, "m.app") == (Outcome.SKIPPED, "dependency container m.base failed")
    assert result_of(done, "m.slow")[0] is Outcome.DONE
    assert [r.action.resource.name for r in done.result.results] == [a.resource.name for a in done.plan.actions]


def test_an_action_dropped_from_a_plan_passes_its_predecessors_on() -> None:
    """`Plan.keep` (a pause, a crash loop) drops an action in the middle of a chain: what came after it
    still waits for what came before it."""
    desired = desired_of(
        "name: m\ndb: {image: x}\nweb: {image: x, links: [[db, db]]}\nproxy: {image: x, links: [[web, web]]}\n"
    )
    plan = plan_update(desired, synthesize(desired, containers=()).observed())
    db, web, proxy = (ResourceId(Kind.CONTAINER, f"m.{n}") for n in ("db", "web", "proxy"))
    assert plan.predecessors()[proxy] == {web}
    kept = plan.keep(lambda a: a.resource != web)
    assert kept.predecessors()[proxy] == {db}
    assert Plan(waves=plan.waves).predecessors()[proxy] == {a.resource for a in plan.waves[1]}  # by hand: waves
