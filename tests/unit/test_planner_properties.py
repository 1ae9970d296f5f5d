"""Properties of the planner over random small maps and random engine states (hypothesis).

Maps have a few configs with random links, `uses` (of attached volumes and of whole containers), attached
volumes (some prepared by an init), a network with endpoint links and `network_mode` sharing — all pointing
only at configs earlier in the list, so there is never a cycle. Engine states start from `reconciler.testing`'s
faithful engine and then lose containers, stop them (with a recoverable exit code or not), change their
environment or limits, or lose attached volumes.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.executor.converge import converge, update
from reconciler.model import combine_maps, load_map_dict
from reconciler.plan.desired import desired_state
from reconciler.plan.drift import Reason
from reconciler.plan.graph import closure, dependents
from reconciler.plan.planner import Op, Plan, PlanOptions, observed_scope, plan_down, plan_update
from reconciler.plan.render import render_plan
from reconciler.plan.resources import DesiredState, Kind, ResourceId
from reconciler.testing import EngineSnapshot, FakeEngine, state_json, synthesize

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CHANGES = ("same", "missing", "stopped", "stopped-for-good", "env", "limits")


@st.composite
def container_maps(draw: st.DrawFn) -> dict[str, Any]:
    """A valid, acyclic map: config i only refers to configs 0..i-1."""
    count = draw(st.integers(min_value=1, max_value=6))
    configs: dict[str, dict[str, Any]] = {}
    instances: dict[str, list[str]] = {}
    attached: list[str] = []  # aliases attached so far
    shares: list[str] = []  # configs that provide volumes to `uses`
    uses_network = False

    def ref(config: str) -> str:
        """A reference to one container of `config` (configs with instances need one named)."""
        names = instances[config]
        return f"{config}.{draw(st.sampled_from(names))}" if names else config

    for index in range(count):
        name = f"c{index}"
        earlier = list(configs)
        config: dict[str, Any] = {"image": draw(st.sampled_from(["app:1", "app:2", f"{name}"]))}
        instances[name] = ["a", "b"] if draw(st.booleans()) and index % 2 else []
        if instances[name]:
            config["instances"] = instances[name]
        if draw(st.booleans()):
            config["shares"] = [f"/shared/{name}"]
            shares.append(name)
        if draw(st.booleans()):
            config["attaches"] = [f"v{index}"]
            if draw(st.booleans()):
                config["user"] = draw(st.sampled_from([1000, "app", "1000:50"]))
            attached.append(f"v{index}")
        config["create_options"] = {"environment": {f"K{index}": draw(st.sampled_from(["x", "y"]))}}
        if draw(st.booleans()):
            config["host_config"] = {"mem_limit": draw(st.sampled_from(["32m", "64m"]))}
        uses: list[Any] = []
        available = [a for a in attached if a != f"v{index}"]
        if draw(st.booleans()) and available:
            alias = draw(st.sampled_from(available))
            uses.append([alias, "ro"] if draw(st.booleans()) else alias)
        providers = [s for s in shares if s != name]
        if draw(st.booleans()) and providers:
            uses.append(draw(st.sampled_from(providers)))
        if uses:
            config["uses"] = uses
        shares_stack = draw(st.integers(0, 3)) == 0 and bool(earlier)
        if shares_stack:
            config["network_mode"] = ref(draw(st.sampled_from(earlier)))
        else:
            linked = draw(st.lists(st.sampled_from(earlier), unique=True, max_size=2)) if earlier else []
            if linked:
                config["links"] = [[ref(other), f"l{other}"] for other in linked]
            if draw(st.booleans()):
                uses_network = True
                endpoint: dict[str, Any] = {}
                if draw(st.booleans()) and earlier:
                    endpoint["links"] = [[ref(draw(st.sampled_from(earlier))), "peer"]]
                config["networks"] = {"net": endpoint or None}
            if draw(st.booleans()):
                config["exposes"] = [8000 + index]
        configs[name] = config
    data: dict[str, Any] = {"name": "p", **configs}
    data["volumes"] = {f"v{i}": f"/vol/v{i}" for i in range(count)}
    if uses_network:
        data["networks"] = {"net": None}
    return data


def build(data: dict[str, Any]) -> DesiredState:
    state = desired_state(combine_maps([load_map_dict(copy.deepcopy(data))]))
    assert state.problems == ()
    return state


def mutate(state: DesiredState, snapshot: EngineSnapshot, changes: dict[str, str], lost: set[str]) -> None:
    for name, change in changes.items():
        if change == "missing":
            snapshot.drop_container(name)
            continue
        data = snapshot.container(name)
        if change == "stopped":
            data["State"] = state_json("exited", 1)
        elif change == "stopped-for-good":
            data["State"] = state_json("exited", -1)
        elif change == "env":
            data["Config"]["Env"].append("CHANGED=1")
        elif change == "limits":
            data["HostConfig"]["Memory"] = 12345678
    snapshot.volumes = [v for v in snapshot.volumes if v["Name"] not in lost]


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, str], set[str]]:
    data = draw(container_maps())
    state = build(data)
    changes = {name: draw(st.sampled_from(CHANGES)) for name in sorted(state.containers)}
    lost = set(draw(st.lists(st.sampled_from(sorted(state.volumes)), unique=True))) if state.volumes else set()
    return data, changes, lost


def observed_for(data: dict[str, Any], changes: dict[str, str], lost: set[str]) -> tuple[DesiredState, EngineSnapshot]:
    state = build(data)
    snapshot = synthesize(state)
    mutate(state, snapshot, changes, lost)
    return state, snapshot


def wave_index(plan: Plan) -> dict[ResourceId, int]:
    return {a.resource: number for number, wave in enumerate(plan.waves) for a in wave}


def assert_starts_only_after(plan: Plan, must_come_first: dict[ResourceId, set[ResourceId]]) -> None:
    """The executor starts an action once its `predecessors()` are done: everything that must come first
    has to be among them, transitively, and each predecessor is in an earlier wave."""
    before = plan.predecessors()
    waves = wave_index(plan)
    for rid, first in must_come_first.items():
        reached = closure(before, [rid]) - {rid}
        assert first <= reached, f"{rid} could start before {sorted(first - reached)}\n{render_plan(plan)}"
        assert all(waves[p] < waves[rid] for p in before[rid]), render_plan(plan)


@SETTINGS
@given(container_maps())
def test_engine_that_matches_the_map_gives_an_empty_plan(data: dict[str, Any]) -> None:
    state = build(data)
    plan = plan_update(state, synthesize(state).observed())
    assert plan.in_sync, render_plan(plan)
    assert plan_down(state, synthesize(state).observed()).blocked == ()


@SETTINGS
@given(scenarios())
def test_planning_is_deterministic(scenario: tuple[dict[str, Any], dict[str, str], set[str]]) -> None:
    first_state, first = observed_for(*scenario)
    second_state, second = observed_for(*scenario)
    plan = plan_update(first_state, first.observed())
    assert plan == plan_update(second_state, second.observed())
    assert plan == plan_update(first_state, first.observed())
    assert json.dumps(plan.as_dict()) == json.dumps(plan_update(second_state, second.observed()).as_dict())
    assert render_plan(plan) == render_plan(plan_update(second_state, second.observed()))


@SETTINGS
@given(scenarios())
def test_dependencies_with_work_come_in_earlier_waves(
    scenario: tuple[dict[str, Any], dict[str, str], set[str]],
) -> None:
    state, snapshot = observed_for(*scenario)
    plan = plan_update(state, snapshot.observed())
    waves = wave_index(plan)
    assert len(waves) == len(plan.actions)  # one action per resource
    for action in plan.actions:
        for dependency in closure(state.depends_on, [action.resource]) - {action.resource}:
            if dependency in waves:
                assert waves[dependency] < waves[action.resource], (
                    f"{dependency} (wave {waves[dependency]}) must come before {action.resource} "
                    f"(wave {waves[action.resource]})\n{render_plan(plan)}"
                )
    assert all(wave for wave in plan.waves)
    assert_starts_only_after(
        plan, {a.resource: (closure(state.depends_on, [a.resource]) - {a.resource}) & set(waves) for a in plan.actions}
    )


@SETTINGS
@given(scenarios())
def test_every_change_is_acted_on(scenario: tuple[dict[str, Any], dict[str, str], set[str]]) -> None:
    _, changes, lost = scenario
    state, snapshot = observed_for(*scenario)
    plan = plan_update(state, snapshot.observed())
    assert plan.blocked == ()
    assert plan.notes == ()
    for name, change in changes.items():
        found = plan.action_for(ResourceId(Kind.CONTAINER, name))
        if change == "missing":
            assert found is not None
            assert found.op is Op.CREATE
        elif change in ("env", "stopped-for-good"):
            assert found is not None
            assert found.op is Op.RECREATE
            wanted = Reason.ENV if change == "env" else Reason.EXITED
            assert wanted in {d.reason for d in found.reasons}
        elif change == "stopped":
            assert found is not None
            assert found.op in (Op.START, Op.RECREATE)
            assert Reason.STOPPED in {d.reason for d in found.reasons}
        elif change == "limits":
            assert found is not None
            assert Reason.LIMITS in {d.reason for d in found.reasons}
            assert Op.UPDATE in found.steps or found.op is Op.RECREATE
    for volume in lost:
        found = plan.action_for(ResourceId(Kind.VOLUME, volume))
        assert found is not None
        assert found.op is Op.CREATE
        init = ResourceId(Kind.VOLUME_INIT, f"{volume}.init")
        if init.name in state.inits:
            init_action = plan.action_for(init)
            assert init_action is not None
            assert init_action.op is Op.RUN


@SETTINGS
@given(scenarios())
def test_containers_that_changed_nothing_are_touched_only_by_a_cascade(
    scenario: tuple[dict[str, Any], dict[str, str], set[str]],
) -> None:
    _, changes, _ = scenario
    state, snapshot = observed_for(*scenario)
    plan = plan_update(state, snapshot.observed())
    for name, change in changes.items():
        rid = ResourceId(Kind.CONTAINER, name)
        found = plan.action_for(rid)
        if change != "same" or found is None:
            continue
        assert {d.reason for d in found.reasons} <= {Reason.DEPENDENCY, Reason.NETWORK_MODE}, render_plan(plan)
        touched = {d for d in closure(state.depends_on, [rid]) - {rid} if plan.action_for(d) is not None}
        assert touched, f"{name} is acted on although nothing it depends on changed"


@SETTINGS
@given(container_maps())
def test_down_removes_every_container_dependents_first(data: dict[str, Any]) -> None:
    state = build(data)
    plan = plan_down(state, synthesize(state).observed(), volumes=True)
    waves = wave_index(plan)
    assert set(waves) == (
        {ResourceId(Kind.CONTAINER, name) for name in state.containers}
        | {ResourceId(Kind.VOLUME_INIT, name) for name in state.inits}
        | {ResourceId(Kind.VOLUME, name) for name in state.volumes}
        | {ResourceId(Kind.NETWORK, name) for name in state.networks}
    )
    reverse = dependents(state.depends_on)
    for rid, wave in waves.items():
        for dependent in closure(reverse, [rid]) - {rid}:
            if dependent in waves:
                assert waves[dependent] < wave, f"{dependent} must go before {rid}\n{render_plan(plan)}"
    assert_starts_only_after(plan, {rid: (closure(reverse, [rid]) - {rid}) & set(waves) for rid in waves})


@SETTINGS
@given(scenarios(), st.booleans(), st.data())
def test_a_plan_of_one_container_is_the_same_from_a_look_at_what_it_reads(
    scenario: tuple[dict[str, Any], dict[str, str], set[str]], network_lost: bool, data: st.DataObject
) -> None:
    """The daemon heals one container from a look at its `observed_scope` (what it depends on, and who
    depends on that), not at every container of the maps: the plan must be the one a full look gives —
    a renewed network (every container on it follows) included."""
    state, snapshot = observed_for(*scenario)
    if network_lost:
        snapshot.networks = []
    target = ResourceId(Kind.CONTAINER, data.draw(st.sampled_from(sorted(state.containers))))
    planner = update(PlanOptions(targets=frozenset({target})))
    engine = FakeEngine(snapshot)
    full = converge(engine, state, planner, execute=False)
    narrow = converge(engine, state, planner, execute=False, look_at=observed_scope(state, [target]))
    assert narrow.plan == full.plan, f"{render_plan(narrow.plan)}\n---- a full look:\n{render_plan(full.plan)}"


def test_a_plan_of_one_container_that_renews_its_network_looks_at_every_container_on_it() -> None:
    """p.a's network is gone: creating it again recreates p.b as well, which p.a's scope never looks at."""
    net = {"networks": {"net": None}}
    state = build({"name": "p", **net, "a": {"image": "x", **net}, "b": {"image": "x", **net}})
    snapshot = synthesize(state)
    snapshot.networks = []
    target = ResourceId(Kind.CONTAINER, "p.a")
    assert observed_scope(state, [target]) == {"p.a"}
    plan = converge(
        FakeEngine(snapshot),
        state,
        update(PlanOptions(targets=frozenset({target}))),
        execute=False,
        look_at=observed_scope(state, [target]),
    ).plan
    assert {(a.op, a.resource.name) for a in plan.actions} == {
        (Op.CREATE, "p.net"),
        (Op.RECREATE, "p.a"),
        (Op.RECREATE, "p.b"),
    }, render_plan(plan)


def test_a_plan_of_one_container_sees_the_replacement_an_interrupted_recreate_left() -> None:
    """p.a's recreate was cut short after its replacement `p.a..next` ran: the narrow look must see it (by
    its name's suffix), or the plan would make another replacement instead of taking this one."""
    state = build({"name": "p", "a": {"image": "x"}, "b": {"image": "x"}})
    snapshot = synthesize(state)
    left = copy.deepcopy(snapshot.container("p.a"))
    left["Name"], left["Id"] = "/p.a..next", "f" * 64
    snapshot.containers.append(left)
    snapshot.drop_container("p.a")
    target = ResourceId(Kind.CONTAINER, "p.a")
    planner = update(PlanOptions(targets=frozenset({target})))
    engine = FakeEngine(snapshot)
    full = converge(engine, state, planner, execute=False).plan
    narrow = converge(engine, state, planner, execute=False, look_at=observed_scope(state, [target])).plan
    assert [(a.op, a.resource.name) for a in full.actions] == [(Op.ADOPT, "p.a")], render_plan(full)
    assert narrow == full, render_plan(narrow)
