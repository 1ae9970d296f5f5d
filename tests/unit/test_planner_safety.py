"""The planner's ownership and volume-preparation promises, against synthesized engine answers (pure).

- a container named like a recreate's replacement (`<name>..next`) is cleaned up only when it is ours;
- a volume counts as prepared only when its init ran to completion with exit 0: an init still running (an
  interrupted run), never started, or failed is run again.
"""

from __future__ import annotations

import pytest

from reconciler.model import combine_maps, load_map_text
from reconciler.plan import naming
from reconciler.plan.desired import desired_state
from reconciler.plan.drift import Drift, Fix, Reason
from reconciler.plan.planner import Op, PlanOptions, plan_down, plan_update
from reconciler.plan.render import render_plan
from reconciler.plan.resources import DesiredState, Kind, ResourceId
from reconciler.testing import container_id, init_json, network_json, stranger_container_json, synthesize, volume_json


def desired_of(text: str) -> DesiredState:
    return desired_state(combine_maps([load_map_text(text, "/tmp/m.yaml")]))


APP = "name: m\napp: {image: x}\n"
NEXT = naming.replacement_name("m.app")


@pytest.mark.parametrize("options", [PlanOptions(), PlanOptions(prune=True, prune_volumes=True)])
def test_an_unlabelled_replacement_name_is_never_planned_for_removal(options: PlanOptions) -> None:
    desired = desired_of(APP)
    snapshot = synthesize(desired)
    snapshot.containers.append(stranger_container_json(NEXT))
    plan = plan_update(desired, snapshot.observed(), options)
    assert all(a.resource.name != NEXT for a in plan.actions), render_plan(plan)
    assert plan.in_sync, render_plan(plan)


def test_our_leftover_replacement_is_planned_for_removal() -> None:
    desired = desired_of(APP)
    snapshot = synthesize(desired)
    leftover = synthesize(desired).container("m.app")
    leftover.update(Id=container_id(NEXT), Name=f"/{NEXT}")
    snapshot.containers.append(leftover)
    plan = plan_update(desired, snapshot.observed())
    action = plan.action_for(ResourceId(Kind.CONTAINER, NEXT))
    assert action is not None
    assert action.op is Op.REMOVE
    assert action.observed_id == container_id(NEXT)
    assert action.reasons == (
        Drift(Reason.MISSING, "temporary", "absent", "left by an interrupted recreate", Fix.CREATE),
    )


def test_a_leftover_replacement_does_not_hide_the_orphans_after_it() -> None:
    """The cleanup of a `..next` and the orphans sorted after it, in one plan; orphans go by their ids."""
    desired = desired_of(APP)
    snapshot = synthesize(desired)
    leftover = synthesize(desired).container("m.app")
    leftover.update(Id=container_id(NEXT), Name=f"/{NEXT}")
    snapshot.containers.append(leftover)
    old = desired_of("name: m\nzzz: {image: x, attaches: gone}\nnetworks: {oldnet: {}}\nvolumes: {gone: /g}\n")
    orphans = synthesize(old)
    snapshot.containers.extend(c for c in orphans.containers if c["Name"] == "/m.zzz")
    snapshot.volumes.extend(orphans.volumes)
    snapshot.networks.extend(orphans.networks)
    plan = plan_update(desired, snapshot.observed(), PlanOptions(prune=True, prune_volumes=True))
    removals = {a.resource: a.observed_id for a in plan.actions if a.op is Op.REMOVE}
    assert removals == {
        ResourceId(Kind.CONTAINER, NEXT): container_id(NEXT),
        ResourceId(Kind.CONTAINER, "m.zzz"): container_id("m.zzz"),
        ResourceId(Kind.VOLUME, "m.gone"): "m.gone",
        ResourceId(Kind.NETWORK, "m.oldnet"): orphans.networks[0]["Id"],
    }


def test_a_leftover_replacement_of_a_container_of_another_map_is_not_ours_to_clean() -> None:
    desired = desired_of(APP)
    snapshot = synthesize(desired)
    other = synthesize(desired_of("name: o\napp: {image: x}\n")).container("o.app")
    other.update(Id=container_id("o.app..next"), Name="/o.app..next")
    snapshot.containers.append(other)
    plan = plan_update(desired, snapshot.observed(), PlanOptions(prune=True))
    assert plan.in_sync, render_plan(plan)


VOLUME_MAP = """
name: m
app: {image: x, attaches: data, user: 2000, permissions: u=rwX}
volumes: {data: /data}
"""
INIT = ResourceId(Kind.VOLUME_INIT, "m.data.init")


def test_a_prepared_volume_is_in_sync() -> None:
    desired = desired_of(VOLUME_MAP)
    assert plan_update(desired, synthesize(desired).observed()).in_sync


@pytest.mark.parametrize(
    ("status", "exit_code", "why"),
    [
        ("running", 0, Drift(Reason.INIT, "state", "ran", "still running (interrupted?)", Fix.RECREATE)),
        ("created", 0, Drift(Reason.INIT, "state", "ran", "never started", Fix.RECREATE)),
        ("exited", 1, Drift(Reason.INIT, "exit code", 0, 1, Fix.RECREATE)),
        ("dead", 137, Drift(Reason.INIT, "exit code", 0, 137, Fix.RECREATE)),
    ],
)
def test_an_init_that_did_not_finish_cleanly_is_run_again(status: str, exit_code: int, why: Drift) -> None:
    """A running init was interrupted (the chown may be half done); one never started or failed did nothing."""
    desired = desired_of(VOLUME_MAP)
    snapshot = synthesize(desired)
    snapshot.drop_container("m.data.init")
    snapshot.containers.append(init_json(desired.inits["m.data.init"], status=status, exit_code=exit_code))
    plan = plan_update(desired, snapshot.observed())
    action = plan.action_for(INIT)
    assert action is not None, render_plan(plan)
    assert action.op is Op.RUN
    assert action.reasons == (why,)
    assert action.observed_id == container_id("m.data.init")  # the one to replace
    # The attaching container is not touched before its volume is prepared: it depends on the init.
    assert INIT in desired.depends_on[ResourceId(Kind.CONTAINER, "m.app")]


def test_an_init_of_a_recreated_volume_is_run_again() -> None:
    desired = desired_of(VOLUME_MAP)
    snapshot = synthesize(desired)
    snapshot.volumes[0]["CreatedAt"] = "2027-01-01T00:00:00Z"
    action = plan_update(desired, snapshot.observed()).action_for(INIT)
    assert action is not None
    assert action.op is Op.RUN


def test_a_strangers_container_named_like_the_init_is_blocked_not_replaced() -> None:
    desired = desired_of(VOLUME_MAP)
    snapshot = synthesize(desired)
    snapshot.drop_container("m.data.init")
    snapshot.containers.append(stranger_container_json("m.data.init"))
    plan = plan_update(desired, snapshot.observed(), PlanOptions(prune=True, prune_volumes=True))
    assert plan.action_for(INIT) is None
    assert any(b.resource == INIT for b in plan.blocked)


# --- orphans and `down`: only ours, all of ours, by id -------------------------------------------------------


def test_an_orphan_is_planned_for_removal_with_its_id_and_why() -> None:
    desired = desired_of(APP)
    snapshot = synthesize(desired)
    snapshot.containers.extend(synthesize(desired_of("name: m\nold: {image: x}\n")).containers)
    plan = plan_update(desired, snapshot.observed(), PlanOptions(prune=True))
    action = plan.action_for(ResourceId(Kind.CONTAINER, "m.old"))
    assert action is not None
    assert action.op is Op.REMOVE
    assert action.observed_id == container_id("m.old")
    assert action.reasons == (Drift(Reason.MISSING, "map", "absent", "present", Fix.CREATE),)


DOWN_MAP = """
name: m
a: {image: x, attaches: data, user: 2000}
b: {image: x, links: a}
c: {image: x}
volumes: {data: /data}
"""


def test_down_removes_every_container_of_ours_by_id_and_skips_strangers_and_absent_ones() -> None:
    desired = desired_of(DOWN_MAP)
    snapshot = synthesize(desired, containers=("m.a", "m.c"))  # m.b is absent
    snapshot.drop_container("m.c")
    snapshot.containers.append(stranger_container_json("m.c"))  # m.c's name is a stranger's
    plan = plan_down(desired, snapshot.observed())
    removals = {a.resource: a.observed_id for a in plan.actions}
    assert removals == {ResourceId(Kind.CONTAINER, "m.a"): container_id("m.a")}  # inits and volumes stay
    assert all(a.op is Op.REMOVE and a.steps == (Op.REMOVE,) for a in plan.actions)
    assert [b.resource for b in plan.blocked] == [ResourceId(Kind.CONTAINER, "m.c")]


def test_down_with_volumes_takes_the_volume_and_its_init_after_the_containers() -> None:
    desired = desired_of(DOWN_MAP)
    snapshot = synthesize(desired)
    plan = plan_down(desired, snapshot.observed(), volumes=True)
    removals = {a.resource: a.observed_id for a in plan.actions}
    assert removals == {
        ResourceId(Kind.CONTAINER, "m.a"): container_id("m.a"),
        ResourceId(Kind.CONTAINER, "m.b"): container_id("m.b"),
        ResourceId(Kind.CONTAINER, "m.c"): container_id("m.c"),
        ResourceId(Kind.VOLUME_INIT, "m.data.init"): container_id("m.data.init"),
        ResourceId(Kind.VOLUME, "m.data"): "m.data",
    }
    order = [a.resource for a in plan.actions]
    assert order.index(ResourceId(Kind.VOLUME, "m.data")) > max(
        order.index(ResourceId(Kind.CONTAINER, n)) for n in ("m.a", "m.b", "m.c")
    )
    assert order.index(ResourceId(Kind.CONTAINER, "m.b")) < order.index(ResourceId(Kind.CONTAINER, "m.a"))


def test_down_of_a_target_takes_its_dependents_and_leaves_absent_and_foreign_ones() -> None:
    desired = desired_of(DOWN_MAP)
    snapshot = synthesize(desired, containers=("m.a",))  # m.b, which depends on m.a, is absent
    plan = plan_down(desired, snapshot.observed(), frozenset({ResourceId(Kind.CONTAINER, "m.a")}))
    assert {a.resource: a.observed_id for a in plan.actions} == {ResourceId(Kind.CONTAINER, "m.a"): container_id("m.a")}
    snapshot = synthesize(desired)
    snapshot.drop_container("m.b")
    snapshot.containers.append(stranger_container_json("m.b"))
    plan = plan_down(desired, snapshot.observed(), frozenset({ResourceId(Kind.CONTAINER, "m.a")}))
    assert {a.resource for a in plan.actions} == {ResourceId(Kind.CONTAINER, "m.a")}
    assert [b.resource for b in plan.blocked] == [ResourceId(Kind.CONTAINER, "m.b")]


def test_orphaned_volumes_go_only_with_prune_volumes_and_inits_as_inits() -> None:
    desired = desired_of(APP)
    snapshot = synthesize(desired)
    old = synthesize(desired_of(VOLUME_MAP))
    snapshot.volumes.extend(old.volumes)
    snapshot.containers.extend(c for c in old.containers if c["Name"] == "/m.data.init")
    pruned = plan_update(desired, snapshot.observed(), PlanOptions(prune=True))
    assert {a.resource for a in pruned.actions} == {INIT}  # the volume (data!) stays without --volumes
    assert any(n.resource == ResourceId(Kind.VOLUME, "m.data") for n in pruned.notes)
    both = plan_update(desired, snapshot.observed(), PlanOptions(prune=True, prune_volumes=True))
    assert {a.resource for a in both.actions} == {INIT, ResourceId(Kind.VOLUME, "m.data")}


def test_strangers_volumes_and_networks_are_never_orphans() -> None:
    desired = desired_of(APP)
    snapshot = synthesize(desired)
    other = desired_of(
        "name: m\nnetworks: {theirs: {}}\no: {image: x, attaches: vol, networks: theirs}\nvolumes: {vol: /v}\n"
    )
    snapshot.volumes.append(volume_json(other.volumes["m.vol"], labelled=False))
    snapshot.networks.append(network_json(other.networks["m.theirs"], labelled=False))
    plan = plan_update(desired, snapshot.observed(), PlanOptions(prune=True, prune_volumes=True))
    assert plan.in_sync, render_plan(plan)
    assert not plan.notes


def test_a_container_that_cannot_be_built_is_blocked_not_an_orphan() -> None:
    text = "name: m\napp: {image: x, exposes: [[80, 8080, private]]}\n"  # an interface alias no client defines
    desired = desired_of(text)
    assert desired.problems
    snapshot = synthesize(desired_of(APP))  # m.app exists, ours, from an earlier version of the map
    plan = plan_update(desired, snapshot.observed(), PlanOptions(prune=True))
    assert all(a.resource.name != "m.app" for a in plan.actions), render_plan(plan)


def test_a_changed_owner_or_a_recreated_volume_says_so() -> None:
    desired = desired_of(VOLUME_MAP)
    snapshot = synthesize(desired)
    snapshot.container("m.data.init")["Config"]["Labels"][naming.LABEL_SPEC_HASH] = "an-older-spec"
    action = plan_update(desired, snapshot.observed()).action_for(INIT)
    assert action is not None
    assert action.reasons == (
        Drift(Reason.INIT, "owner/permissions", "owner 2000:2000, mode u=rwX", "changed", Fix.RECREATE),
    )
    snapshot = synthesize(desired)
    snapshot.volumes[0]["CreatedAt"] = "2027-01-01T00:00:00Z"
    action = plan_update(desired, snapshot.observed()).action_for(INIT)
    assert action is not None
    assert action.reasons == (Drift(Reason.INIT, "volume", "prepared", "volume was recreated", Fix.RECREATE),)


def test_down_of_a_target_skips_an_absent_dependent_and_still_takes_the_next_one() -> None:
    text = DOWN_MAP + "d: {image: x, links: a}\n"
    desired = desired_of(text)
    snapshot = synthesize(desired)
    snapshot.drop_container("m.b")  # sorted between m.a and m.d: absent
    plan = plan_down(desired, snapshot.observed(), frozenset({ResourceId(Kind.CONTAINER, "m.a")}))
    assert {a.resource: a.observed_id for a in plan.actions} == {
        ResourceId(Kind.CONTAINER, "m.a"): container_id("m.a"),
        ResourceId(Kind.CONTAINER, "m.d"): container_id("m.d"),
    }
    shown = plan.as_dict()
    assert [a["reasons"] for wave in shown["waves"] for a in wave] == [[], []]
    assert [a["steps"] for wave in shown["waves"] for a in wave] == [["remove"], ["remove"]]


def test_orphans_are_per_client_an_other_clients_container_is_never_pruned() -> None:
    """README: ownership (orphans, prune) is per client — a map's container on another engine's client is
    that client's business, even when the same engine answers for both."""
    before = synthesize(desired_of("name: m\napp: {image: x}\nold: {image: x}\n"))
    elsewhere = before.container("m.old")
    elsewhere["Config"]["Labels"][naming.LABEL_CLIENT] = "web1"
    plan = plan_update(desired_of(APP), before.observed(), PlanOptions(prune=True))
    assert plan.action_for(ResourceId(Kind.CONTAINER, "m.old")) is None
    del elsewhere["Config"]["Labels"][naming.LABEL_CLIENT]  # this client's own: an orphan, pruned
    plan = plan_update(desired_of(APP), before.observed(), PlanOptions(prune=True))
    pruned = plan.action_for(ResourceId(Kind.CONTAINER, "m.old"))
    assert pruned is not None
    assert pruned.op is Op.REMOVE


def test_an_adopted_replacement_does_not_end_the_search_for_orphans() -> None:
    desired = desired_of(APP)
    snapshot = synthesize(desired_of("name: m\napp: {image: x}\nold: {image: x}\n"))
    finished = snapshot.container("m.app")
    finished.update(Id=container_id(NEXT), Name=f"/{NEXT}")  # a finished replacement, its original gone
    plan = plan_update(desired, snapshot.observed(), PlanOptions(prune=True))
    adopt = plan.action_for(ResourceId(Kind.CONTAINER, "m.app"))
    assert adopt is not None
    assert adopt.op is Op.ADOPT
    orphan = plan.action_for(ResourceId(Kind.CONTAINER, "m.old"))  # sorts after m.app..next
    assert orphan is not None
    assert orphan.op is Op.REMOVE
