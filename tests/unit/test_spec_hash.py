"""The spec hash: order-free, blind to defaulted fields, and compatible with the labels of earlier versions.

Containers carry the hash as a label; a change in how it is computed must never recreate a container whose
spec did not change (that would restart every service on every host at upgrade).
"""

from __future__ import annotations

import dataclasses

from reconciler.model import combine_maps, load_map_text
from reconciler.plan import naming
from reconciler.plan.desired import desired_state
from reconciler.plan.planner import plan_update
from reconciler.plan.render import render_plan
from reconciler.plan.resources import ContainerSpec, EndpointSpec, Mount, PortSpec
from reconciler.testing import synthesize

RICH = ContainerSpec(
    name="m.app",
    map="m",
    config="app",
    instance=None,
    image="nginx:1",
    mounts=(Mount("/b", "/srv/b", "bind", True), Mount("/a", "m.a", "volume")),
    anonymous_volumes=("/s2", "/s1"),
    ports=(PortSpec("80/tcp", "8080", "127.0.0.1"), PortSpec("53/udp")),
    links=(("m.two", "two"), ("m.one", "one")),
    endpoints=(EndpointSpec("m.back", aliases=("y", "x")), EndpointSpec("m.front")),
)


def test_both_hashes_are_pinned() -> None:
    """The new hash labels new containers; the legacy one is what reconciler 0.1.0 wrote (computed with that
    version's code for this very spec). Change neither."""
    assert RICH.spec_hash == "0d531ec9091520035fbfd9abfdfe9f3d"
    assert RICH.legacy_spec_hash == "b5fb2384a0c672d4a8b142c1c4546bb5"
    assert RICH.spec_hashes == {RICH.spec_hash, RICH.legacy_spec_hash}


def test_order_of_order_free_collections_does_not_change_the_hash() -> None:
    shuffled = dataclasses.replace(
        RICH,
        mounts=tuple(reversed(RICH.mounts)),
        anonymous_volumes=tuple(reversed(RICH.anonymous_volumes)),
        ports=tuple(reversed(RICH.ports)),
        links=tuple(reversed(RICH.links)),
        endpoints=(EndpointSpec("m.front"), EndpointSpec("m.back", aliases=("x", "y"))),
    )
    assert shuffled.spec_hash == RICH.spec_hash
    assert shuffled.legacy_spec_hash != RICH.legacy_spec_hash  # the old hash was order-sensitive


def test_a_defaulted_field_added_to_a_nested_value_does_not_change_the_hash() -> None:
    """Nested values (mounts, ports, endpoints) leave empty fields out too: a `Mount` field added later with
    a default must not recreate every container with a mount."""

    @dataclasses.dataclass(frozen=True)
    class MountWithMore(Mount):
        propagation: str | None = None

    more = dataclasses.replace(RICH, mounts=tuple(MountWithMore(**dataclasses.asdict(m)) for m in RICH.mounts))
    assert more.spec_hash == RICH.spec_hash


def test_a_container_labelled_by_the_previous_version_is_in_sync() -> None:
    """Created by 0.1 (legacy hash label) from a map with lists out of order: no drift, no recreate."""
    text = """
name: m
one: {image: x}
two: {image: x}
app:
  image: x
  links: [two, one]
  exposes: [[90, 9090], [80, 8080]]
  shares: [/z, /a]
"""
    desired = desired_state(combine_maps([load_map_text(text, "/tmp/m.yaml")]))
    snapshot = synthesize(desired)
    spec = desired.containers["m.app"]
    assert spec.legacy_spec_hash != spec.spec_hash
    snapshot.container("m.app")["Config"]["Labels"][naming.LABEL_SPEC_HASH] = spec.legacy_spec_hash
    plan = plan_update(desired, snapshot.observed())
    assert plan.in_sync, render_plan(plan)
    snapshot.container("m.app")["Config"]["Labels"][naming.LABEL_SPEC_HASH] = "someotherhash"
    plan = plan_update(desired, snapshot.observed())
    assert [d.reason.value for a in plan.actions for d in a.reasons] == ["options"]
