"""The expected engine state: one normalisation of what the map says, as the engine will store it.

Pure companions of tests/integration/test_false_drift.py: each engine behaviour found there (cleaned
paths, link lists, healthchecks merged with the image's, links on user networks, options given twice) is
pinned here on the desired state, the create arguments and the drift rules.
"""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.executor import translate
from reconciler.model import combine_maps, load_map_dict
from reconciler.plan.desired import desired_state
from reconciler.plan.drift import expected_healthcheck
from reconciler.plan.options import clean_path, fold
from reconciler.plan.resources import ContainerSpec, Mount, PortSpec


def _spec(data: dict[str, Any], name: str) -> ContainerSpec:
    return desired_state(combine_maps([load_map_dict({"name": "m", **data})])).containers[name]


@pytest.mark.parametrize(
    ("written", "stored"),
    [("/etc/app/", "/etc/app"), ("/etc//app", "/etc/app"), ("//etc/./app/..", "/etc"), ("/", "/"), ("rel/", "rel")],
)
def test_container_paths_are_cleaned_as_the_engine_stores_them(written: str, stored: str) -> None:
    assert clean_path(written) == stored


def test_mount_targets_shares_and_host_paths_are_cleaned() -> None:
    spec = _spec(
        {
            "volumes": {"cfg": "/etc/app/", "data": "/var//data/"},
            "host": {"cfg": "/srv/cfg/"},
            "app": {"binds": {"cfg": "ro"}, "attaches": "data", "shares": ["/cache/"]},
        },
        "m.app",
    )
    assert {(m.target, m.source) for m in spec.mounts} == {("/etc/app", "/srv/cfg"), ("/var/data", "m.data")}
    assert spec.anonymous_volumes == ("/cache",)


def test_two_aliases_of_one_link_both_reach_the_engine() -> None:
    spec = _spec({"db": {}, "app": {"links": ["db", ["db", "database"], "db"]}}, "m.app")
    assert spec.links == (("m.db", "db"), ("m.db", "database"))  # the repeated one counts once
    assert translate.container_config(spec)["host_config"]["links"] == [("m.db", "db"), ("m.db", "database")]


def test_legacy_links_on_a_user_network_are_sent_as_that_endpoints_links() -> None:
    """The engine drops HostConfig.Links when an endpoint config for a user network is sent."""
    spec = _spec({"networks": {"back": {}}, "db": {}, "app": {"links": ["db"], "networks": ["back"]}}, "m.app")
    config = translate.container_config(spec)
    assert "links" not in config["host_config"]
    assert config["networking"]["m.back"]["links"] == [("m.db", "db")]


def test_a_healthcheck_without_test_keeps_the_images_test() -> None:
    spec = _spec({"app": {"healthcheck": {"retries": 5}}}, "m.app")
    assert dict(spec.healthcheck or ()) == {"Retries": 5}
    assert "Test" not in translate.container_config(spec)["healthcheck"]
    image = {"Test": ["CMD-SHELL", "true"], "Interval": 2_000_000_000, "Retries": 2}
    assert expected_healthcheck({"Retries": 5}, image) == {**image, "Retries": 5}
    assert expected_healthcheck({}, image) == image
    assert expected_healthcheck({"Test": ("NONE",)}, None) == {"Test": ("NONE",)}


def test_overlapping_options_are_folded_into_the_modelled_fields() -> None:
    create: dict[str, Any] = {
        "ports": [8000, "53/udp", [9000, "udp"]],
        "volumes": ["/scratch/"],
        "healthcheck": {"test": "true", "interval": 1_000_000_000},
        "working_dir": "/w",
    }
    host: dict[str, Any] = {
        "binds": ["/srv/a/:/a:ro", "named:/n"],
        "port_bindings": {8000: ("127.0.0.1", 18000), "53/udp": [53, 5353], 7000: None},
        "links": {"other": "o", "plain": None},
        "volumes_from": "provider",
        "network_mode": "host",
        "mounts": [{"type": "tmpfs", "target": "/t"}],
        "privileged": True,
    }
    folded = fold(create, host)
    assert folded.mounts == [Mount("/a", "/srv/a", "bind", True), Mount("/n", "named", "volume", False)]
    assert {p.container_port for p in folded.ports} == {"8000/tcp", "53/udp", "9000/udp", "7000/tcp"}
    assert PortSpec("8000/tcp", "18000", "127.0.0.1") in folded.ports
    assert {p.host_port for p in folded.ports if p.container_port == "53/udp"} == {None, "53", "5353"}
    assert folded.links == [("other", "o"), ("plain", "plain")]
    assert folded.volumes_from == ["provider"]
    assert folded.network_mode == "host"
    assert folded.anonymous == ["/scratch"]
    assert dict(folded.healthcheck or ()) == {"Test": ("CMD-SHELL", "true"), "Interval": 1_000_000_000}
    # What the map does not model passes through (tmpfs mounts among it).
    assert create == {"working_dir": "/w"}
    assert host == {"privileged": True, "mounts": [{"type": "tmpfs", "target": "/t"}]}


def test_options_extend_the_maps_lists_and_win_for_single_values() -> None:
    spec = _spec(
        {
            "volumes": {"cfg": "/etc/cfg"},
            "host": {"cfg": "/srv/cfg"},
            "db": {},
            "app": {
                "binds": {"cfg": "ro"},
                "links": "db",
                "exposes": {80: 8080},
                "network_mode": "bridge",
                "host_config": {
                    "binds": ["/srv/extra:/extra", "/srv/other:/etc/cfg"],
                    "port_bindings": {81: 8181},
                    "links": [["db", "database"]],
                    "network_mode": "none",
                },
            },
        },
        "m.app",
    )
    # The map's own bind at /etc/cfg wins over the option's bind at the same path: one mount per path.
    assert {m.target: m.source for m in spec.mounts} == {"/etc/cfg": "/srv/cfg", "/extra": "/srv/extra"}
    assert {(p.container_port, p.host_port) for p in spec.ports} == {("80/tcp", "8080"), ("81/tcp", "8181")}
    assert set(spec.links) == {("m.db", "db"), ("db", "database")}
    assert spec.network_mode == "none"
    assert spec.host_extra == ()


def test_bad_option_values_are_refused_with_the_key() -> None:
    with pytest.raises(ValueError, match=r"host_config\.binds entry '/only-one' must be"):
        fold({}, {"binds": ["/only-one"]})
    with pytest.raises(ValueError, match=r"host_config\.port_bindings must be a mapping"):
        fold({}, {"port_bindings": [80]})


def test_options_naming_map_containers_depend_on_them() -> None:
    """`host_config: {links: {m.db: x}, volumes_from: [m.store]}` names containers of the map: they are
    created first (before, the create failed with "No such container")."""
    state = desired_state(
        combine_maps(
            [
                load_map_dict(
                    {
                        "name": "m",
                        "db": {},
                        "store": {"shares": ["/s"]},
                        "app": {"host_config": {"links": {"m.db": "x"}, "volumes_from": ["m.store"]}},
                    }
                )
            ]
        )
    )
    deps = {d.name for d in state.depends_on[state.containers["m.app"].id]}
    assert {"m.db", "m.store"} <= deps


def test_port_bindings_in_the_engines_own_form() -> None:
    folded = fold({}, {"port_bindings": {7000: {"HostIp": "127.0.0.1", "HostPort": 7001}}})
    assert folded.ports == [PortSpec("7000/tcp", "7001", "127.0.0.1")]
