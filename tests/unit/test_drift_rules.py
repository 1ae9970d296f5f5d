"""Drift rules (DESIGN §4), fed with engine JSON recorded from a real engine (tests/fixtures/engine).

`scripts/record-fixtures.py` made the fixtures; the specs below restate exactly what it created:
- `fixture-rec.main`: busybox `sh -c <trap loop>`, hostname `fixture-rec-main`, user 2000, env APP_MODE=test and
  DB_PASSWORD=hunter2, ports 80 (published on 127.0.0.1:18089) and 53/udp, a healthcheck (CMD-SHELL true, 1s,
  3 retries), SIGINT / 3 s, an anonymous volume /scratch, a read-only bind /tmp/fixture-rec-bind → /etc/app,
  the named volume fixture-rec.data on /data, a link to fixture-rec.dep as `db`, restart policy on-failure:2,
  64 MiB memory, 512 CPU shares, network mode bridge, and then connected to fixture-rec.net with alias `web`;
- `fixture-rec.dep`: the same trap loop on the bridge, nothing else; `fixture-rec.netmode`: the trap loop in
  dep's network stack, created but never started; `fixture-rec.exited`: `sh -c 'exit 3'`, run to its end.

The first test shows the main spec matches the recording (no drift); every other test changes exactly one
thing — in the spec or in a deep copy of the recorded JSON — and expects exactly one typed reason.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest

from reconciler.plan import naming
from reconciler.plan.drift import (
    LABEL_VOLUME_CREATED,
    ContainerContext,
    Drift,
    Fix,
    Reason,
    container_drift,
    init_drift,
    is_secret,
    network_drift,
    strongest,
    volume_drift,
)
from reconciler.plan.observed import (
    ObservedContainer,
    ObservedState,
    observed_state,
    parse_container,
    parse_network,
    parse_processes,
    parse_volume,
)
from reconciler.plan.resources import (
    ContainerSpec,
    EndpointSpec,
    ExecSpec,
    Mount,
    NetworkSpec,
    PortSpec,
    VolumeInitSpec,
    VolumeSpec,
)
from reconciler.testing import container_json
from tests.recorded import fixture

IMAGE = "reconciler-test/busybox:latest"
IMAGE_ID = "sha256:9759c460e8e419806d40384eff7b5022eb3564c1c5205e598d8d7989f9ddf568"
TRAP = ("sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done")
R = Fix.RECREATE

MAIN = ContainerSpec(
    name="fixture-rec.main",
    map="fix",
    config="main",
    instance=None,
    image=IMAGE,
    hostname="fixture-rec-main",
    command=TRAP,
    environment=(("APP_MODE", "test"), ("DB_PASSWORD", "hunter2")),
    user="2000",
    mounts=(
        Mount("/etc/app", "/tmp/fixture-rec-bind", "bind", read_only=True),
        Mount("/data", "fixture-rec.data", "volume"),
    ),
    anonymous_volumes=("/scratch",),
    ports=(PortSpec("80/tcp", "18089", "127.0.0.1"), PortSpec("53/udp")),
    links=(("fixture-rec.dep", "db"),),
    network_mode="bridge",
    endpoints=(EndpointSpec("bridge"), EndpointSpec("fixture-rec.net", aliases=("web",))),
    healthcheck=(("Interval", 1_000_000_000), ("Retries", 3), ("Test", ("CMD-SHELL", "true"))),
    stop_signal="SIGINT",
    stop_timeout=3,
    limits=(("CpuShares", 512), ("Memory", 64 * 1024**2)),
    restart_policy=(("MaximumRetryCount", 2), ("Name", "on-failure")),
)
DEP = ContainerSpec(
    name="fixture-rec.dep", map="fix", config="dep", instance=None, image=IMAGE, command=TRAP, network_mode="bridge"
)
NETMODE = ContainerSpec(
    name="fixture-rec.netmode",
    map="fix",
    config="n",
    instance=None,
    image=IMAGE,
    hostname="fixture-rec-netmode",  # ignored: it shares dep's network stack (and its UTS namespace)
    command=TRAP,
    network_mode="container:fixture-rec.dep",
)
EXITED = ContainerSpec(
    name="fixture-rec.exited",
    map="fix",
    config="exited",
    instance=None,
    image=IMAGE,
    command=("sh", "-c", "exit 3"),
    network_mode="bridge",
)


def recorded(name: str, spec: ContainerSpec | None = None) -> dict[str, Any]:
    """A deep copy of a recorded container; with `spec`, labelled with its spec hash (as reconciler labels it)."""
    data = fixture(f"container_{name}")
    if spec is not None:
        data["Config"]["Labels"][naming.LABEL_SPEC_HASH] = spec.spec_hash
    return data


def engine(
    *containers: dict[str, Any], images: dict[str, dict[str, Any]] | None = None, processes: bool = True
) -> ObservedState:
    """Observed state from (modified) recordings; by default with the recorded image, volume and network."""
    containers = containers or (recorded("main", MAIN), recorded("dep", DEP), recorded("netmode", NETMODE))
    tops = {c["Id"]: parse_processes(fixture("top_main")) for c in containers if processes}
    return observed_state(
        list(containers),
        {IMAGE: fixture("image")} if images is None else images,
        [fixture("volume")],
        [fixture("network")],
        tops,
    )


def drift_of(
    spec: ContainerSpec, data: dict[str, Any] | None = None, *, state: ObservedState | None = None, **ctx: Any
) -> list[Drift]:
    """The drift of `spec` against the recording of its container, labelled as created from the recorded spec
    (so a changed `spec` has a spec-hash mismatch), in a state with dep."""
    if data is None:
        base = {MAIN.name: MAIN, DEP.name: DEP, NETMODE.name: NETMODE, EXITED.name: EXITED}[spec.name]
        data = recorded(spec.name.removeprefix("fixture-rec."), base)
    if state is None:
        state = engine(data, recorded("dep", DEP))
    found = state.containers[spec.name]
    return container_drift(spec, found, ContainerContext(state, **ctx))


def relabelled(spec: ContainerSpec, **changes: Any) -> tuple[ContainerSpec, dict[str, Any]]:
    """`spec` with changes, against main's recording labelled with the *new* spec's hash — as if the container
    had been created from the changed spec and then changed behind reconciler's back."""
    changed = dataclasses.replace(spec, **changes)
    return changed, recorded("main", changed)


def changed(**changes: Any) -> ContainerSpec:
    return dataclasses.replace(MAIN, **changes)


# --- parsing the recordings -----------------------------------------------------------------------------


def test_recorded_main_container_parses_into_typed_values() -> None:
    found = parse_container(fixture("container_main"), parse_processes(fixture("top_main")))
    assert found.name == "fixture-rec.main"
    assert found.image_id == IMAGE_ID
    assert found.image_ref == IMAGE
    assert found.managed
    assert found.kind == "container"
    assert found.spec_hash == "abc"
    assert found.running
    assert found.status == "running"
    assert found.health == "healthy"
    assert found.env == {"APP_MODE": "test", "DB_PASSWORD": "hunter2", "PATH": fixture("image")["Config"]["Env"][0][5:]}
    assert found.links == (("fixture-rec.dep", "db"),)
    assert found.port_bindings == {"80/tcp": (("127.0.0.1", "18089"),)}
    assert found.exposed_ports == {"80/tcp", "53/udp"}
    assert sorted(found.networks) == ["bridge", "fixture-rec.net"]
    assert found.networks["fixture-rec.net"].aliases == ("web",)
    mounts = {m.target: (m.source, m.type, m.read_only) for m in found.mounts}
    assert mounts["/etc/app"] == ("/tmp/fixture-rec-bind", "bind", True)
    assert mounts["/data"] == ("fixture-rec.data", "volume", False)
    assert mounts["/scratch"][1] == "volume"
    assert found.restart_policy == {"MaximumRetryCount": 2, "Name": "on-failure"}
    assert found.processes is not None
    assert any("sleep 1" in p for p in found.processes)


def test_the_fake_engine_answers_like_the_recorded_one() -> None:
    """reconciler.testing synthesises inspect JSON from a spec; for main's spec it must say what the real engine
    said, field by field (ids, timestamps and anonymous volume names aside)."""
    real = parse_container(recorded("main", MAIN))
    fake = parse_container(container_json(MAIN, image=fixture("image")))
    for name in (
        "name",
        "image_id",
        "image_ref",
        "labels",
        "status",
        "exit_code",
        "health",
        "hostname",
        "domainname",
        "env",
        "cmd",
        "entrypoint",
        "user",
        "exposed_ports",
        "port_bindings",
        "volumes_from",
        "links",
        "network_mode",
        "healthcheck",
        "stop_signal",
        "stop_timeout",
        "restart_policy",
    ):
        fake_value, real_value = getattr(fake, name), getattr(real, name)
        if name == "labels":
            fake_value = {k: v for k, v in fake_value.items() if k != naming.LABEL_IMAGE}
        assert fake_value == real_value, name

    def mounts(found: ObservedContainer) -> set[tuple[str, str, str, bool]]:
        return {
            (m.target, m.type, "(anonymous)" if m.target == "/scratch" else m.source, m.read_only) for m in found.mounts
        }

    assert mounts(fake) == mounts(real)
    assert {k: (e.aliases, e.links) for k, e in fake.networks.items()} == {
        k: (e.aliases, e.links) for k, e in real.networks.items()
    }
    for key in ("Memory", "MemorySwap", "MemoryReservation", "CpuShares", "CpuQuota", "CpusetCpus", "PidsLimit"):
        assert fake.host_config.get(key) == real.host_config.get(key), key
    state = engine(container_json(MAIN, image=fixture("image"), ident=real.id), recorded("dep", DEP))
    assert container_drift(MAIN, state.containers[MAIN.name], ContainerContext(state)) == []


# --- in sync ------------------------------------------------------------------------------------------------


def test_exact_match_is_in_sync() -> None:
    assert drift_of(MAIN) == []


@pytest.mark.parametrize("spec", [DEP, NETMODE], ids=["dep", "netmode"])
def test_other_recordings_match_their_specs(spec: ContainerSpec) -> None:
    state = engine(recorded("main", MAIN), recorded("dep", DEP), recorded("netmode", NETMODE))
    drifts = container_drift(spec, state.containers[spec.name], ContainerContext(state))
    if spec is NETMODE:
        # Created, never started: the only difference is its state.
        assert drifts == [Drift(Reason.STOPPED, "state", "running", "created", Fix.START)]
    else:
        assert drifts == []


# --- image ---------------------------------------------------------------------------------------------------


def newer_image() -> dict[str, Any]:
    data = fixture("image")
    data["Id"] = "sha256:" + "1" * 64
    return data


def test_image_id_behind_its_tag() -> None:
    images = {IMAGE: newer_image(), IMAGE_ID: fixture("image")}
    state = engine(recorded("main", MAIN), recorded("dep", DEP), images=images)
    assert drift_of(MAIN, state=state) == [Drift(Reason.IMAGE, IMAGE, "1" * 12, "9759c460e8e4", R)]


def test_image_drift_of_persistent_container_only_when_asked() -> None:
    spec, data = relabelled(MAIN, persistent=True)
    state = engine(data, recorded("dep", DEP), images={IMAGE: newer_image(), IMAGE_ID: fixture("image")})
    assert drift_of(spec, state=state) == []
    assert drift_of(spec, state=state, update_persistent=True) == [
        Drift(Reason.IMAGE, IMAGE, "1" * 12, "9759c460e8e4", R)
    ]


def test_rejected_image_is_not_drift_until_the_tag_moves_again() -> None:
    """An update that failed its health gate was rolled back: the same (tag, id) is not tried again."""
    images = {IMAGE: newer_image(), IMAGE_ID: fixture("image")}
    state = engine(recorded("main", MAIN), recorded("dep", DEP), images=images)
    rejected = frozenset({(IMAGE, "sha256:" + "1" * 64)})
    assert drift_of(MAIN, state=state, rejected_images=rejected) == []
    # Rejected for another reference only: still drift.
    other = frozenset({("someone/else:1", "sha256:" + "1" * 64)})
    assert [d.reason for d in drift_of(MAIN, state=state, rejected_images=other)] == [Reason.IMAGE]
    # The tag moved on to yet another image: that one is tried.
    newest = newer_image()
    newest["Id"] = "sha256:" + "3" * 64
    state = engine(recorded("main", MAIN), recorded("dep", DEP), images={IMAGE: newest, IMAGE_ID: fixture("image")})
    assert drift_of(MAIN, state=state, rejected_images=rejected) == [
        Drift(Reason.IMAGE, IMAGE, "3" * 12, "9759c460e8e4", R)
    ]


def test_missing_image_is_not_drift_yet() -> None:
    """The image is pulled first; the container is compared again afterwards."""
    state = engine(recorded("main", MAIN), recorded("dep", DEP), images={})
    assert drift_of(MAIN, state=state) == []


# --- mounts ---------------------------------------------------------------------------------------------------

BIND = Mount("/etc/app", "/tmp/fixture-rec-bind", "bind", read_only=True)
DATA = Mount("/data", "fixture-rec.data", "volume")


@pytest.mark.parametrize(
    ("mounts", "expected"),
    [
        (
            (Mount("/etc/app", "/srv/other", "bind", True), DATA),
            [Drift(Reason.MOUNTS, "/etc/app", "/srv/other:ro", "/tmp/fixture-rec-bind:ro", R)],
        ),
        (
            (Mount("/etc/app", "/tmp/fixture-rec-bind", "bind", False), DATA),
            [Drift(Reason.MOUNTS, "/etc/app", "/tmp/fixture-rec-bind", "/tmp/fixture-rec-bind:ro", R)],
        ),
        (
            (BIND, Mount("/data", "fixture-rec.data", "volume", True)),
            [Drift(Reason.MOUNTS, "/data", "fixture-rec.data:ro", "fixture-rec.data", R)],
        ),
        (
            (BIND, Mount("/data", "fix.other_data", "volume")),
            [Drift(Reason.MOUNTS, "/data", "fix.other_data", "fixture-rec.data", R)],
        ),
        (
            (BIND, Mount("/data", "/srv/data", "bind")),  # a bind where a named volume is mounted
            [Drift(Reason.MOUNTS, "/data", "/srv/data", "fixture-rec.data", R)],
        ),
        (
            (Mount("/etc/app2", "/tmp/fixture-rec-bind", "bind", True), DATA),  # the target moved
            [
                Drift(Reason.MOUNTS, "/etc/app2", "/tmp/fixture-rec-bind:ro", None, R),
                Drift(Reason.MOUNTS, "/etc/app", None, "/tmp/fixture-rec-bind:ro", R),
            ],
        ),
        (
            (BIND, DATA, Mount("/logs", "fix.logs", "volume")),
            [Drift(Reason.MOUNTS, "/logs", "fix.logs", None, R)],
        ),
        (
            (DATA,),  # the bind was removed from the map
            [Drift(Reason.MOUNTS, "/etc/app", None, "/tmp/fixture-rec-bind:ro", R)],
        ),
    ],
    ids=["source", "read-only", "volume-ro", "volume-name", "volume-to-bind", "target", "added", "removed"],
)
def test_mounts(mounts: tuple[Mount, ...], expected: list[Drift]) -> None:
    spec, data = relabelled(MAIN, mounts=mounts)
    assert drift_of(spec, data) == expected


def test_unexpected_extra_bind_on_the_container() -> None:
    data = recorded("main", MAIN)
    data["Mounts"].append(
        {"Destination": "/extra", "Mode": "", "Propagation": "rprivate", "RW": True, "Source": "/srv/x", "Type": "bind"}
    )
    assert drift_of(MAIN, data) == [Drift(Reason.MOUNTS, "/extra", None, "/srv/x", R)]


def test_unexpected_named_volume_on_the_container() -> None:
    data = recorded("main", MAIN)
    extra = copy.deepcopy(data["Mounts"][1])
    extra.update(Destination="/cache", Name="someone.cache")
    data["Mounts"].append(extra)
    assert drift_of(MAIN, data) == [Drift(Reason.MOUNTS, "/cache", None, "someone.cache", R)]


def test_missing_share() -> None:
    spec, data = relabelled(MAIN, anonymous_volumes=("/scratch", "/cache"))
    assert drift_of(spec, data) == [Drift(Reason.MOUNTS, "/cache", "(anonymous volume)", None, R)]


def test_image_volumes_and_anonymous_volumes_are_not_extra_mounts() -> None:
    """/scratch is an anonymous volume: whether the map shares it or the image declares it, no field rule
    complains; dropping it from the map still changes the spec (hash), which is the only reason."""
    spec = changed(anonymous_volumes=())
    assert drift_of(spec) == [Drift(Reason.OPTIONS, "spec-hash", spec.spec_hash, MAIN.spec_hash, R)]
    image = fixture("image")
    image["Config"]["Volumes"] = {"/scratch": {}}
    spec, data = relabelled(MAIN, anonymous_volumes=())
    assert drift_of(spec, state=engine(data, recorded("dep", DEP), images={IMAGE: image})) == []


@pytest.mark.parametrize(
    ("wanted", "recorded_from", "expected_wanted", "expected_found"),
    [
        (("fixture-rec.dep",), None, ["fixture-rec.dep"], []),
        (("fixture-rec.dep:ro",), ["fixture-rec.dep"], ["fixture-rec.dep:ro"], ["fixture-rec.dep"]),
        ((), ["fixture-rec.dep"], [], ["fixture-rec.dep"]),
    ],
    ids=["added", "read-only", "removed"],
)
def test_volumes_from(
    wanted: tuple[str, ...], recorded_from: list[str] | None, expected_wanted: list[str], expected_found: list[str]
) -> None:
    spec, data = relabelled(MAIN, volumes_from=wanted)
    data["HostConfig"]["VolumesFrom"] = recorded_from
    assert drift_of(spec, data) == [Drift(Reason.VOLUMES_FROM, "volumes_from", expected_wanted, expected_found, R)]


# --- links and networks ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("links", "expected"),
    [
        (
            (("fixture-rec.dep", "db"), ("fixture-rec.cache", "cache")),
            [Drift(Reason.LINKS, "fixture-rec.cache:cache", "fixture-rec.cache:cache", None, R)],
        ),
        ((), [Drift(Reason.LINKS, "fixture-rec.dep:db", None, "fixture-rec.dep:db", R)]),
        (
            (("fixture-rec.dep", "database"),),
            [
                Drift(Reason.LINKS, "fixture-rec.dep:database", "fixture-rec.dep:database", None, R),
                Drift(Reason.LINKS, "fixture-rec.dep:db", None, "fixture-rec.dep:db", R),
            ],
        ),
    ],
    ids=["added", "removed", "alias"],
)
def test_links(links: tuple[tuple[str, str], ...], expected: list[Drift]) -> None:
    spec, data = relabelled(MAIN, links=links)
    assert drift_of(spec, data) == expected


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("host", [Drift(Reason.NETWORK_MODE, "network_mode", "host", "bridge", R)]),
        ("none", [Drift(Reason.NETWORK_MODE, "network_mode", "none", "bridge", R)]),
        (
            "container:fixture-rec.dep",
            [Drift(Reason.NETWORK_MODE, "network_mode", "container:fixture-rec.dep", "bridge", R)],
        ),
    ],
)
def test_network_mode(mode: str, expected: list[Drift]) -> None:
    spec, data = relabelled(MAIN, network_mode=mode, endpoints=())
    assert drift_of(spec, data) == expected


def test_network_mode_default_counts_as_bridge() -> None:
    data = recorded("main", MAIN)
    data["HostConfig"]["NetworkMode"] = "default"
    assert drift_of(MAIN, data) == []


def test_shared_network_stack_compared_by_container_identity() -> None:
    """The engine records `container:<id>`: it matches the container now holding the wanted name."""
    netmode = recorded("netmode", NETMODE)
    state = engine(recorded("main", MAIN), recorded("dep", DEP), netmode)
    found = state.containers[NETMODE.name]
    assert found.network_mode.startswith("container:153a94d2f7e9")
    ctx = ContainerContext(state)
    assert [d.reason for d in container_drift(NETMODE, found, ctx)] == [Reason.STOPPED]

    other = dataclasses.replace(NETMODE, network_mode="container:fixture-rec.main")
    other_found = engine(recorded("main", MAIN), recorded("dep", DEP), recorded("netmode", other))
    drifts = container_drift(other, other_found.containers[other.name], ContainerContext(other_found))
    assert drifts[0] == Drift(
        Reason.NETWORK_MODE, "network_mode", "container:fixture-rec.main", "container:fixture-rec.dep", R
    )

    # The container it shares is gone (or was recreated under the same name with a new id).
    gone = engine(recorded("main", MAIN), netmode)
    drifts = container_drift(NETMODE, gone.containers[NETMODE.name], ContainerContext(gone))
    assert drifts[0].reason is Reason.NETWORK_MODE
    assert drifts[0].found == "container:153a94d2f7e966746ce6d17b22d36955c0a74d13d4658cfca570888e4955d2b2"


@pytest.mark.parametrize(
    ("endpoints", "expected"),
    [
        (
            (EndpointSpec("bridge"), EndpointSpec("fixture-rec.net", aliases=("web",)), EndpointSpec("fix.back")),
            [Drift(Reason.NETWORKS, "fix.back", "connected", None, R)],
        ),
        (
            (EndpointSpec("bridge"), EndpointSpec("fixture-rec.net", aliases=("web", "www"))),
            [Drift(Reason.NETWORKS, "fixture-rec.net aliases", ["www"], ["web"], R)],
        ),
        (
            (EndpointSpec("bridge"),),
            [Drift(Reason.NETWORKS, "fixture-rec.net", None, "connected", R)],
        ),
        (
            (EndpointSpec("fixture-rec.net", aliases=("web",)),),
            [Drift(Reason.NETWORKS, "bridge", None, "connected", R)],
        ),
        (
            (
                EndpointSpec("bridge"),
                EndpointSpec("fixture-rec.net", aliases=("web",), links=(("fixture-rec.dep", "db"),)),
            ),
            [Drift(Reason.NETWORKS, "fixture-rec.net links", ["fixture-rec.dep:db"], [], R)],
        ),
        (
            (EndpointSpec("bridge"), EndpointSpec("fixture-rec.net", aliases=("web",), ipv4_address="172.18.0.9")),
            [Drift(Reason.NETWORKS, "fixture-rec.net ipv4", "172.18.0.9", None, R)],
        ),
        (
            (EndpointSpec("bridge"), EndpointSpec("fixture-rec.net")),  # fewer aliases than the container has
            [],
        ),
    ],
    ids=["missing-network", "missing-alias", "extra-network", "extra-bridge", "link", "ipv4", "alias-subset"],
)
def test_network_endpoints(endpoints: tuple[EndpointSpec, ...], expected: list[Drift]) -> None:
    spec, data = relabelled(MAIN, endpoints=endpoints)
    assert drift_of(spec, data) == expected


def test_network_disconnected_behind_our_back() -> None:
    data = recorded("main", MAIN)
    del data["NetworkSettings"]["Networks"]["fixture-rec.net"]
    assert drift_of(MAIN, data) == [Drift(Reason.NETWORKS, "fixture-rec.net", "connected", None, R)]


# --- environment, command, entrypoint, user ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        (
            (("APP_MODE", "test"), ("DB_PASSWORD", "hunter2"), ("NEW", "1")),
            [Drift(Reason.ENV, "NEW", "1", None, R)],
        ),
        (
            (("APP_MODE", "prod"), ("DB_PASSWORD", "hunter2")),
            [Drift(Reason.ENV, "APP_MODE", "prod", "test", R)],
        ),
        (
            (("DB_PASSWORD", "hunter2"),),
            [Drift(Reason.ENV, "APP_MODE", None, "test", R)],  # removed from the map: docker-map misses it
        ),
        (
            (("APP_MODE", "test"), ("DB_PASSWORD", "hunter2"), ("PATH", "/bin")),
            [Drift(Reason.ENV, "PATH", "/bin", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", R)],
        ),
        (
            (
                ("APP_MODE", "test"),
                ("DB_PASSWORD", "hunter2"),
                ("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
            ),
            [],  # the same value the image gives
        ),
    ],
    ids=["added", "changed", "removed", "override-image", "same-as-image"],
)
def test_environment(environment: tuple[tuple[str, str], ...], expected: list[Drift]) -> None:
    spec, data = relabelled(MAIN, environment=environment)
    assert drift_of(spec, data) == expected


def test_environment_from_the_image_is_not_drift() -> None:
    """PATH comes from the image, the map does not set it: not drift (the exact-match test has it too)."""
    assert "PATH" not in MAIN.env
    assert "PATH" in engine().containers[MAIN.name].env
    assert drift_of(MAIN) == []


def test_environment_changed_on_the_image_is_drift() -> None:
    """A variable that is neither in the map nor in the image the container runs is an extra one."""
    data = recorded("main", MAIN)
    data["Config"]["Env"].append("DEBUG=1")
    assert drift_of(MAIN, data) == [Drift(Reason.ENV, "DEBUG", None, "1", R)]


def test_without_the_image_an_unknown_variable_is_not_claimed_but_the_hash_still_tells() -> None:
    spec = changed(environment=(("DB_PASSWORD", "hunter2"),))
    state = engine(recorded("main", MAIN), recorded("dep", DEP), images={})
    assert drift_of(spec, state=state) == [Drift(Reason.OPTIONS, "spec-hash", spec.spec_hash, MAIN.spec_hash, R)]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"command": ("sleep", "60")}, [Drift(Reason.COMMAND, "command", ["sleep", "60"], list(TRAP), R)]),
        ({"command": None}, [Drift(Reason.COMMAND, "command", ["/bin/sh"], list(TRAP), R)]),  # the image's
        ({"entrypoint": ("/init",)}, [Drift(Reason.ENTRYPOINT, "entrypoint", ["/init"], [], R)]),
        ({"user": "3000"}, [Drift(Reason.USER, "user", "3000", "2000", R)]),
        ({"user": None}, [Drift(Reason.USER, "user", "", "2000", R)]),  # the image's user (root)
        ({"user": "2000:2000"}, [Drift(Reason.USER, "user", "2000:2000", "2000", R)]),
    ],
    ids=["command", "image-command", "entrypoint", "user", "image-user", "user-group"],
)
def test_command_entrypoint_user(changes: dict[str, Any], expected: list[Drift]) -> None:
    spec, data = relabelled(MAIN, **changes)
    assert drift_of(spec, data) == expected


def test_command_changed_on_the_container() -> None:
    data = recorded("main", MAIN)
    data["Config"]["Cmd"] = ["sh"]
    assert drift_of(MAIN, data) == [Drift(Reason.COMMAND, "command", list(TRAP), ["sh"], R)]


# --- ports ------------------------------------------------------------------------------------------------------

P80 = PortSpec("80/tcp", "18089", "127.0.0.1")
P53 = PortSpec("53/udp")


@pytest.mark.parametrize(
    ("ports", "expected"),
    [
        (
            (P80, P53, PortSpec("443/tcp", "18443")),
            [
                Drift(Reason.PORTS, "443/tcp", ["18443"], None, R),
                Drift(Reason.EXPOSED, "443/tcp", "exposed", None, R),
            ],
        ),
        (
            (PortSpec("80/tcp"), P53),  # still exposed, no longer published
            [Drift(Reason.PORTS, "80/tcp", None, ["127.0.0.1:18089"], R)],
        ),
        (
            (PortSpec("80/tcp", "18090", "127.0.0.1"), P53),
            [Drift(Reason.PORTS, "80/tcp", ["127.0.0.1:18090"], ["127.0.0.1:18089"], R)],
        ),
        (
            (PortSpec("80/tcp", "18089"), P53),  # all interfaces instead of loopback
            [Drift(Reason.PORTS, "80/tcp", ["18089"], ["127.0.0.1:18089"], R)],
        ),
        (
            (P80, P53, PortSpec("80/tcp", "18090", "127.0.0.1")),  # a second binding of the same port
            [Drift(Reason.PORTS, "80/tcp", ["127.0.0.1:18089", "127.0.0.1:18090"], ["127.0.0.1:18089"], R)],
        ),
        ((P80,), [Drift(Reason.EXPOSED, "53/udp", None, "exposed", R)]),
        ((P80, P53, PortSpec("9090/tcp")), [Drift(Reason.EXPOSED, "9090/tcp", "exposed", None, R)]),
        (
            (P53,),
            [
                Drift(Reason.PORTS, "80/tcp", None, ["127.0.0.1:18089"], R),
                Drift(Reason.EXPOSED, "80/tcp", None, "exposed", R),
            ],
        ),
    ],
    ids=["added", "unpublished", "host-port", "interface", "second-binding", "unexposed", "exposed", "removed"],
)
def test_ports(ports: tuple[PortSpec, ...], expected: list[Drift]) -> None:
    spec, data = relabelled(MAIN, ports=ports)
    assert drift_of(spec, data) == expected


def test_port_published_behind_our_back() -> None:
    data = recorded("main", MAIN)
    data["HostConfig"]["PortBindings"]["53/udp"] = [{"HostIp": "", "HostPort": "5353"}]
    assert drift_of(MAIN, data) == [Drift(Reason.PORTS, "53/udp", None, ["5353"], R)]


def test_port_exposed_by_the_image_is_not_drift() -> None:
    image = fixture("image")
    image["Config"]["ExposedPorts"] = {"53/udp": {}}
    spec, data = relabelled(MAIN, ports=(P80,))
    assert drift_of(spec, state=engine(data, recorded("dep", DEP), images={IMAGE: image})) == []


# --- healthcheck, hostname, stop ----------------------------------------------------------------------------------

RECORDED_CHECK = {"Interval": 1_000_000_000, "Retries": 3, "Test": ["CMD-SHELL", "true"]}


@pytest.mark.parametrize(
    ("healthcheck", "expected_wanted"),
    [
        (
            (("Interval", 1_000_000_000), ("Retries", 5), ("Test", ("CMD-SHELL", "true"))),
            {**RECORDED_CHECK, "Retries": 5},
        ),
        ((("Test", ("CMD", "true")),), {"Test": ["CMD", "true"]}),
        (None, None),  # the image has none: the container should have none either
    ],
    ids=["retries", "test", "removed"],
)
def test_healthcheck(healthcheck: tuple[tuple[str, Any], ...] | None, expected_wanted: dict[str, Any] | None) -> None:
    spec, data = relabelled(MAIN, healthcheck=healthcheck)
    assert drift_of(spec, data) == [Drift(Reason.HEALTHCHECK, "healthcheck", expected_wanted, RECORDED_CHECK, R)]


def test_healthcheck_from_the_image_is_wanted_when_the_map_sets_none() -> None:
    image = fixture("image")
    image["Config"]["Healthcheck"] = dict(RECORDED_CHECK)
    spec, data = relabelled(MAIN, healthcheck=None)
    assert drift_of(spec, state=engine(data, recorded("dep", DEP), images={IMAGE: image})) == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"hostname": "web-1"}, [Drift(Reason.HOSTNAME, "hostname", "web-1", "fixture-rec-main", R)]),
        ({"domainname": "example.test"}, [Drift(Reason.HOSTNAME, "domainname", "example.test", "", R)]),
        ({"stop_signal": "SIGTERM"}, [Drift(Reason.STOP, "stop_signal", "SIGTERM", "SIGINT", R)]),
        ({"stop_timeout": 10}, [Drift(Reason.STOP, "stop_timeout", 10, 3, R)]),
        ({"stop_timeout": 0}, [Drift(Reason.STOP, "stop_timeout", 0, 3, R)]),
    ],
    ids=["hostname", "domainname", "stop-signal", "stop-timeout", "stop-timeout-zero"],
)
def test_hostname_and_stop(changes: dict[str, Any], expected: list[Drift]) -> None:
    spec, data = relabelled(MAIN, **changes)
    assert drift_of(spec, data) == expected


# --- the spec hash ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"create_extra": (("working_dir", "/app"),)},
        {"host_extra": (("privileged", True),)},
        {"labels": (("team", "web"),)},
    ],
    ids=["create-option", "host-option", "label"],
)
def test_spec_hash_mismatch_without_another_reason_is_options(changes: dict[str, Any]) -> None:
    spec = changed(**changes)
    assert drift_of(spec) == [Drift(Reason.OPTIONS, "spec-hash", spec.spec_hash, MAIN.spec_hash, R)]


def test_unlabelled_hash_is_options() -> None:
    """The recording as made (label `abc`): every field matches, the hash does not."""
    assert drift_of(MAIN, fixture("container_main")) == [Drift(Reason.OPTIONS, "spec-hash", MAIN.spec_hash, "abc", R)]


def test_a_specific_reason_replaces_the_options_reason() -> None:
    spec = changed(environment=(("APP_MODE", "prod"), ("DB_PASSWORD", "hunter2")))
    assert drift_of(spec) == [Drift(Reason.ENV, "APP_MODE", "prod", "test", R)]


# --- limits and restart policy: updated in place ------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"limits": (("CpuShares", 512), ("Memory", 128 * 1024**2))},
            [Drift(Reason.LIMITS, "Memory", 128 * 1024**2, 64 * 1024**2, Fix.UPDATE)],
        ),
        (
            {"limits": (("CpuShares", 1024), ("Memory", 64 * 1024**2))},
            [Drift(Reason.LIMITS, "CpuShares", 1024, 512, Fix.UPDATE)],
        ),
        (
            {"limits": (("CpuShares", 512), ("Memory", 64 * 1024**2), ("PidsLimit", 100))},
            [Drift(Reason.LIMITS, "PidsLimit", 100, None, Fix.UPDATE)],
        ),
        (
            {"limits": ()},  # removed from the map: reset to the engine's defaults (as docker-map does)
            [
                # The engine ignores an update to 0: dropping a limit takes a new container.
                Drift(Reason.LIMITS, "CpuShares", 0, 512, Fix.RECREATE),
                Drift(Reason.LIMITS, "Memory", 0, 64 * 1024**2, Fix.RECREATE),
            ],
        ),
        (
            {"restart_policy": (("Name", "always"),)},
            [Drift(Reason.RESTART_POLICY, "restart_policy", "always", "on-failure:2", Fix.UPDATE)],
        ),
        (
            {"restart_policy": (("MaximumRetryCount", 5), ("Name", "on-failure"))},
            [Drift(Reason.RESTART_POLICY, "restart_policy", "on-failure:5", "on-failure:2", Fix.UPDATE)],
        ),
        (
            {"restart_policy": None},
            [Drift(Reason.RESTART_POLICY, "restart_policy", "no", "on-failure:2", Fix.UPDATE)],
        ),
    ],
    ids=["memory", "cpu-shares", "pids-limit", "limits-removed", "policy", "retries", "policy-removed"],
)
def test_limits_and_restart_policy_are_updated_in_place(changes: dict[str, Any], expected: list[Drift]) -> None:
    spec = changed(**changes)
    assert spec.spec_hash == MAIN.spec_hash  # not part of the hash: no recreate for them
    drifts = drift_of(spec)
    assert drifts == expected
    assert strongest(drifts) is (Fix.RECREATE if any(d.fix is Fix.RECREATE for d in expected) else Fix.UPDATE)


def test_memory_swap_derived_by_the_engine_is_not_drift() -> None:
    """The engine set MemorySwap to twice the memory (128 MiB) on its own; the map never mentioned it."""
    assert engine().containers[MAIN.name].host_config["MemorySwap"] == 128 * 1024**2
    assert "MemorySwap" not in dict(MAIN.limits)
    assert drift_of(MAIN) == []


def test_limit_changed_behind_our_back() -> None:
    data = recorded("main", MAIN)
    data["HostConfig"]["Memory"] = 32 * 1024**2
    assert drift_of(MAIN, data) == [Drift(Reason.LIMITS, "Memory", 64 * 1024**2, 32 * 1024**2, Fix.UPDATE)]


# --- state ---------------------------------------------------------------------------------------------------


def with_state(status: str, exit_code: int, *, oom: bool = False, spec: ContainerSpec = MAIN) -> dict[str, Any]:
    data = recorded("main", spec)
    data["State"].update(
        Status=status, Running=status == "running", ExitCode=exit_code, OOMKilled=oom, Dead=status == "dead", Pid=0
    )
    return data


@pytest.mark.parametrize(
    ("status", "exit_code", "oom", "expected"),
    [
        ("exited", 3, False, Drift(Reason.STOPPED, "state", "running", "exited (3)", Fix.START)),
        ("exited", 0, False, Drift(Reason.STOPPED, "state", "running", "exited (0)", Fix.START)),
        ("exited", 137, True, Drift(Reason.STOPPED, "state", "running", "exited (137), OOM-killed", Fix.START)),
        ("created", 0, False, Drift(Reason.STOPPED, "state", "running", "created", Fix.START)),
        ("exited", -1, False, Drift(Reason.EXITED, "state", "running", "exited (-1)", Fix.RECREATE)),
        ("exited", -127, False, Drift(Reason.EXITED, "state", "running", "exited (-127)", Fix.RECREATE)),
        ("dead", 0, False, Drift(Reason.EXITED, "state", "running", "dead (0)", Fix.RECREATE)),
    ],
    ids=["exit-3", "exit-0", "oom", "created", "exit-minus-1", "exit-minus-127", "dead"],
)
def test_stopped_containers(status: str, exit_code: int, oom: bool, expected: Drift) -> None:
    assert drift_of(MAIN, with_state(status, exit_code, oom=oom)) == [expected]


@pytest.mark.parametrize("status", ["running", "paused", "restarting"])
def test_running_paused_restarting_are_not_stopped(status: str) -> None:
    assert drift_of(MAIN, with_state(status, 0)) == []


def test_recorded_exited_container_is_started() -> None:
    state = engine(recorded("exited", EXITED))
    found = state.containers[EXITED.name]
    assert (found.status, found.exit_code) == ("exited", 3)
    assert container_drift(EXITED, found, ContainerContext(state)) == [
        Drift(Reason.STOPPED, "state", "running", "exited (3)", Fix.START)
    ]


def test_persistent_container_may_finish_its_job() -> None:
    spec = changed(persistent=True)
    assert drift_of(spec, with_state("exited", 0, spec=spec)) == []
    assert drift_of(spec, with_state("exited", 2, spec=spec)) == [
        Drift(Reason.STOPPED, "state", "running", "exited (2)", Fix.START)
    ]
    assert drift_of(spec, with_state("exited", -127, spec=spec))[0].fix is Fix.RECREATE


def test_stopped_and_changed_container_is_recreated_not_started() -> None:
    spec, data = relabelled(MAIN, user="3000")
    data["State"].update(Status="exited", Running=False, ExitCode=1)
    drifts = drift_of(spec, data)
    assert [d.reason for d in drifts] == [Reason.USER, Reason.STOPPED]
    assert strongest(drifts) is Fix.RECREATE


# --- exec commands -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("commands", "expected"),
    [
        ((ExecSpec("sleep 1", None, "restart"),), []),  # `sleep 1` is in the recorded process list
        ((ExecSpec(("sleep", "1"), None, "restart"),), []),
        (
            (ExecSpec("/bin/worker --daemon", None, "restart"),),
            [Drift(Reason.EXEC, "/bin/worker --daemon", "running", None, Fix.EXEC)],
        ),
        (
            (ExecSpec(("nginx", "-g", "daemon off;"), "www", "restart"),),
            [Drift(Reason.EXEC, "nginx -g daemon off;", "running", None, Fix.EXEC)],
        ),
        ((ExecSpec("/bin/worker --daemon", None, "initial"),), []),  # run once after create, never again
    ],
    ids=["running", "running-list", "missing", "missing-list", "initial"],
)
def test_exec_commands(commands: tuple[ExecSpec, ...], expected: list[Drift]) -> None:
    spec = changed(exec_commands=commands)
    assert spec.spec_hash == MAIN.spec_hash
    assert drift_of(spec) == expected


def test_exec_commands_not_checked_without_processes_or_when_stopped_or_recreated() -> None:
    spec = changed(exec_commands=(ExecSpec("/bin/worker", None, "restart"),))
    state = engine(recorded("main", MAIN), recorded("dep", DEP), processes=False)
    assert drift_of(spec, state=state) == []
    assert [d.reason for d in drift_of(spec, with_state("exited", 1))] == [Reason.STOPPED]
    recreate, data = relabelled(spec, user="3000")
    assert [d.reason for d in drift_of(recreate, data)] == [Reason.USER]


# --- volume inits --------------------------------------------------------------------------------------------

INIT = VolumeInitSpec(
    name="fixture-rec.data.init",
    map="fix",
    config="main",
    alias="data",
    volume="fixture-rec.data",
    image=IMAGE,
    owner="2000:2000",
    permissions="u=rwX,g=rX,o=",
)


def recorded_init(spec: VolumeInitSpec = INIT, *, exit_code: int = 0, status: str = "exited") -> ObservedContainer:
    """The recorded one-shot container (exited), relabelled as the init that prepared the recorded volume."""
    data = fixture("container_exited")
    data["Name"] = f"/{spec.name}"
    labels = naming.base_labels("volume-init", spec.map, spec.config)
    labels[naming.LABEL_ALIAS] = spec.alias
    labels[naming.LABEL_SPEC_HASH] = spec.spec_hash
    labels[LABEL_VOLUME_CREATED] = fixture("volume")["CreatedAt"]
    data["Config"]["Labels"] = labels
    data["State"].update(ExitCode=exit_code, Status=status)
    return parse_container(data)


VOLUME = parse_volume(fixture("volume"))


def test_prepared_volume_is_in_sync() -> None:
    assert init_drift(INIT, recorded_init(), VOLUME) == []
    # The init image is only a tool: a newer one does not make the volume unprepared.
    assert init_drift(dataclasses.replace(INIT, image="busybox:1.36"), recorded_init(), VOLUME) == []


@pytest.mark.parametrize(
    ("changes", "wanted"),
    [
        ({"owner": "3000:3000"}, "owner 3000:3000, mode u=rwX,g=rX,o="),
        ({"permissions": "750"}, "owner 2000:2000, mode 750"),
        ({"permissions": None}, "owner 2000:2000"),
        ({"owner": None}, "mode u=rwX,g=rX,o="),
    ],
)
def test_init_owner_or_permissions_changed(changes: dict[str, Any], wanted: str) -> None:
    spec = dataclasses.replace(INIT, **changes)
    assert init_drift(spec, recorded_init(), VOLUME) == [Drift(Reason.INIT, "owner/permissions", wanted, "changed", R)]


def test_init_volume_recreated() -> None:
    volume_data = fixture("volume")
    volume_data["CreatedAt"] = "2026-11-29T10:00:00Z"
    assert init_drift(INIT, recorded_init(), parse_volume(volume_data)) == [
        Drift(Reason.INIT, "volume", "prepared", "volume was recreated", R)
    ]


def test_init_failed_or_never_started() -> None:
    assert init_drift(INIT, recorded_init(exit_code=1), VOLUME) == [Drift(Reason.INIT, "exit code", 0, 1, R)]
    assert init_drift(INIT, recorded_init(exit_code=137, status="dead"), VOLUME) == [
        Drift(Reason.INIT, "exit code", 0, 137, R)
    ]
    assert init_drift(INIT, recorded_init(status="created"), VOLUME) == [
        Drift(Reason.INIT, "state", "ran", "never started", R)
    ]


# --- networks and volumes ----------------------------------------------------------------------------------------

NETWORK = NetworkSpec(name="fixture-rec.net", map="fix")


def recorded_network(**changes: Any) -> dict[str, Any]:
    data = fixture("network")
    data.update(changes)
    return data


@pytest.mark.parametrize(
    ("spec", "data", "expected"),
    [
        (NETWORK, recorded_network(), []),
        (
            dataclasses.replace(NETWORK, driver="macvlan"),
            recorded_network(),
            [Drift(Reason.NETWORK, "driver", "macvlan", "bridge", R)],
        ),
        (
            dataclasses.replace(NETWORK, internal=True),
            recorded_network(),
            [Drift(Reason.NETWORK, "internal", True, False, R)],
        ),
        (
            dataclasses.replace(NETWORK, driver_options=(("com.docker.network.bridge.name", "br-fix"),)),
            recorded_network(),
            [Drift(Reason.NETWORK, "option com.docker.network.bridge.name", "br-fix", None, R)],
        ),
        (
            NETWORK,
            recorded_network(Options={"com.docker.network.bridge.name": "br-x"}),
            [],  # an option the map does not set is the engine's business
        ),
        (
            dataclasses.replace(NETWORK, create_extra=(("attachable", True),)),
            recorded_network(Labels={**fixture("network")["Labels"], naming.LABEL_SPEC_HASH: NETWORK.spec_hash}),
            [
                Drift(
                    Reason.NETWORK,
                    "spec-hash",
                    dataclasses.replace(NETWORK, create_extra=(("attachable", True),)).spec_hash,
                    NETWORK.spec_hash,
                    R,
                )
            ],
        ),
    ],
    ids=["in-sync", "driver", "internal", "option", "engine-option", "spec-hash"],
)
def test_network_drift(spec: NetworkSpec, data: dict[str, Any], expected: list[Drift]) -> None:
    assert network_drift(spec, parse_network(data)) == expected


VOLUME_SPEC = VolumeSpec(name="fixture-rec.data", map="fix", config="main", alias="data")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (VOLUME_SPEC, []),
        (dataclasses.replace(VOLUME_SPEC, driver="nfs"), [Drift(Reason.VOLUME, "driver", "nfs", "local", Fix.NONE)]),
        (
            dataclasses.replace(VOLUME_SPEC, driver_options=(("type", "tmpfs"),)),
            [Drift(Reason.VOLUME, "driver_options", {"type": "tmpfs"}, {}, Fix.NONE)],
        ),
    ],
    ids=["in-sync", "driver", "options"],
)
def test_volume_drift_is_reported_never_fixed(spec: VolumeSpec, expected: list[Drift]) -> None:
    drifts = volume_drift(spec, VOLUME)
    assert drifts == expected
    assert strongest(drifts) is Fix.NONE


# --- describing drift -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("drift", "text"),
    [
        (Drift(Reason.ENV, "FOO", "b", "a", R), "env FOO: 'a' → 'b'"),
        (Drift(Reason.ENV, "FOO", None, "a", R), "env FOO: 'a' → (none)"),
        (Drift(Reason.USER, "user", "3000", "2000", R), "user: '2000' → '3000'"),
        (Drift(Reason.PORTS, "80/tcp", ["8080"], None, R), "ports 80/tcp: (none) → ['8080']"),
        (Drift(Reason.STOP, "stop_timeout", 10, 3, R), "stop stop_timeout: 3 → 10"),
        (
            Drift(Reason.MOUNTS, "/etc/app", "/srv/other:ro", "/tmp/fixture-rec-bind:ro", R),
            "mounts /etc/app: '/tmp/fixture-rec-bind:ro' → '/srv/other:ro'",
        ),
        (Drift(Reason.MISSING, "container", "m.web", None, Fix.CREATE), "container missing"),
        (Drift(Reason.STOPPED, "state", "running", "exited (3)", Fix.START), "stopped state: 'exited (3)' → 'running'"),
    ],
)
def test_describe(drift: Drift, text: str) -> None:
    assert drift.describe() == text


@pytest.mark.parametrize(
    "name", ["DB_PASSWORD", "PASSWORD", "API_TOKEN", "AWS_SECRET_ACCESS_KEY", "SSH_KEY", "SECRET", "db_passwd"]
)
def test_secret_environment_values_are_masked(name: str) -> None:
    drift = Drift(Reason.ENV, name, "n3w-s3cret", "hunter2", R)
    assert is_secret(name)
    assert drift.describe() == f"env {name}: '***' → '***'"
    assert drift.as_dict() == {"reason": "env", "field": name, "wanted": "***", "found": "***", "fix": "recreate"}
    assert "hunter2" in drift.describe(mask=False)
    assert drift.as_dict(mask=False)["found"] == "hunter2"
    # An absent value stays visibly absent.
    assert Drift(Reason.ENV, name, None, "hunter2", R).describe() == f"env {name}: '***' → (none)"


@pytest.mark.parametrize("name", ["APP_MODE", "PATH", "HOSTNAME", "LANG"])
def test_ordinary_environment_values_are_shown(name: str) -> None:
    drift = Drift(Reason.ENV, name, "b", "a", R)
    assert not is_secret(name)
    assert drift.describe() == f"env {name}: 'a' → 'b'"
    assert drift.as_dict()["wanted"] == "b"


def test_recorded_secret_never_shown() -> None:
    spec = changed(environment=(("APP_MODE", "test"), ("DB_PASSWORD", "correct horse")))
    [drift] = drift_of(spec)
    assert (drift.reason, drift.field, drift.wanted, drift.found) == (
        Reason.ENV,
        "DB_PASSWORD",
        "correct horse",
        "hunter2",
    )
    assert "hunter2" not in drift.describe()
    assert "correct horse" not in drift.describe()
    assert "hunter2" not in str(drift.as_dict())


def test_as_dict_is_plain_json() -> None:
    drift = Drift(Reason.EXPOSED, "53/udp", frozenset({"b", "a"}), ("x", "y"), R)
    assert drift.as_dict() == {
        "reason": "exposed",
        "field": "53/udp",
        "wanted": ["a", "b"],
        "found": ["x", "y"],
        "fix": "recreate",
    }


def test_strongest_fix_orders_recreate_over_restart_over_start_over_update_over_exec() -> None:
    def d(fix: Fix) -> Drift:
        return Drift(Reason.OPTIONS, "x", 1, 2, fix)

    assert strongest([]) is Fix.NONE
    assert strongest([d(Fix.EXEC), d(Fix.UPDATE)]) is Fix.UPDATE
    assert strongest([d(Fix.UPDATE), d(Fix.START)]) is Fix.START
    assert strongest([d(Fix.START), d(Fix.RESTART)]) is Fix.RESTART
    assert strongest([d(Fix.RECREATE), d(Fix.RESTART), d(Fix.EXEC)]) is Fix.RECREATE
