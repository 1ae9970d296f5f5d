"""The planner: drift → ordered actions in parallel waves (DESIGN §4, §5), and the teardown plan.

Desired states come from small maps; observed states from `reconciler.testing.synthesize`, which plays an
engine that did exactly what the map says (inspect JSON shaped like the recorded fixtures), then one thing
is changed.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from reconciler.model import MapSet, combine_maps, load_map_files, load_map_text
from reconciler.plan import naming
from reconciler.plan.desired import desired_state
from reconciler.plan.drift import Drift, Fix, Reason
from reconciler.plan.graph import TargetError, closure, select_targets
from reconciler.plan.observed import ObservedState
from reconciler.plan.planner import Action, Op, Plan, PlanOptions, plan_down, plan_update
from reconciler.plan.render import render_plan
from reconciler.plan.resources import DesiredState, Kind, ResourceId
from reconciler.testing import (
    EngineSnapshot,
    container_json,
    image_json,
    network_json,
    state_json,
    stranger_container_json,
    synthesize,
    volume_json,
)
from tests.recorded import SEED_MAP

ROOT = Path(__file__).resolve().parents[2]


def load(*texts: str) -> MapSet:
    return combine_maps([load_map_text(textwrap.dedent(t)) for t in texts])


def desired(*texts: str) -> DesiredState:
    return desired_state(load(*texts))


def c(name: str) -> ResourceId:
    return ResourceId(Kind.CONTAINER, name)


def v(name: str) -> ResourceId:
    return ResourceId(Kind.VOLUME, name)


def i(name: str) -> ResourceId:
    return ResourceId(Kind.VOLUME_INIT, name)


def n(name: str) -> ResourceId:
    return ResourceId(Kind.NETWORK, name)


def img(ref: str) -> ResourceId:
    return ResourceId(Kind.IMAGE, ref)


EMPTY = ObservedState()


def wave_of(plan: Plan) -> dict[ResourceId, int]:
    return {a.resource: number for number, wave in enumerate(plan.waves) for a in wave}


def ops(plan: Plan) -> dict[ResourceId, Op]:
    return {a.resource: a.op for a in plan.actions}


def action(plan: Plan, rid: ResourceId) -> Action:
    found = plan.action_for(rid)
    assert found is not None, f"no action for {rid}; plan:\n{render_plan(plan)}"
    return found


def blocked(plan: Plan) -> dict[ResourceId, str]:
    return {b.resource: b.message for b in plan.blocked}


# --- an empty host --------------------------------------------------------------------------------------------


def test_empty_host_creates_everything_in_dependency_order() -> None:
    plan = plan_update(desired(SEED_MAP), EMPTY)
    assert not plan.in_sync
    assert [[str(a.resource) for a in wave] for wave in plan.waves] == [
        [
            "image nginx:latest",
            "image uwsgi:latest",
            "volume main.app_log",
            "volume main.nginx_log",
            "volume main.uwsgi_log",
            "volume main.uwsgi_socket",
        ],
        ["volume-init main.app_log.init", "volume-init main.uwsgi_log.init", "volume-init main.uwsgi_socket.init"],
        ["container main.uwsgi"],  # the provider of the socket volume first (docker-map's order)
        ["container main.nginx"],
    ]
    assert plan.blocked == ()
    assert plan.notes == ()


@pytest.mark.parametrize(
    ("rid", "op", "steps", "reason"),
    [
        (img("nginx:latest"), Op.PULL, (Op.PULL,), Drift(Reason.MISSING, "image", "nginx:latest", None, Fix.CREATE)),
        (
            v("main.nginx_log"),
            Op.CREATE,
            (Op.CREATE,),
            Drift(Reason.MISSING, "volume", "main.nginx_log", None, Fix.CREATE),
        ),
        (i("main.app_log.init"), Op.RUN, (Op.RUN,), Drift(Reason.MISSING, "init", "ran", None, Fix.CREATE)),
        (
            c("main.nginx"),
            Op.CREATE,
            (Op.CREATE, Op.START),
            Drift(Reason.MISSING, "container", "main.nginx", None, Fix.CREATE),
        ),
    ],
)
def test_empty_host_actions(rid: ResourceId, op: Op, steps: tuple[Op, ...], reason: Drift) -> None:
    plan = plan_update(desired(SEED_MAP), EMPTY)
    found = action(plan, rid)
    assert (found.op, found.steps, found.reasons, found.observed_id) == (op, steps, (reason,), None)


NETWORK_MAP = """
name: n
networks: {app: null}
volumes: {data: /data}
db: {networks: app, attaches: data, user: 999}
web: {networks: {app: {links: [[db, database]]}}}
"""


def test_networks_volumes_images_before_inits_before_containers() -> None:
    plan = plan_update(desired(NETWORK_MAP), EMPTY)
    waves = wave_of(plan)
    assert waves[n("n.app")] == waves[v("n.data")] == waves[img("db:latest")] == 0
    assert waves[i("n.data.init")] == 1
    assert waves[c("n.db")] == 2
    assert waves[c("n.web")] == 3
    assert action(plan, n("n.app")).op is Op.CREATE


# --- in sync ------------------------------------------------------------------------------------------------


CASCADE_MAP = """
name: c
networks: {app: null}
volumes: {sock: /sock}
db: {shares: /data, attaches: sock, networks: app}
net: {network_mode: db}
net2: {network_mode: net}
vf: {uses: db}
legacy: {links: [[db, database]]}
onnet: {networks: {app: {links: [[db, database]]}}}
reader: {uses: sock}
plain: {}
"""


@pytest.mark.parametrize("text", [SEED_MAP, NETWORK_MAP, CASCADE_MAP], ids=["seed", "network", "cascade"])
def test_host_matching_the_map_is_in_sync(text: str) -> None:
    state = desired(text)
    plan = plan_update(state, synthesize(state).observed())
    assert plan.in_sync, render_plan(plan)
    assert plan == Plan()
    assert render_plan(plan) == "in sync: nothing to do"


@pytest.mark.parametrize(
    "path",
    [
        "tests/maps/compat/docs_yaml_example.yaml",
        "tests/maps/compat/map_data_1.yaml",
        "tests/maps/compat/map_data_1_new.yaml",
        "tests/maps/every_key.yaml",
        "config/example.yaml",
    ],
)
def test_real_maps_in_sync_against_an_engine_that_matches_them(path: str) -> None:
    state = desired_state(load_map_files([ROOT / path]))
    assert state.problems == ()
    plan = plan_update(state, synthesize(state).observed())
    assert plan.in_sync, render_plan(plan)


def test_synthesized_engine_is_not_trivially_in_sync() -> None:
    """The fake engine is faithful enough to be noticed when it differs: drop one container, change one env."""
    state = desired(SEED_MAP)
    snapshot = synthesize(state)
    snapshot.drop_container("main.nginx")
    snapshot.container("main.uwsgi")["Config"]["Env"].append("EXTRA=1")
    plan = plan_update(state, snapshot.observed())
    assert ops(plan) == {c("main.nginx"): Op.CREATE, c("main.uwsgi"): Op.RECREATE}
    assert action(plan, c("main.uwsgi")).reasons == (Drift(Reason.ENV, "EXTRA", None, "1", Fix.RECREATE),)


# --- strangers ---------------------------------------------------------------------------------------------


def test_stranger_container_is_blocked_and_so_are_its_dependents() -> None:
    state = desired(SEED_MAP)
    snapshot = EngineSnapshot(containers=[stranger_container_json("main.uwsgi")])
    plan = plan_update(state, snapshot.observed())
    messages = blocked(plan)
    assert "container named 'main.uwsgi' exists without reconciler's labels" in messages[c("main.uwsgi")]
    assert messages[c("main.nginx")] == "depends on container main.uwsgi, which is blocked"
    assert c("main.uwsgi") not in ops(plan)
    assert c("main.nginx") not in ops(plan)
    # Everything that does not depend on the stranger still happens.
    assert ops(plan)[v("main.uwsgi_socket")] is Op.CREATE
    assert ops(plan)[i("main.uwsgi_socket.init")] is Op.RUN
    assert not plan.in_sync
    text = render_plan(plan)
    assert "blocked (not touched)" in text
    assert "main.uwsgi" in text


def test_stranger_in_an_otherwise_matching_host_blocks_only_itself() -> None:
    state = desired(SEED_MAP)
    snapshot = synthesize(state)
    snapshot.drop_container("main.uwsgi")
    snapshot.containers.append(stranger_container_json("main.uwsgi"))
    plan = plan_update(state, snapshot.observed())
    assert list(blocked(plan)) == [c("main.uwsgi")]
    assert plan.waves == ()  # nginx is in sync: nothing to block


def test_stranger_volume_blocks_its_init_and_every_container_mounting_it() -> None:
    state = desired(SEED_MAP)
    stranger = volume_json(state.volumes["main.uwsgi_socket"], labelled=False)
    plan = plan_update(state, EngineSnapshot(volumes=[stranger]).observed())
    messages = blocked(plan)
    assert "volume named 'main.uwsgi_socket' exists without reconciler's labels" in messages[v("main.uwsgi_socket")]
    assert messages[c("main.uwsgi")] == "depends on volume main.uwsgi_socket, which is blocked"
    assert "blocked" in messages[c("main.nginx")]
    acted = ops(plan)
    assert v("main.uwsgi_socket") not in acted
    assert i("main.uwsgi_socket.init") not in acted  # never chown someone else's volume
    assert acted[i("main.app_log.init")] is Op.RUN


def test_stranger_network_blocks_containers_joining_it() -> None:
    state = desired(NETWORK_MAP)
    stranger = network_json(state.networks["n.app"], labelled=False)
    plan = plan_update(state, EngineSnapshot(networks=[stranger]).observed())
    messages = blocked(plan)
    assert "network named 'n.app' exists without reconciler's labels" in messages[n("n.app")]
    assert messages[c("n.db")] == "depends on network n.app, which is blocked"
    assert c("n.web") in messages
    assert n("n.app") not in ops(plan)


def test_stranger_holding_an_init_name_is_blocked() -> None:
    state = desired(SEED_MAP)
    plan = plan_update(state, EngineSnapshot(containers=[stranger_container_json("main.app_log.init")]).observed())
    messages = blocked(plan)
    assert "'main.app_log.init'" in messages[i("main.app_log.init")]
    assert messages[c("main.uwsgi")] == "depends on volume-init main.app_log.init, which is blocked"


# --- orphans --------------------------------------------------------------------------------------------------

ORPHAN_V1 = """
name: o
networks: {old_net: null}
volumes: {old_data: /data}
web: {}
old: {attaches: old_data, user: 1000, networks: old_net}
"""
ORPHAN_V2 = """
name: o
web: {}
"""


def orphan_host() -> EngineSnapshot:
    return synthesize(desired(ORPHAN_V1))


def test_orphans_are_noted_not_removed() -> None:
    plan = plan_update(desired(ORPHAN_V2), orphan_host().observed())
    assert plan.waves == ()
    notes = {note.resource: note.message for note in plan.notes}
    assert notes == {
        c("o.old"): "orphan: no longer in any map (remove it with --prune)",
        i("o.old_data.init"): "orphan: no longer in any map (remove it with --prune)",
        n("o.old_net"): "orphan: no longer in any map (remove it with --prune)",
        v("o.old_data"): "orphan: no longer in any map (remove it with --prune --volumes)",
    }
    assert plan.in_sync  # notes are reported, but apply would not change anything: not drift


def test_prune_removes_orphans_containers_first_networks_after_volumes_only_when_asked() -> None:
    plan = plan_update(desired(ORPHAN_V2), orphan_host().observed(), PlanOptions(prune=True))
    assert ops(plan) == {c("o.old"): Op.REMOVE, i("o.old_data.init"): Op.REMOVE, n("o.old_net"): Op.REMOVE}
    waves = wave_of(plan)
    assert waves[c("o.old")] == waves[i("o.old_data.init")] == 0
    assert waves[n("o.old_net")] == 1
    assert [note.resource for note in plan.notes] == [v("o.old_data")]

    plan = plan_update(desired(ORPHAN_V2), orphan_host().observed(), PlanOptions(prune=True, prune_volumes=True))
    assert ops(plan)[v("o.old_data")] is Op.REMOVE
    assert wave_of(plan)[v("o.old_data")] > wave_of(plan)[i("o.old_data.init")]
    assert plan.notes == ()
    # prune_volumes alone removes nothing.
    plan = plan_update(desired(ORPHAN_V2), orphan_host().observed(), PlanOptions(prune_volumes=True))
    assert plan.waves == ()


def test_orphan_removal_comes_before_the_work_that_may_need_its_name_or_port() -> None:
    snapshot = orphan_host()
    snapshot.drop_container("o.web")
    plan = plan_update(desired(ORPHAN_V2), snapshot.observed(), PlanOptions(prune=True))
    waves = wave_of(plan)
    assert waves[c("o.old")] < waves[c("o.web")]
    assert action(plan, c("o.web")).op is Op.CREATE


def test_removed_instance_is_an_orphan() -> None:
    old = desired("name: o\nweb: {instances: [a, b]}\n")
    new = desired("name: o\nweb: {instances: [a]}\n")
    plan = plan_update(new, synthesize(old).observed())
    assert [(note.resource, note.message) for note in plan.notes] == [
        (c("o.web.b"), "orphan: no longer in any map (remove it with --prune)")
    ]
    assert plan.waves == ()
    pruned = plan_update(new, synthesize(old).observed(), PlanOptions(prune=True))
    assert ops(pruned) == {c("o.web.b"): Op.REMOVE}


def test_objects_of_maps_not_loaded_and_unlabelled_objects_are_never_orphans() -> None:
    other = synthesize(desired(ORPHAN_V1.replace("name: o", "name: elsewhere")))
    snapshot = synthesize(desired(ORPHAN_V2))
    snapshot.containers += [*other.containers, stranger_container_json("o.stray")]
    snapshot.volumes += other.volumes
    snapshot.networks += other.networks
    plan = plan_update(desired(ORPHAN_V2), snapshot.observed(), PlanOptions(prune=True, prune_volumes=True))
    assert plan.in_sync, render_plan(plan)


def test_leftover_replacement_is_always_removed() -> None:
    state = desired(ORPHAN_V2)
    snapshot = synthesize(state)
    leftover = container_json(state.containers["o.web"], ident="f" * 64)
    leftover["Name"] = "/o.web..next"
    snapshot.containers.append(leftover)
    plan = plan_update(state, snapshot.observed())
    found = action(plan, c(naming.replacement_name("o.web")))
    assert (found.op, found.observed_id) == (Op.REMOVE, "f" * 64)
    assert ops(plan) == {c("o.web..next"): Op.REMOVE}


# --- targets ----------------------------------------------------------------------------------------------------

TARGET_MAPS = (
    """
    name: site
    groups: {apps: [web, worker.one]}
    web: {}
    worker: {instances: [one, two]}
    db: {}
    """,
    """
    name: ops
    monitor: {links: [[probe, p]]}
    probe: {}
    """,
)


@pytest.mark.parametrize(
    ("targets", "expected"),
    [
        (["web"], {"site.web"}),
        (["worker"], {"site.worker.one", "site.worker.two"}),
        (["worker.two"], {"site.worker.two"}),
        (["site.worker"], {"site.worker.one", "site.worker.two"}),
        (["site.worker.one"], {"site.worker.one"}),
        (["apps"], {"site.web", "site.worker.one"}),
        (["site.apps"], {"site.web", "site.worker.one"}),
        (["monitor"], {"ops.monitor"}),
        (["ops.probe", "db"], {"ops.probe", "site.db"}),
        ([], set()),
    ],
)
def test_select_targets(targets: list[str], expected: set[str]) -> None:
    assert select_targets(load(*TARGET_MAPS), targets) == {c(name) for name in expected}


@pytest.mark.parametrize(
    "target",
    ["nope", "worker.three", "site.nope", "web.x", "site", "site.worker.one.extra", "ops.web", "site.monitor"],
)
def test_unknown_target_raises(target: str) -> None:
    with pytest.raises(TargetError, match=f"unknown target '{target}'"):
        select_targets(load(*TARGET_MAPS), ["web", target])


def test_target_pulls_in_its_dependencies_only() -> None:
    maps = load(SEED_MAP)
    state = desired_state(maps)
    plan = plan_update(state, EMPTY, PlanOptions(targets=frozenset(select_targets(maps, ["uwsgi"]))))
    acted = set(ops(plan))
    assert c("main.uwsgi") in acted
    assert {v("main.uwsgi_socket"), i("main.uwsgi_socket.init"), img("uwsgi:latest")} <= acted
    # nginx and what only nginx needs stay out.
    assert acted.isdisjoint({c("main.nginx"), v("main.nginx_log"), img("nginx:latest")})
    # nginx needs uwsgi: targeting nginx brings the whole map.
    plan = plan_update(state, EMPTY, PlanOptions(targets=frozenset(select_targets(maps, ["nginx"]))))
    assert set(ops(plan)) == set(state.all_ids())


def test_targets_leave_out_orphans_and_other_work() -> None:
    maps = load(ORPHAN_V2)
    snapshot = orphan_host()
    snapshot.container("o.web")["Config"]["Env"].append("X=1")
    options = PlanOptions(targets=frozenset({c("o.web")}), prune=True)
    plan = plan_update(desired_state(maps), snapshot.observed(), options)
    assert ops(plan) == {c("o.web"): Op.RECREATE}
    assert plan.notes == ()


def test_closure_of_targets() -> None:
    state = desired(CASCADE_MAP)
    assert closure(state.depends_on, [c("c.net2")]) == {
        c("c.net2"),
        img("net2:latest"),
        c("c.net"),
        img("net:latest"),
        c("c.db"),
        img("db:latest"),
        v("c.sock"),
        n("c.app"),
    }


def test_unbuildable_dependency_of_a_target_is_blocked_with_its_dependents() -> None:
    """Without targets, a container that cannot be built blocks its dependents. A target that depends on it
    must not be created either (it would link to a container that cannot exist), and the reason must show."""
    maps = load(
        """
        name: m
        volumes: {data: /data}
        host: {data: {other: /srv/other}}
        db: {binds: [data]}
        web: {links: db}
        """
    )
    state = desired_state(maps)
    assert [rid for rid, _ in state.problems] == [c("m.db")]
    everything = plan_update(state, EMPTY)
    assert set(blocked(everything)) == {c("m.db"), c("m.web")}

    targeted = plan_update(state, EMPTY, PlanOptions(targets=frozenset(select_targets(maps, ["web"]))))
    assert c("m.web") not in ops(targeted)
    assert set(blocked(targeted)) == {c("m.db"), c("m.web")}


def test_container_that_cannot_be_built_now_is_not_an_orphan() -> None:
    """A config still in the map whose container cannot be built at the moment (here: a typo in a per-instance
    host path) is blocked — "not touched". It must not also be called an orphan ("no longer in any map"), and
    `prune` must not remove the running container."""
    text = """
        name: m
        volumes: {data: /data}
        host: {data: {one: /srv/one, two: /srv/two}}
        db: {instances: [one, two], binds: [data]}
    """
    before = desired(text)
    after = desired(text.replace("two: /srv/two", "tow: /srv/two"))
    assert [rid for rid, _ in after.problems] == [c("m.db.two")]
    host = synthesize(before).observed()

    plan = plan_update(after, host)
    assert "no host path for volume alias 'data'" in blocked(plan)[c("m.db.two")]
    assert [note.message for note in plan.notes if note.resource == c("m.db.two")] == []

    pruned = plan_update(after, host, PlanOptions(prune=True, prune_volumes=True))
    assert c("m.db.two") not in ops(pruned)
    assert c("m.db.two") in blocked(pruned)


# --- cascade ----------------------------------------------------------------------------------------------------


def cascade_host(change: str = "env") -> tuple[DesiredState, EngineSnapshot]:
    state = desired(CASCADE_MAP)
    snapshot = synthesize(state)
    if change == "env":
        snapshot.container("c.db")["Config"]["Env"].append("CHANGED=1")
    elif change == "missing":
        snapshot.drop_container("c.db")
    return state, snapshot


def dependency(name: str, fix: Fix) -> Drift:
    return Drift(Reason.DEPENDENCY, name, "follows its recreation", "stale", fix)


@pytest.mark.parametrize("change", ["env", "missing"])
def test_cascade_of_a_recreated_or_created_container(change: str) -> None:
    state, snapshot = cascade_host(change)
    plan = plan_update(state, snapshot.observed())
    assert ops(plan) == {
        c("c.db"): Op.CREATE if change == "missing" else Op.RECREATE,
        c("c.net"): Op.RECREATE,  # shares db's network stack
        c("c.net2"): Op.RECREATE,  # shares net's: follows net's recreation
        c("c.vf"): Op.RECREATE,  # volumes_from db
        c("c.legacy"): Op.RECREATE,  # a legacy link is bound to the old container
        c("c.onnet"): Op.RESTART,  # a link on a user network only needs a restart
    }
    net_reasons = action(plan, c("c.net")).reasons
    assert net_reasons[-1] == dependency("c.db", Fix.RECREATE)
    if change == "missing":  # the stack it shares is gone: its own drift says so too
        assert [d.reason for d in net_reasons] == [Reason.NETWORK_MODE, Reason.DEPENDENCY]
    else:
        assert len(net_reasons) == 1
    assert action(plan, c("c.net2")).reasons == (dependency("c.net", Fix.RECREATE),)
    assert action(plan, c("c.onnet")).reasons == (dependency("c.db", Fix.RESTART),)
    assert action(plan, c("c.onnet")).steps == (Op.RESTART,)
    waves = wave_of(plan)
    for follower in ("c.net", "c.vf", "c.legacy", "c.onnet"):
        assert waves[c(follower)] > waves[c("c.db")]
    assert waves[c("c.net2")] > waves[c("c.net")]
    # reader uses an attached volume of db (a named volume survives db's recreation); plain is unrelated.
    assert c("c.reader") not in ops(plan)
    assert c("c.plain") not in ops(plan)


def test_cascade_restarts_only_running_dependents() -> None:
    state, snapshot = cascade_host()
    snapshot.container("c.onnet")["State"] = state_json("exited", 0)
    plan = plan_update(state, snapshot.observed())
    # It was stopped: it is started (after db), not restarted.
    found = action(plan, c("c.onnet"))
    assert (found.op, found.steps) == (Op.START, (Op.START,))
    assert [d.reason for d in found.reasons] == [Reason.STOPPED]
    assert wave_of(plan)[c("c.onnet")] > wave_of(plan)[c("c.db")]


def test_cascade_adds_to_a_dependent_s_own_drift() -> None:
    state, snapshot = cascade_host()
    snapshot.container("c.net")["Config"]["Env"].append("OWN=1")
    snapshot.container("c.onnet")["HostConfig"]["RestartPolicy"] = {"Name": "always", "MaximumRetryCount": 0}
    plan = plan_update(state, snapshot.observed())
    net = action(plan, c("c.net"))
    assert net.op is Op.RECREATE
    assert net.steps == (Op.RECREATE,)
    assert [d.reason for d in net.reasons] == [Reason.ENV, Reason.DEPENDENCY]
    onnet = action(plan, c("c.onnet"))
    assert (onnet.op, onnet.steps) == (Op.RESTART, (Op.UPDATE, Op.RESTART))
    assert [d.reason for d in onnet.reasons] == [Reason.RESTART_POLICY, Reason.DEPENDENCY]


def test_no_cascade_when_turned_off() -> None:
    state, snapshot = cascade_host()
    plan = plan_update(state, snapshot.observed(), PlanOptions(cascade=False))
    assert ops(plan) == {c("c.db"): Op.RECREATE}


def test_recreated_network_recreates_its_containers() -> None:
    state, snapshot = cascade_host("none")
    net = next(x for x in snapshot.networks if x["Name"] == "c.app")
    net["Internal"] = True
    plan = plan_update(state, snapshot.observed())
    assert ops(plan)[n("c.app")] is Op.RECREATE
    assert ops(plan)[c("c.db")] is Op.RECREATE
    assert action(plan, c("c.db")).reasons == (dependency("c.app", Fix.RECREATE),)
    assert wave_of(plan)[c("c.db")] > wave_of(plan)[n("c.app")]


def test_dependents_of_an_unchanged_container_are_left_alone() -> None:
    state, snapshot = cascade_host("none")
    # A restart policy changed by hand is updated in place: db keeps its identity, dependents stay as they are.
    snapshot.container("c.db")["HostConfig"]["RestartPolicy"] = {"Name": "always", "MaximumRetryCount": 0}
    plan = plan_update(state, snapshot.observed())
    assert ops(plan) == {c("c.db"): Op.UPDATE}


EXEC_MAP = """
name: x
networks: {app: null}
db: {networks: app}
legacy: {links: db, exec_commands: [run-worker]}
onnet: {networks: {app: {links: [db]}}, exec_commands: [run-worker]}
"""


@pytest.mark.parametrize(("name", "op"), [("x.legacy", Op.RECREATE), ("x.onnet", Op.RESTART)])
def test_cascaded_recreate_or_restart_does_not_run_exec_commands_twice(name: str, op: Op) -> None:
    """A recreate or restart runs the container's exec commands itself (the executor does, and the drift rules
    drop a missing exec command when the container is recreated anyway). A cascade onto a container that also
    misses an exec command must not add a separate EXEC step: the command would be started twice."""
    state = desired(EXEC_MAP)
    snapshot = synthesize(state)
    snapshot.container("x.db")["Config"]["Env"].append("X=1")
    snapshot.processes[snapshot.container(name)["Id"]] = ("/bin/sh",)  # run-worker is not running
    plan = plan_update(state, snapshot.observed())
    found = action(plan, c(name))
    assert found.op is op
    assert found.steps == (op,)


# --- op and steps per drift ----------------------------------------------------------------------------------


def single(
    text: str = "name: s\nweb: {host_config: {mem_limit: 64m}, exec_commands: [run-worker]}\n",
) -> tuple[DesiredState, EngineSnapshot]:
    state = desired(text)
    return state, synthesize(state)


@pytest.mark.parametrize(
    ("mutate", "op", "steps"),
    [
        (lambda d: d["HostConfig"].update(Memory=1), Op.UPDATE, (Op.UPDATE,)),
        (lambda d: d["HostConfig"].update(RestartPolicy={"Name": "always"}), Op.UPDATE, (Op.UPDATE,)),
        (lambda d: d.update(State=state_json("exited", 1)), Op.START, (Op.START,)),
        (
            lambda d: (d.update(State=state_json("exited", 1)), d["HostConfig"].update(Memory=1)),
            Op.START,
            (Op.UPDATE, Op.START),
        ),
        (lambda d: d.update(State=state_json("exited", -1)), Op.RECREATE, (Op.RECREATE,)),
        (
            lambda d: (d["HostConfig"].update(Memory=1), d["Config"].update(User="nobody")),
            Op.RECREATE,
            (Op.RECREATE,),
        ),
    ],
    ids=["limits", "restart-policy", "stopped", "stopped-and-limits", "non-recoverable", "limits-and-recreate"],
)
def test_op_and_steps(mutate: Any, op: Op, steps: tuple[Op, ...]) -> None:
    state, snapshot = single()
    mutate(snapshot.container("s.web"))
    plan = plan_update(state, snapshot.observed())
    found = action(plan, c("s.web"))
    assert (found.op, found.steps) == (op, steps)
    assert found.observed_id == snapshot.container("s.web")["Id"]


def test_missing_exec_command_is_run_and_combined_with_an_update() -> None:
    state, snapshot = single()
    web_id = snapshot.container("s.web")["Id"]
    snapshot.processes[web_id] = ("/bin/sh",)
    snapshot.execs[web_id] = ()  # the exec instance ended too
    plan = plan_update(state, snapshot.observed())
    found = action(plan, c("s.web"))
    assert (found.op, found.steps) == (Op.EXEC, (Op.EXEC,))
    assert found.reasons == (Drift(Reason.EXEC, "run-worker", "running", None, Fix.EXEC),)
    snapshot.container("s.web")["HostConfig"]["Memory"] = 1
    found = action(plan_update(state, snapshot.observed()), c("s.web"))
    assert (found.op, found.steps) == (Op.UPDATE, (Op.UPDATE, Op.EXEC))


# --- images ----------------------------------------------------------------------------------------------------


def test_images_are_pulled_only_when_missing_unless_asked() -> None:
    state, snapshot = single("name: s\nweb: {image: app:1}\n")
    assert plan_update(state, snapshot.observed()).in_sync
    plan = plan_update(state, snapshot.observed(), PlanOptions(pull=True))
    assert ops(plan) == {img("app:1"): Op.PULL}
    assert action(plan, img("app:1")).reasons == (Drift(Reason.IMAGE, "pull", "newest", "local", Fix.UPDATE),)


def test_tag_moved_to_a_new_image_recreates_the_container() -> None:
    state, snapshot = single("name: s\nweb: {image: app:1}\n")
    old = snapshot.images["app:1"]
    snapshot.images = {"app:1": image_json("app:1", ident="sha256:" + "2" * 64), old["Id"]: old}
    plan = plan_update(state, snapshot.observed())
    found = action(plan, c("s.web"))
    assert found.op is Op.RECREATE
    assert [(d.reason, d.wanted) for d in found.reasons] == [(Reason.IMAGE, "2" * 12)]
    assert img("app:1") not in ops(plan)


def test_rejected_image_is_not_planned_again() -> None:
    state, snapshot = single("name: s\nweb: {image: app:1}\n")
    old = snapshot.images["app:1"]
    snapshot.images = {"app:1": image_json("app:1", ident="sha256:" + "2" * 64), old["Id"]: old}
    rejected = frozenset({("app:1", "sha256:" + "2" * 64)})
    held = plan_update(state, snapshot.observed(), PlanOptions(rejected_images=rejected))
    assert not held.actions  # not planned again…
    assert not held.in_sync  # …and not reported as done either
    assert ops(plan_update(state, snapshot.observed())) == {c("s.web"): Op.RECREATE}


def test_persistent_containers_keep_their_image_unless_asked() -> None:
    state, snapshot = single("name: s\nweb: {image: app:1, persistent: true}\n")
    old = snapshot.images["app:1"]
    snapshot.images = {"app:1": image_json("app:1", ident="sha256:" + "2" * 64), old["Id"]: old}
    assert plan_update(state, snapshot.observed()).in_sync
    plan = plan_update(state, snapshot.observed(), PlanOptions(update_persistent=True))
    assert ops(plan) == {c("s.web"): Op.RECREATE}


# --- volumes and inits -----------------------------------------------------------------------------------------


def test_recreated_volume_is_prepared_again_before_its_containers() -> None:
    state = desired(SEED_MAP)
    snapshot = synthesize(state)
    snapshot.volumes = [x for x in snapshot.volumes if x["Name"] != "main.app_log"]
    plan = plan_update(state, snapshot.observed())
    assert ops(plan)[v("main.app_log")] is Op.CREATE
    init = action(plan, i("main.app_log.init"))
    assert init.op is Op.RUN
    assert Drift(Reason.INIT, "volume", "prepared", "volume is new", Fix.RECREATE) in init.reasons
    assert wave_of(plan)[i("main.app_log.init")] > wave_of(plan)[v("main.app_log")]


def test_changed_owner_runs_the_init_before_the_container_is_recreated() -> None:
    old = desired(SEED_MAP)
    new = desired(SEED_MAP.replace("user: 2000", "user: 3000"))
    plan = plan_update(new, synthesize(old).observed())
    for alias in ("app_log", "uwsgi_log", "uwsgi_socket"):
        found = action(plan, i(f"main.{alias}.init"))
        assert found.reasons == (
            Drift(Reason.INIT, "owner/permissions", "owner 3000:3000, mode u=rwX,g=rX,o=", "changed", Fix.RECREATE),
        )
        assert wave_of(plan)[i(f"main.{alias}.init")] < wave_of(plan)[c("main.uwsgi")]
    assert [d.reason for d in action(plan, c("main.uwsgi")).reasons] == [Reason.USER]
    assert c("main.nginx") not in ops(plan)


def test_volume_driver_drift_is_a_note_never_an_action() -> None:
    state = desired(SEED_MAP)
    snapshot = synthesize(state)
    snapshot.volumes[0]["Driver"] = "nfs"
    plan = plan_update(state, snapshot.observed())
    assert plan.waves == ()
    [note] = plan.notes
    assert note.resource == v(snapshot.volumes[0]["Name"])
    assert note.message == "volume driver: 'nfs' → 'local' (volumes are data: recreate it yourself if you mean it)"


# --- output -------------------------------------------------------------------------------------------------


def test_plan_output_masks_secrets() -> None:
    state = desired("name: s\nweb: {create_options: {environment: {DB_PASSWORD: new-secret, MODE: b}}}\n")
    snapshot = synthesize(state)
    env = snapshot.container("s.web")["Config"]["Env"]
    snapshot.container("s.web")["Config"]["Env"] = [
        "DB_PASSWORD=old-secret" if e.startswith("DB_") else "MODE=a" if e.startswith("MODE") else e for e in env
    ]
    plan = plan_update(state, snapshot.observed())
    text = render_plan(plan)
    assert "env DB_PASSWORD: '***' → '***'" in text
    assert "env MODE: 'a' → 'b'" in text
    assert "secret" not in text
    assert "secret" not in str(plan.as_dict())
    assert plan.as_dict()["waves"][0][0]["action"] == "recreate"


def test_planning_is_deterministic() -> None:
    state, snapshot = cascade_host()
    assert plan_update(state, snapshot.observed()) == plan_update(desired(CASCADE_MAP), snapshot.copy().observed())


# --- teardown -------------------------------------------------------------------------------------------------


def test_down_removes_dependents_first_and_keeps_volumes() -> None:
    state = desired(CASCADE_MAP)
    plan = plan_down(state, synthesize(state).observed())
    assert {a.op for a in plan.actions} == {Op.REMOVE}
    waves = wave_of(plan)
    assert set(waves) == {c(x) for x in state.containers} | {n("c.app")}
    assert waves[c("c.net2")] < waves[c("c.net")] < waves[c("c.db")]
    for dependent in ("c.vf", "c.legacy", "c.onnet", "c.reader"):
        assert waves[c(dependent)] < waves[c("c.db")]
    assert waves[n("c.app")] > max(waves[c(x)] for x in state.containers)
    assert plan.blocked == ()


def test_down_with_volumes_removes_inits_after_containers_and_volumes_last() -> None:
    state = desired(SEED_MAP)
    plan = plan_down(state, synthesize(state).observed(), volumes=True)
    waves = wave_of(plan)
    assert set(waves) == {c(x) for x in state.containers} | {i(x) for x in state.inits} | {v(x) for x in state.volumes}
    assert waves[c("main.nginx")] < waves[c("main.uwsgi")]
    last_container = max(waves[c(x)] for x in state.containers)
    assert all(waves[i(x)] > last_container for x in state.inits)
    assert all(waves[v(x)] > waves[i(f"{x}.init")] for x in state.volumes if f"{x}.init" in state.inits)
    assert all(waves[v(x)] > last_container for x in state.volumes)


def test_down_without_volumes_keeps_inits_and_volumes() -> None:
    state = desired(SEED_MAP)
    plan = plan_down(state, synthesize(state).observed())
    assert {a.resource.kind for a in plan.actions} == {Kind.CONTAINER}
    assert not any(a.anonymous_volumes for a in plan.actions)  # a container's anonymous volumes stay too


def test_down_with_volumes_removes_containers_with_their_anonymous_volumes() -> None:
    state = desired(SEED_MAP)
    plan = plan_down(state, synthesize(state).observed(), volumes=True)
    for action in plan.actions:
        assert action.anonymous_volumes is (action.resource.kind in (Kind.CONTAINER, Kind.VOLUME_INIT))


def test_down_never_touches_unlabelled_objects() -> None:
    state = desired(NETWORK_MAP)
    snapshot = synthesize(state)
    snapshot.drop_container("n.db")
    snapshot.containers.append(stranger_container_json("n.db"))
    snapshot.networks = [network_json(state.networks["n.app"], labelled=False)]
    snapshot.volumes = [volume_json(state.volumes["n.data"], labelled=False)]
    plan = plan_down(state, snapshot.observed(), volumes=True)
    removed = {a.resource for a in plan.actions}
    assert removed == {c("n.web"), i("n.data.init")}
    targeted = plan_down(state, snapshot.observed(), frozenset({c("n.db")}), volumes=True)
    assert {a.resource for a in targeted.actions} == {c("n.web")}
    assert "container named 'n.db' exists without reconciler's labels" in blocked(targeted)[c("n.db")]


def test_down_reports_a_stranger_holding_one_of_our_names() -> None:
    """DESIGN §3: a name clash is an error that names the stranger — in `down` too, not a silent skip."""
    state = desired(NETWORK_MAP)
    snapshot = synthesize(state)
    snapshot.drop_container("n.db")
    snapshot.containers.append(stranger_container_json("n.db"))
    plan = plan_down(state, snapshot.observed())
    assert c("n.db") not in {a.resource for a in plan.actions}
    assert "'n.db'" in blocked(plan).get(c("n.db"), "")


def test_down_with_targets_removes_them_and_their_dependents_only() -> None:
    state = desired(CASCADE_MAP)
    plan = plan_down(state, synthesize(state).observed(), frozenset({c("c.net")}))
    assert [[a.resource for a in wave] for wave in plan.waves] == [[c("c.net2")], [c("c.net")]]
    plan = plan_down(state, synthesize(state).observed(), frozenset({c("c.db")}))
    assert {a.resource for a in plan.actions} == {
        c("c.db"),
        c("c.net"),
        c("c.net2"),
        c("c.vf"),
        c("c.legacy"),
        c("c.onnet"),
        c("c.reader"),
    }


def test_down_includes_orphans_of_loaded_maps_but_not_other_maps() -> None:
    other = synthesize(desired(ORPHAN_V1.replace("name: o", "name: elsewhere")))
    snapshot = orphan_host()
    snapshot.containers += other.containers
    snapshot.networks += other.networks
    plan = plan_down(desired(ORPHAN_V2), snapshot.observed())
    assert {a.resource for a in plan.actions} == {c("o.web"), c("o.old"), n("o.old_net")}
    assert wave_of(plan)[n("o.old_net")] > wave_of(plan)[c("o.old")]


def test_down_of_an_empty_host_is_empty() -> None:
    assert plan_down(desired(SEED_MAP), EMPTY) == Plan()


def test_reconcilers_own_container_is_never_managed() -> None:
    """A container labelled `io.reconciler.self` (the daemon's own, when deployed as a container) is never
    recreated, stopped or removed — even if a map names it and it drifted."""
    state = desired("name: s\napp: {image: x}\nother: {image: x}\n")
    snapshot = synthesize(state)
    own = snapshot.container("s.app")
    own["Config"]["Labels"][naming.LABEL_SELF] = "true"
    own["Config"]["Env"].append("CHANGED=1")
    own["State"].update(Running=False, Status="exited", ExitCode=0)
    plan = plan_update(state, snapshot.observed())
    assert not plan.actions
    assert [(b.resource, b.message) for b in plan.blocked] == [
        (c("s.app"), "'s.app' is reconciler's own container: never managed")
    ]
    teardown = plan_down(state, snapshot.observed())
    assert c("s.app") not in {a.resource for a in teardown.actions}
    assert c("s.other") in {a.resource for a in teardown.actions}
