"""Adopt, start ordering and external volumes without an engine: the planner on synthesised engine JSON
(reconciler.testing), the executor against the recording fake of our engine port (reconciler.testing.FakeEngine),
the model's integrity rules for the new keys.

- a foreign container (docker-map's under our name, compose's for the service) is taken over only with
  `adopt`, by the same create-first recreate: ours created, theirs stopped, ours started, theirs removed;
- without `adopt`, a running compose container blocks its service (two copies would share ports and data);
- `depends_on: {x: healthy}` orders the waves and makes the start wait for x's health;
- an external volume is mounted by its engine name, never created, and missing means blocked.
"""

from __future__ import annotations

import dataclasses
import textwrap
from typing import Any

import pytest

from reconciler.executor.apply import Executor, Outcome
from reconciler.executor.converge import Converged, converge, teardown, update
from reconciler.model import MapError, combine_maps, load_map_text
from reconciler.plan.desired import desired_state
from reconciler.plan.planner import Op, Plan, PlanOptions, plan_down, plan_update
from reconciler.plan.render import render_plan
from reconciler.plan.resources import DesiredState, Kind, ResourceId
from reconciler.testing import EngineSnapshot, FakeEngine, container_json, stranger_container_json, synthesize

COMPOSE_MAP = """
name: shop
compose_project: shop
volumes: {data: {external: shop_data}}
db:
  image: x
  uses: [{data: /var/lib/db}]
  healthcheck: {test: [CMD, "true"], interval: 1s}
web:
  image: x
  depends_on: {db: healthy}
"""


def desired(text: str) -> DesiredState:
    return desired_state(combine_maps([load_map_text(textwrap.dedent(text), "/tmp/m.yaml")]))


def ops(plan: Plan) -> dict[str, Op]:
    return {a.resource.name: a.op for a in plan.actions}


def compose_container(state: DesiredState, name: str, service: str, number: int = 1, **state_: Any) -> Any:
    """What `docker compose up` made for a service: its own name, compose's labels, none of ours."""
    spec = state.containers[f"shop.{service}"]
    data = container_json(spec, ident=f"{service}{number}".ljust(64, "c"))
    data["Name"] = f"/{name}"
    data["Config"]["Labels"] = {
        "com.docker.compose.project": "shop",
        "com.docker.compose.service": service,
        "com.docker.compose.container-number": str(number),
    }
    if state_.get("running") is False:
        data["State"]["Running"] = False
        data["State"]["Status"] = "exited"
    return data


def compose_engine(state: DesiredState) -> EngineSnapshot:
    snapshot = synthesize(state, containers=())
    snapshot.volumes.append({"Name": "shop_data", "Driver": "local", "Labels": None, "Options": None})
    snapshot.containers += [compose_container(state, "shop-db-1", "db"), compose_container(state, "shop-web-1", "web")]
    return snapshot


# --- planning -------------------------------------------------------------------------------------------------


def test_a_running_compose_project_blocks_its_services_until_adopted() -> None:
    state = desired(COMPOSE_MAP)
    plan = plan_update(state, compose_engine(state).observed())
    assert not plan.actions
    assert {b.resource.name: b.message for b in plan.blocked}["shop.db"] == (
        "compose container 'shop-db-1' (project shop, service db) runs this service: `reconciler adopt` takes it over"
    )


def test_adopt_takes_over_compose_s_containers_in_dependency_order() -> None:
    state = desired(COMPOSE_MAP)
    plan = plan_update(state, compose_engine(state).observed(), PlanOptions(adopt=True))
    assert [[a.resource.name for a in wave] for wave in plan.waves] == [["shop.db"], ["shop.web"]]
    assert ops(plan) == {"shop.db": Op.TAKE_OVER, "shop.web": Op.TAKE_OVER}
    assert plan.actions[0].observed_id == "db1".ljust(64, "c")
    assert "foreign owner: 'shop-db-1' → 'reconciler'" in render_plan(plan)


def test_adopt_of_a_target_takes_over_it_and_its_dependencies_only() -> None:
    state = desired(COMPOSE_MAP + "cache: {image: x}\n")
    snapshot = compose_engine(state)
    snapshot.containers.append(compose_container(state, "shop-cache-1", "cache"))
    web = frozenset({ResourceId(Kind.CONTAINER, "shop.web")})
    plan = plan_update(state, snapshot.observed(), PlanOptions(adopt=True, targets=web))
    assert ops(plan) == {"shop.db": Op.TAKE_OVER, "shop.web": Op.TAKE_OVER}  # cache is not in its scope


def test_a_take_over_is_blocked_by_a_third_container_on_its_host_port_but_not_by_theirs() -> None:
    state = desired(
        COMPOSE_MAP.replace("depends_on: {db: healthy}", "depends_on: {db: healthy}\n  exposes: [[80, 18650]]")
    )
    observed = compose_engine(state).observed()
    theirs = dataclasses.replace(observed, published={("0.0.0.0", "18650", "tcp"): "shop-web-1"})
    assert ops(plan_update(state, theirs, PlanOptions(adopt=True)))["shop.web"] is Op.TAKE_OVER
    taken = dataclasses.replace(observed, published={("0.0.0.0", "18650", "tcp"): "someone"})
    plan = plan_update(state, taken, PlanOptions(adopt=True))
    assert "shop.web" not in ops(plan)
    assert {b.resource.name: b.message for b in plan.blocked}["shop.web"] == (
        "host port 0.0.0.0:18650/tcp is already published by 'someone'"
    )


def test_a_stopped_compose_container_does_not_block_a_fresh_one() -> None:
    state = desired(COMPOSE_MAP)
    snapshot = compose_engine(state)
    snapshot.drop_container("shop-web-1")
    snapshot.containers.append(compose_container(state, "shop-web-1", "web", running=False))
    plan = plan_update(
        state, snapshot.observed(), PlanOptions(targets=frozenset({ResourceId(Kind.CONTAINER, "shop.web")}))
    )
    assert ops(plan).get("shop.web") is None  # blocked: it depends on db, which compose still runs
    snapshot.drop_container("shop-db-1")
    plan = plan_update(state, snapshot.observed())
    assert ops(plan) == {"shop.db": Op.CREATE, "shop.web": Op.CREATE}


def test_one_off_containers_and_other_projects_are_never_adopted() -> None:
    state = desired(COMPOSE_MAP)
    snapshot = synthesize(state, containers=())
    snapshot.volumes.append({"Name": "shop_data", "Driver": "local", "Labels": None, "Options": None})
    oneoff = compose_container(state, "shop-db-run-1", "db")
    oneoff["Config"]["Labels"]["com.docker.compose.oneoff"] = "True"
    other = compose_container(state, "other-db-1", "db")
    other["Config"]["Labels"]["com.docker.compose.project"] = "other"
    snapshot.containers += [oneoff, other]
    plan = plan_update(state, snapshot.observed(), PlanOptions(adopt=True))
    assert ops(plan) == {"shop.db": Op.CREATE, "shop.web": Op.CREATE}


def test_adopt_takes_over_a_stranger_under_our_name_but_never_our_own_container() -> None:
    state = desired("name: m\napp: {image: x}\n")
    snapshot = synthesize(state, containers=())
    snapshot.containers.append(stranger_container_json("m.app"))
    assert "`reconciler adopt` takes it over" in plan_update(state, snapshot.observed()).blocked[0].message
    assert ops(plan_update(state, snapshot.observed(), PlanOptions(adopt=True))) == {"m.app": Op.TAKE_OVER}
    snapshot.container("m.app")["Config"]["Labels"] = {"io.reconciler.self": "true"}
    plan = plan_update(state, snapshot.observed(), PlanOptions(adopt=True))
    assert not plan.actions
    assert "reconciler's own container" in plan.blocked[0].message


def test_a_missing_external_volume_blocks_and_is_never_created() -> None:
    state = desired(COMPOSE_MAP)
    snapshot = synthesize(state, containers=())
    plan = plan_update(state, snapshot.observed())
    assert "external volume 'shop_data' does not exist" in {b.resource.name: b.message for b in plan.blocked}["shop.db"]
    assert not any(a.resource.kind is Kind.VOLUME for a in plan.actions)


def test_down_with_volumes_never_removes_an_external_volume() -> None:
    state = desired(COMPOSE_MAP)
    snapshot = synthesize(state)
    snapshot.volumes.append({"Name": "shop_data", "Driver": "local", "Labels": None, "Options": None})
    plan = plan_down(state, snapshot.observed(), volumes=True)
    assert {a.resource.name for a in plan.actions} == {"shop.db", "shop.web"}
    assert not plan.blocked


def test_changing_start_order_never_recreates() -> None:
    state = desired(COMPOSE_MAP)
    snapshot = synthesize(state)
    snapshot.volumes.append({"Name": "shop_data", "Driver": "local", "Labels": None, "Options": None})
    relaxed = desired(COMPOSE_MAP.replace("depends_on: {db: healthy}", "depends_on: [db]"))
    assert plan_update(relaxed, snapshot.observed()).in_sync


# --- executing ------------------------------------------------------------------------------------------------


def adopt(engine: FakeEngine, state: DesiredState, health_gate: float | None = 5) -> Converged:
    executor = Executor(engine, concurrency=1, health_gate=health_gate, sleep=lambda _s: None)
    return converge(engine, state, update(PlanOptions(adopt=True)), executor=executor)


def test_take_over_is_the_create_first_recreate() -> None:
    state = desired(COMPOSE_MAP)
    engine = FakeEngine(compose_engine(state))
    engine.health = {"shop.db..next": "healthy", "shop.web..next": "healthy"}
    done = adopt(engine, state)
    assert done.ok, [r.error for r in done.result.failed]
    db = [c for c in engine.ops() if "db" in c[1]]
    assert [c[0] for c in db] == ["create", "stop", "start", "remove", "rename"]
    assert db[1][1] == "shop-db-1"  # theirs stopped only once ours exists
    assert {"shop.db", "shop.web"} <= engine.names()
    assert not {"shop-db-1", "shop-web-1"} & engine.names()
    # Our db was healthy before our web started (waves, then the start waits for health).
    starts = [c[1] for c in engine.ops("start")]
    assert starts == ["shop.db..next", "shop.web..next"]


def test_a_failed_start_of_ours_leaves_theirs_running() -> None:
    state = desired(COMPOSE_MAP)
    engine = FakeEngine(compose_engine(state))
    engine.fail_start = {"shop.db..next"}
    done = adopt(engine, state)
    assert not done.ok
    failed = {r.action.resource.name: r for r in done.result.results}
    assert failed["shop.db"].outcome is Outcome.FAILED
    assert "the old container keeps running" in (failed["shop.db"].error or "")
    assert failed["shop.web"].outcome is Outcome.SKIPPED
    assert engine.container("shop-db-1")["State"]["Running"] is True
    assert engine.container("shop-web-1")["State"]["Running"] is True
    assert engine.names() == {"shop-db-1", "shop-web-1"}


def test_ours_restarting_under_its_restart_policy_is_a_failed_start_and_theirs_runs_again() -> None:
    """The engine reports a container that exits at once but has a restart policy as running between its
    restarts: a take-over looks for a while (`TAKE_OVER_SETTLE`) and counts the restarts."""
    state = desired(COMPOSE_MAP)
    engine = FakeEngine(compose_engine(state))
    engine.health = {"shop.db..next": "healthy"}

    def restarting(name: str) -> None:
        if name == "shop.web..next":
            found = engine.container(name)
            found["State"] = {**found["State"], "Status": "restarting", "Restarting": True, "ExitCode": 3}
            found["RestartCount"] = 1

    engine.after_start = restarting
    done = adopt(engine, state)
    web = next(r for r in done.result.results if r.action.resource.name == "shop.web")
    assert web.outcome is Outcome.FAILED
    assert "the replacement is restarting (exit code 3); rolled back, the old container keeps running" in (
        web.error or ""
    )
    assert engine.container("shop-web-1")["State"]["Running"] is True
    assert "shop.web..next" not in engine.names()
    assert "shop.db" in engine.names()


def test_a_dependency_that_never_turns_healthy_keeps_the_dependent_from_starting() -> None:
    state = desired(COMPOSE_MAP)
    engine = FakeEngine(synthesize(state, containers=()))
    engine.snapshot.volumes.append({"Name": "shop_data", "Driver": "local", "Labels": None, "Options": None})
    engine.health = {"shop.db": "unhealthy"}
    executor = Executor(engine, concurrency=1, health_gate=None, sleep=lambda _s: None)
    done = converge(engine, state, update(), executor=executor)
    web = next(r for r in done.result.results if r.action.resource.name == "shop.web")
    assert web.outcome is Outcome.FAILED
    assert web.error == "shop.web not started: dependency shop.db is not healthy (unhealthy)"
    assert ("start", "shop.web") not in engine.calls


def test_teardown_leaves_external_volumes() -> None:
    state = desired(COMPOSE_MAP)
    snapshot = synthesize(state)
    snapshot.volumes.append({"Name": "shop_data", "Driver": "local", "Labels": None, "Options": None})
    engine = FakeEngine(snapshot)
    done = converge(engine, state, teardown(volumes=True), executor=Executor(engine))
    assert done.ok
    assert not engine.ops("remove_volume")


# --- the model ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("app: {image: x, depends_on: {dbb: healthy}}\ndb: {image: x}\n", "depends_on unknown config 'dbb'"),
        ("app: {image: x, depends_on: {db: ready}}\ndb: {image: x}\n", "'started' or 'healthy'"),
        ("app: {image: x, depends_on: [db]}\ndb: {image: x, depends_on: [app]}\n", "dependency cycle"),
        ("volumes: {d: {default_path: /d, external: x_d}}\napp: {image: x, attaches: d}\n", "`uses` it"),
        ("volumes: {d: {external: x_d}}\napp: {image: x, uses: d}\n", "external volume 'd' has no mount path"),
    ],
)
def test_new_keys_are_checked_at_load(body: str, message: str) -> None:
    with pytest.raises(MapError) as err:
        load_map_text("name: m\n" + body, "/tmp/m.yaml")
    assert message in str(err.value)
