"""Do no harm (issue 21), without an engine: the planner's adopt and network rules on synthesised engine
JSON (reconciler.testing), and the executor's recreate, restore, lease and init wait against the shipped
fake of our own engine port (`reconciler.testing.FakeEngine`, with `fail_next` and `exits_after`; the engine
itself is never mocked)."""

from __future__ import annotations

import socket
import textwrap
from typing import Any

import pytest

from reconciler.executor import lease
from reconciler.executor.apply import Executor, InProgress, Outcome, carried_volumes
from reconciler.executor.errors import (
    EngineError,
    NotFound,
    PermanentEngineError,
    RetryableEngineError,
    classify_pull,
)
from reconciler.executor.translate import container_config
from reconciler.model import combine_maps, load_map_text
from reconciler.plan import naming
from reconciler.plan.desired import desired_state
from reconciler.plan.observed import parse_container
from reconciler.plan.planner import Action, Op, Plan, plan_update
from reconciler.plan.render import render_plan
from reconciler.plan.resources import ContainerSpec, DesiredState, Kind, ResourceId, VolumeInitSpec
from reconciler.testing import FakeEngine, container_json, state_json, stranger_container_json, synthesize, volume_json

Json = dict[str, Any]


def desired(text: str) -> DesiredState:
    return desired_state(combine_maps([load_map_text(textwrap.dedent(text))]))


def c(name: str) -> ResourceId:
    return ResourceId(Kind.CONTAINER, name)


def ops(plan: Plan) -> dict[str, Op]:
    return {a.resource.name: a.op for a in plan.actions}


# --- planner: adopting a finished replacement ----------------------------------------------------------------

ADOPT_MAP = """
name: a
db: {image: x, healthcheck: {test: [CMD, "true"]}}
web: {image: x, links: db}
"""


def _replacement(spec: ContainerSpec, **state: Any) -> Json:
    data = container_json(spec, ident="e" * 64)
    data["Name"] = f"/{naming.replacement_name(spec.name)}"
    data["State"] = state_json(**state)
    return data


def test_a_finished_replacement_whose_original_is_gone_is_adopted_and_dependents_follow() -> None:
    state = desired(ADOPT_MAP)
    snapshot = synthesize(state)
    snapshot.drop_container("a.db")
    snapshot.containers.append(_replacement(state.containers["a.db"], health="healthy"))
    plan = plan_update(state, snapshot.observed())
    assert ops(plan) == {"a.db": Op.ADOPT, "a.web": Op.RECREATE}, render_plan(plan)
    adopt = plan.action_for(c("a.db"))
    assert adopt is not None
    assert (adopt.steps, adopt.observed_id) == ((Op.ADOPT,), "e" * 64)
    assert "adopt" in render_plan(plan)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"health": "starting"}, "not healthy yet"),
        ({"health": "unhealthy"}, "unhealthy"),
        ({"status": "exited", "health": "healthy"}, "not running"),
        ({"spec_hash": "0" * 16, "health": "healthy"}, "another spec"),
    ],
)
def test_a_replacement_that_is_not_ready_is_removed_not_adopted(change: dict[str, Any], why: str) -> None:
    state = desired(ADOPT_MAP)
    snapshot = synthesize(state)
    snapshot.drop_container("a.db")
    change = dict(change)  # the parameter is shared by every run in this process: never change it
    spec_hash = change.pop("spec_hash", None)
    leftover = _replacement(state.containers["a.db"], **change)
    if spec_hash:
        leftover["Config"]["Labels"][naming.LABEL_SPEC_HASH] = spec_hash
    snapshot.containers.append(leftover)
    plan = plan_update(state, snapshot.observed())
    assert ops(plan)["a.db"] is Op.CREATE, why
    assert ops(plan)["a.db..next"] is Op.REMOVE, why


def test_a_replacement_beside_its_original_is_not_adopted_by_the_planner() -> None:
    state = desired(ADOPT_MAP)
    snapshot = synthesize(state)
    snapshot.containers.append(_replacement(state.containers["a.db"], health="healthy"))
    assert ops(plan_update(state, snapshot.observed())) == {"a.db..next": Op.REMOVE}


# --- planner: networks with strangers attached ---------------------------------------------------------------

NET_MAP = """
name: n
networks: {back: {}}
app: {image: x, networks: [back]}
"""


def test_a_network_with_strangers_attached_is_not_recreated() -> None:
    state = desired(NET_MAP)
    snapshot = synthesize(state)
    net = snapshot.networks[0]
    net["Internal"] = True  # drift: the map wants an ordinary network
    plan = plan_update(state, snapshot.observed())
    assert ops(plan)["n.back"] is Op.RECREATE  # only ours are attached: recreated, ours follow
    stranger = stranger_container_json("someone")
    net["Containers"][stranger["Id"]] = {"Name": "someone"}
    plan = plan_update(state, snapshot.observed())
    assert "n.back" not in ops(plan)
    [blocked] = [b for b in plan.blocked if b.resource.name == "n.back"]
    assert "without reconciler's labels are attached" in blocked.message
    assert stranger["Id"][:12] in blocked.message


def test_an_unchanged_network_with_strangers_is_fine() -> None:
    state = desired(NET_MAP)
    snapshot = synthesize(state)
    snapshot.networks[0]["Containers"]["f" * 64] = {"Name": "someone"}
    assert plan_update(state, snapshot.observed()).in_sync


# --- pure helpers --------------------------------------------------------------------------------------------


def test_carried_volumes_are_the_old_containers_anonymous_volumes_at_declared_targets() -> None:
    anon, other = "a" * 64, "b" * 64
    old = parse_container(
        {
            "Id": "c" * 64,
            "Mounts": [
                {"Type": "volume", "Name": anon, "Destination": "/data"},
                {"Type": "volume", "Name": other, "Destination": "/gone"},  # no longer declared
                {"Type": "volume", "Name": "m.named", "Destination": "/var/named"},  # the map's own volume
                {"Type": "bind", "Source": "/srv", "Destination": "/srv"},
            ],
        }
    )
    assert carried_volumes(old, {"/data", "/var/named", "/srv"}) == [f"{anon}:/data:rw"]
    assert carried_volumes(None, {"/data"}) == []


def test_lease_is_free_when_ours_expired_or_its_owner_died() -> None:
    other = f"{socket.gethostname()}/4242/abcd"
    labels = lease.lease_labels(other, 1000)
    assert lease.foreign_holder(labels, "me", 999, alive=lambda _pid: True) == other
    assert lease.foreign_holder(labels, "me", 1001, alive=lambda _pid: True) is None  # expired
    assert lease.foreign_holder(labels, "me", 999, alive=lambda _pid: False) is None  # its process is gone
    assert lease.foreign_holder(labels, other, 999, alive=lambda _pid: True) is None  # ours
    assert lease.foreign_holder({}, "me", 999) is None  # no lease: a replacement from before leases
    elsewhere = lease.lease_labels("otherhost/1/x", 1000)
    assert lease.foreign_holder(elsewhere, "me", 999, alive=lambda _pid: False) == "otherhost/1/x"


@pytest.mark.parametrize(
    ("message", "status", "kind"),
    [
        ("manifest for x:1 not found: manifest unknown", None, NotFound),
        ("pull access denied for x, repository does not exist", 404, NotFound),
        ("unauthorized: authentication required", None, NotFound),
        ("received unexpected HTTP status: 503 Service Unavailable", None, RetryableEngineError),
        ("Get http://r/v2/: read tcp: connection reset by peer", 500, RetryableEngineError),
        ("net/http: TLS handshake timeout", None, RetryableEngineError),
        ("toomanyrequests: rate limit", None, RetryableEngineError),
        ("unexpected EOF", None, RetryableEngineError),
        ("invalid tar header", None, PermanentEngineError),
    ],
)
def test_pull_errors_are_classified(message: str, status: int | None, kind: type[EngineError]) -> None:
    assert type(classify_pull(message, status)) is kind


# --- executor against a fake engine port ---------------------------------------------------------------------


class FakePort(FakeEngine):
    """The shipped fake holding the image these tests run (`x:latest`, which declares a volume at /data)."""

    def __init__(self) -> None:
        super().__init__(images={"x:latest": {"volumes": ["/data"]}})


APP_MAP = """
name: r
app: {image: x, shares: [/var/data], create_options: {environment: {V: "2"}}}
"""


def _running_old(port: FakePort, state: DesiredState, running: bool = True) -> str:
    spec = state.containers["r.app"]
    old_id = port.create_container("r.app", container_config(spec))
    old = port.container(old_id)
    old["Config"]["Labels"][naming.LABEL_SPEC_HASH] = "old"
    old["State"] = state_json("running" if running else "exited")
    old["Mounts"] = [
        {"Type": "volume", "Name": "a" * 64, "Destination": "/data"},
        {"Type": "volume", "Name": "b" * 64, "Destination": "/var/data"},
    ]
    port.calls.clear()
    return old_id


def _recreate(state: DesiredState, old_id: str) -> Action:
    return Action(c("r.app"), Op.RECREATE, (Op.RECREATE,), (), old_id, state.containers["r.app"])


def _init(state: DesiredState) -> VolumeInitSpec:
    return state.inits["v.data.init"]


def executor(port: FakePort, state: DesiredState, **kwargs: Any) -> Executor:
    return Executor(port, owner="test/1/me", sleep=lambda _s: None, **kwargs)


def test_recreate_hands_the_anonymous_volumes_to_the_replacement_and_leases_it() -> None:
    state = desired(APP_MAP)
    port = FakePort()
    old_id = _running_old(port, state)
    result = executor(port, state, clock=lambda: 1000.0).run(Plan(waves=((_recreate(state, old_id),),)))
    assert result.ok, result.results
    [new] = port.snapshot.containers  # the replacement, under the old one's name now
    assert new["Id"] != old_id
    assert sorted(new["HostConfig"]["Binds"]) == [f"{'a' * 64}:/data:rw", f"{'b' * 64}:/var/data:rw"]
    assert new["Config"]["Labels"][lease.LABEL_LEASE_OWNER] == "test/1/me"
    assert int(new["Config"]["Labels"][lease.LABEL_LEASE_EXPIRES]) == 1000 + 10 + lease.LEASE_MARGIN
    assert port.ops() == [
        ("create", "r.app..next"),
        ("stop", "r.app"),
        ("start", "r.app..next"),
        ("remove", "r.app"),
        ("rename", "r.app..next", "r.app"),
    ]


def test_restore_starts_the_old_container_even_if_removing_the_replacement_fails() -> None:
    state = desired(APP_MAP)
    port = FakePort()
    old_id = _running_old(port, state)
    port.fail_next = {
        "start": [PermanentEngineError("port is already allocated", 500)],
        "remove_container": [RetryableEngineError("engine unreachable", None)],
    }
    [outcome] = executor(port, state).run(Plan(waves=((_recreate(state, old_id),),))).results
    assert outcome.outcome is Outcome.FAILED
    assert "port is already allocated" in (outcome.error or "")  # the original error
    assert "removing the replacement failed: engine unreachable" in (outcome.error or "")
    assert port.container(old_id)["State"]["Running"]
    assert ("start", "r.app") in port.calls


def test_restore_starts_an_old_container_an_interrupted_run_had_stopped() -> None:
    state = desired(APP_MAP)
    port = FakePort()
    old_id = _running_old(port, state, running=False)  # stopped by a run that crashed before its start
    port.fail_next = {"start": [PermanentEngineError("bad replacement", 400)]}
    [outcome] = executor(port, state).run(Plan(waves=((_recreate(state, old_id),),))).results
    assert outcome.outcome is Outcome.FAILED
    assert "the old container runs again" in (outcome.error or "")
    assert port.container(old_id)["State"]["Running"]
    assert not any(name.endswith("..next") for name in port.names())


def test_a_replacement_leased_by_another_live_reconciler_is_left_alone() -> None:
    state = desired(APP_MAP)
    port = FakePort()
    old_id = _running_old(port, state)
    temp = port.create_container(
        "r.app..next",
        {"image": "x:latest", "labels": {naming.LABEL_MANAGED: "true", **lease.lease_labels("elsewhere/1/x", 2000)}},
    )
    port.calls.clear()
    runner = executor(port, state, clock=lambda: 1000.0)
    [outcome] = runner.run(Plan(waves=((_recreate(state, old_id),),))).results
    assert outcome.outcome is Outcome.SKIPPED  # the other reconciler's work, not a failure of ours
    assert lease.IN_PROGRESS in (outcome.error or "")
    assert outcome.rolled_back is None
    assert port.ops() == []  # nothing stopped, removed or created
    remove = Action(c("r.app..next"), Op.REMOVE, (Op.REMOVE,), (), temp)
    with pytest.raises(InProgress):
        runner.perform(remove)
    # Once the lease has expired, the replacement may be taken over.
    later = executor(port, state, clock=lambda: 3000.0)
    assert later.run(Plan(waves=((_recreate(state, old_id),),))).ok
    assert ("remove", "r.app..next") in port.calls


def test_adopt_renames_the_replacement_into_place() -> None:
    state = desired(APP_MAP)
    port = FakePort()
    spec = state.containers["r.app"]
    temp = port.create_container("r.app..next", container_config(spec))
    port.container(temp)["State"] = state_json("running")
    port.calls.clear()
    action = Action(c("r.app"), Op.ADOPT, (Op.ADOPT,), (), temp, state.containers["r.app"])
    assert executor(port, state).run(Plan(waves=((action,),))).ok
    assert port.ops() == [("rename", "r.app..next", "r.app")]


def test_a_volume_init_is_waited_for_by_polling() -> None:
    state = desired("""
    name: v
    app: {image: x, attaches: data, user: 2000}
    volumes: {data: /data}
    """)
    port = FakePort()
    port.snapshot.volumes.append(volume_json(state.volumes["v.data"]))  # created by the executor before
    port.exits_after["v.data.init"] = 5  # still running at the first four looks
    naps: list[float] = []
    runner = Executor(port, sleep=naps.append)
    runner.perform(Action(ResourceId(Kind.VOLUME_INIT, "v.data.init"), Op.RUN, (Op.RUN,), (), None, _init(state)))
    assert naps == [0.5] * 4


def test_a_running_init_of_the_same_preparation_is_waited_for_not_restarted() -> None:
    state = desired("""
    name: v
    app: {image: x, attaches: data, user: 2000}
    volumes: {data: /data}
    """)
    from reconciler.executor.translate import init_config

    port = FakePort()
    volume = volume_json(state.volumes["v.data"])
    port.snapshot.volumes.append(volume)
    ident = port.create_container("v.data.init", init_config(state.inits["v.data.init"], volume["CreatedAt"]))
    port.container(ident)["State"] = state_json("running")
    port.exits_after["v.data.init"] = 3
    port.calls.clear()
    Executor(port, sleep=lambda _s: None).perform(
        Action(ResourceId(Kind.VOLUME_INIT, "v.data.init"), Op.RUN, (Op.RUN,), (), None, _init(state))
    )
    assert port.ops() == []  # not removed, not started again


def test_dependents_of_a_failed_pull_are_skipped() -> None:
    state = desired("""
    name: p
    db: {image: x}
    web: {image: y, links: db}
    """)
    plan = plan_update(state, synthesize(state, containers=()).observed())
    plan = plan.keep(lambda a: a.resource.kind is Kind.CONTAINER)
    results = Executor(FakePort()).run(plan, failed_before=[ResourceId(Kind.IMAGE, "x:latest")])
    outcomes = {r.action.resource.name: (r.outcome, r.error) for r in results.results}
    assert outcomes == {
        "p.db": (Outcome.SKIPPED, "dependency image x:latest failed"),
        "p.web": (Outcome.SKIPPED, "dependency container p.db failed"),
    }


def test_a_replacement_name_taken_by_a_container_being_created_is_another_reconcile() -> None:
    """The engine reserves a name before the container can be inspected (seen on 26.1.5): a create that
    conflicts while nothing holds the name means someone is creating it right now."""
    from reconciler.executor.errors import Conflict

    state = desired(APP_MAP)
    port = FakePort()
    old_id = _running_old(port, state)
    port.fail_next = {"create_container": [Conflict('The container name "/r.app..next" is already in use', 409)]}
    [outcome] = executor(port, state).run(Plan(waves=((_recreate(state, old_id),),))).results
    assert outcome.outcome is Outcome.SKIPPED
    assert f"{lease.IN_PROGRESS}: r.app..next is being created by someone else" in (outcome.error or "")
    assert port.ops() == [("create", "r.app..next")]  # the refused create only: nothing stopped or removed
