"""Desired state: what a loaded map turns into in engine terms (DESIGN §3 names and labels, §4 resources).

Every test loads a real map (YAML text or a docker-map style dict) and looks at the `DesiredState` that
`desired_state` builds from it: names, images, the split of create/host options into compared fields,
updatable limits and pass-through options, volume inits, dependency edges and the spec hash.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from reconciler.model import MapSet, combine_maps, load_map_dict, load_map_text
from reconciler.plan import naming
from reconciler.plan.desired import desired_state
from reconciler.plan.resources import (
    ContainerSpec,
    DesiredState,
    EndpointSpec,
    ExecSpec,
    Kind,
    Mount,
    PortSpec,
    ResourceId,
)
from tests.recorded import SEED_MAP as SEED_YAML

ROOT = Path(__file__).resolve().parents[2]


def maps_of(*texts: str, file: str = "<map>") -> MapSet:
    return combine_maps([load_map_text(textwrap.dedent(t), file) for t in texts])


def desired(*texts: str, file: str = "<map>") -> DesiredState:
    return desired_state(maps_of(*texts, file=file))


def one(text: str, name: str | None = None) -> ContainerSpec:
    """The only container of a map (or the one named `name`)."""
    state = desired(text)
    assert not state.problems, state.problems
    if name is None:
        [spec] = state.containers.values()
        return spec
    return state.containers[name]


def cid(name: str) -> ResourceId:
    return ResourceId(Kind.CONTAINER, name)


def vid(name: str) -> ResourceId:
    return ResourceId(Kind.VOLUME, name)


def iid(name: str) -> ResourceId:
    return ResourceId(Kind.VOLUME_INIT, name)


def img(ref: str) -> ResourceId:
    return ResourceId(Kind.IMAGE, ref)


def nid(name: str) -> ResourceId:
    return ResourceId(Kind.NETWORK, name)


# --- names (DESIGN §3) -----------------------------------------------------------------------------------


def test_seed_map_resources_and_names() -> None:
    state = desired(SEED_YAML)
    assert sorted(state.containers) == ["main.nginx", "main.uwsgi"]
    assert sorted(state.volumes) == ["main.app_log", "main.nginx_log", "main.uwsgi_log", "main.uwsgi_socket"]
    # Only uwsgi has a user/permissions: its three attached volumes are prepared, nginx's log is not.
    assert sorted(state.inits) == ["main.app_log.init", "main.uwsgi_log.init", "main.uwsgi_socket.init"]
    assert sorted(state.images) == ["nginx:latest", "uwsgi:latest"]
    assert state.networks == {}
    assert state.maps == frozenset({"main"})
    assert state.problems == ()


@pytest.mark.parametrize(
    ("instances", "expected"),
    [
        (None, ["site.web"]),
        (["one"], ["site.web.one"]),
        (["a", "b", "c"], ["site.web.a", "site.web.b", "site.web.c"]),
    ],
)
def test_container_names_per_instance(instances: list[str] | None, expected: list[str]) -> None:
    config: dict[str, Any] = {"image": "busybox"}
    if instances is not None:
        config["instances"] = instances
    state = desired_state(combine_maps([load_map_dict({"name": "site", "web": config})]))
    assert sorted(state.containers) == expected
    for name in expected:
        spec = state.containers[name]
        assert (spec.map, spec.config) == ("site", "web")
        assert spec.instance == (name.split(".")[2] if instances else None)
        assert spec.id == cid(name)


@pytest.mark.parametrize(
    ("parent_name", "volume", "use"),
    [
        (False, "m.logs", "logs"),
        (True, "m.app.logs", "app.logs"),
    ],
)
def test_attached_volume_names(parent_name: bool, volume: str, use: str) -> None:
    state = desired(
        f"""
        name: m
        use_attached_parent_name: {str(parent_name).lower()}
        volumes: {{logs: /var/log/app}}
        app: {{attaches: logs, user: 1000}}
        reader: {{uses: {use}}}
        """
    )
    assert list(state.volumes) == [volume]
    vol = state.volumes[volume]
    assert (vol.map, vol.config, vol.alias) == ("m", "app", "logs")
    assert list(state.inits) == [f"{volume}.init"]
    init = state.inits[f"{volume}.init"]
    assert (init.volume, init.alias, init.config, init.map) == (volume, "logs", "app", "m")
    # Both the attaching and the using container mount the same volume.
    assert state.containers["m.app"].mounts == (Mount("/var/log/app", volume, "volume"),)
    assert state.containers["m.reader"].mounts == (Mount("/var/log/app", volume, "volume"),)


def test_network_names_presets_keep_theirs() -> None:
    state = desired(
        """
        name: m
        networks: {back: {internal: true}, front: null}
        web:
          networks: [front, bridge, [back, {aliases: [api]}]]
        """
    )
    assert sorted(state.networks) == ["m.back", "m.front"]  # bridge is a preset: not created
    assert state.networks["m.back"].internal is True
    assert state.networks["m.front"].internal is False
    assert state.networks["m.back"].map == "m"
    spec = state.containers["m.web"]
    assert [e.network for e in spec.endpoints] == ["m.front", "bridge", "m.back"]
    assert spec.endpoints[2].aliases == ("api",)
    # The first endpoint's network is the container's network mode.
    assert spec.network_mode == "m.front"
    deps = state.depends_on[cid("m.web")]
    assert {nid("m.front"), nid("m.back")} <= deps
    assert nid("bridge") not in deps


@pytest.mark.parametrize(
    ("map_name", "config", "instance", "expected"),
    [
        ("site", "web", None, "site-web"),
        ("my_site", "web_app", None, "my-site-web-app"),
        ("my_site", "web_app", "i_1", "my-site-web-app-i-1"),
        ("a-b", "c", "d", "a-b-c-d"),
    ],
)
def test_hostnames_replace_dots_and_underscores(
    map_name: str, config: str, instance: str | None, expected: str
) -> None:
    data: dict[str, Any] = {"name": map_name, config: {"image": "busybox"}}
    if instance:
        data[config]["instances"] = [instance]
    [spec] = desired_state(combine_maps([load_map_dict(data)])).containers.values()
    assert spec.hostname == expected


def test_hostname_off_explicit_and_domain() -> None:
    assert one("name: m\nweb: {}\nset_hostname: false").hostname is None
    spec = one("name: m\ndefault_domain: example.test\nweb: {create_options: {hostname: www, domainname: x.org}}")
    assert (spec.hostname, spec.domainname) == ("www", "x.org")
    assert one("name: m\ndefault_domain: example.test\nweb: {}").domainname == "example.test"


def test_labels_of_everything_we_create() -> None:
    labels = naming.base_labels(Kind.CONTAINER.value, "main", "web", "one")
    assert labels == {
        "io.reconciler.managed": "true",
        "io.reconciler.kind": "container",
        "io.reconciler.map": "main",
        "io.reconciler.config": "web",
        "io.reconciler.instance": "one",
    }
    assert naming.base_labels(Kind.NETWORK.value, "main") == {
        "io.reconciler.managed": "true",
        "io.reconciler.kind": "network",
        "io.reconciler.map": "main",
    }
    # User labels from create_options are kept on the spec (ours are added when creating), in both forms.
    assert one("name: m\nweb: {create_options: {labels: {b: 2, a: x}}}").labels == (("a", "x"), ("b", "2"))
    assert one("name: m\nweb: {create_options: {labels: [z, y]}}").labels == (("y", ""), ("z", ""))


# --- images ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "repository", "default_tag", "expected"),
    [
        (None, None, None, "web:latest"),  # no image: the config name
        ("nginx", None, None, "nginx:latest"),
        ("nginx:1.25", None, None, "nginx:1.25"),
        ("nginx", "registry.example.com", None, "registry.example.com/nginx:latest"),
        ("nginx", "registry.example.com", "stable", "registry.example.com/nginx:stable"),
        (None, "registry.example.com", "stable", "registry.example.com/web:stable"),
        ("/nginx", "registry.example.com", None, "nginx:latest"),  # a leading / opts out of the repository
        ("library/nginx", "registry.example.com", None, "library/nginx:latest"),
        ("localhost:5000/app", "registry.example.com", None, "localhost:5000/app:latest"),
        ("app@sha256:" + "a" * 64, None, None, "app@sha256:" + "a" * 64),
    ],
)
def test_image_resolution(image: str | None, repository: str | None, default_tag: str | None, expected: str) -> None:
    data: dict[str, Any] = {"name": "m", "web": {} if image is None else {"image": image}}
    if repository:
        data["repository"] = repository
    if default_tag:
        data["default_tag"] = default_tag
    state = desired_state(combine_maps([load_map_dict(data)]))
    assert state.containers["m.web"].image == expected
    assert list(state.images) == [expected]
    assert img(expected) in state.depends_on[cid("m.web")]


def test_volume_init_image_setting_and_default() -> None:
    text = "name: m\nvolumes: {data: /data}\napp: {image: app:2, attaches: data, user: 1000}\n"
    assert desired(text).inits["m.data.init"].image == "app:2"  # default: the attaching config's image
    state = desired(text + "volume_init: {image: tools/init:1}\n")
    assert state.inits["m.data.init"].image == "tools/init:1"
    assert img("tools/init:1") in state.depends_on[iid("m.data.init")]
    assert "tools/init:1" in state.images


def test_volume_init_image_without_tag_gets_one() -> None:
    """Every image reference in the desired state is complete (`name:tag`), as the engine lists them in
    RepoTags; an init image written without a tag must not stay a bare name (it would never be found among
    the engine's tags, so every plan would pull it again and never be in sync)."""
    state = desired(
        """
        name: m
        volume_init: {image: busybox}
        volumes: {data: /data}
        app: {image: app:2, attaches: data, user: 1000}
        """
    )
    assert state.inits["m.data.init"].image == "busybox:latest"
    assert sorted(state.images) == ["app:2", "busybox:latest"]


# --- command, entrypoint, environment, user ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "command", "entrypoint"),
    [
        ({}, None, None),
        ({"command": "worker -A MyApp -Q queue1,queue2"}, ("worker", "-A", "MyApp", "-Q", "queue1,queue2"), None),
        ({"command": "sh -c 'echo a b; sleep 1'"}, ("sh", "-c", "echo a b; sleep 1"), None),
        ({"command": ["sh", "-c", "echo a b"]}, ("sh", "-c", "echo a b"), None),
        ({"command": [1, 2]}, ("1", "2"), None),
        ({"entrypoint": "celery"}, None, ("celery",)),
        ({"entrypoint": ["/init", "--"], "command": "serve"}, ("serve",), ("/init", "--")),
    ],
)
def test_command_and_entrypoint_splitting(
    options: dict[str, Any], command: tuple[str, ...] | None, entrypoint: tuple[str, ...] | None
) -> None:
    state = desired_state(combine_maps([load_map_dict({"name": "m", "web": {"create_options": options}})]))
    spec = state.containers["m.web"]
    assert (spec.command, spec.entrypoint) == (command, entrypoint)
    assert spec.create_extra == ()  # modelled: not passed through a second time


def test_command_of_wrong_type_is_a_problem_not_a_crash() -> None:
    state = desired_state(combine_maps([load_map_dict({"name": "m", "web": {"create_options": {"command": 5}}})]))
    assert state.containers == {}
    [(rid, message)] = state.problems
    assert rid == cid("m.web")
    assert "command must be a string or a list" in message


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({"B": "2", "A": 1}, (("A", "1"), ("B", "2"))),
        ({"FLAG": True, "OFF": False, "EMPTY": None}, (("EMPTY", ""), ("FLAG", "true"), ("OFF", "false"))),
        (["A=1", "B=x=y", "C="], (("A", "1"), ("B", "x=y"), ("C", ""))),
        (["A=1", "A=2"], (("A", "2"),)),  # the last one wins, as in the engine
        ({}, ()),
    ],
)
def test_environment_dict_and_list_forms(environment: Any, expected: tuple[tuple[str, str], ...]) -> None:
    data = {"name": "m", "web": {"create_options": {"environment": environment}}}
    spec = desired_state(combine_maps([load_map_dict(data)])).containers["m.web"]
    assert spec.environment == expected
    assert spec.env == dict(expected)


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, None),
        ({"user": 2000}, "2000"),
        ({"user": "app"}, "app"),
        ({"user": ["app", "staff"]}, "app"),  # the group is for chowning attached volumes
        ({"user": "1000:50"}, "1000"),
        ({"create_options": {"user": "nobody"}}, "nobody"),
        ({"user": 1000, "create_options": {"user": "nobody"}}, "1000"),  # the config key wins
    ],
)
def test_user(config: dict[str, Any], expected: str | None) -> None:
    spec = desired_state(combine_maps([load_map_dict({"name": "m", "web": config})])).containers["m.web"]
    assert spec.user == expected
    assert "user" not in dict(spec.create_extra)


# --- ports --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exposes", "expected"),
    [
        ({80: 80}, [PortSpec("80/tcp", "80")]),
        ([8080], [PortSpec("8080/tcp")]),
        (["53/udp"], [PortSpec("53/udp")]),
        ([[80, 8080]], [PortSpec("80/tcp", "8080")]),
        ([[8443, 18443, "127.0.0.1"]], [PortSpec("8443/tcp", "18443", "127.0.0.1")]),
        ({80: [18080, "10.1.2.3"]}, [PortSpec("80/tcp", "18080", "10.1.2.3")]),
        ([[53, 5353, "::1"]], [PortSpec("53/tcp", "5353", "::1")]),
        ({80: 80, 443: 443}, [PortSpec("80/tcp", "80"), PortSpec("443/tcp", "443")]),
    ],
)
def test_ports_with_interface_addresses(exposes: Any, expected: list[PortSpec]) -> None:
    spec = desired_state(combine_maps([load_map_dict({"name": "m", "web": {"exposes": exposes}})])).containers["m.web"]
    assert list(spec.ports) == expected


def test_interface_alias_is_a_problem_naming_it() -> None:
    state = desired(
        """
        name: m
        web: {exposes: {8443: [8443, private]}}
        ok: {}
        """
    )
    assert list(state.containers) == ["m.ok"]
    [(rid, message)] = state.problems
    assert rid == cid("m.web")
    assert "'private'" in message
    assert "not an IP address" in message


# --- binds, attached and used volumes, shares ------------------------------------------------------------


def test_seed_map_mounts() -> None:
    state = desired(SEED_YAML)
    assert state.containers["main.nginx"].mounts == (
        Mount("/etc/nginx", "/var/lib/site/config/nginx", "bind", read_only=True),
        Mount("/var/log/nginx", "main.nginx_log", "volume"),
        Mount("/var/lib/uwsgi/socket", "main.uwsgi_socket", "volume"),
    )
    assert state.containers["main.uwsgi"].mounts == (
        Mount("/etc/uwsgi", "/var/lib/site/config/uwsgi", "bind", read_only=True),
        Mount("/var/lib/app/config", "/var/lib/site/config/app", "bind", read_only=True),
        Mount("/var/lib/app/data", "/var/lib/site/data/app", "bind"),
        Mount("/var/log/uwsgi", "main.uwsgi_log", "volume"),
        Mount("/var/lib/app/log", "main.app_log", "volume"),
        Mount("/var/lib/uwsgi/socket", "main.uwsgi_socket", "volume"),
    )


@pytest.mark.parametrize(
    ("host_root", "file", "host", "expected"),
    [
        ("/srv/site", "<map>", "config/app", "/srv/site/config/app"),
        ("/srv/site", "<map>", "/abs/app", "/abs/app"),
        ("/srv/site", "<map>", "config/../other/app", "/srv/site/other/app"),
        (None, "/etc/maps/site.yaml", "config/app", "/etc/maps/config/app"),  # no host_root: the map's folder
        ("relative", "/etc/maps/site.yaml", "config/app", "/etc/maps/relative/config/app"),
    ],
)
def test_alias_binds_get_host_paths_joined_to_host_root(
    host_root: str | None, file: str, host: str, expected: str
) -> None:
    root = f"host_root: {host_root}\n" if host_root else ""
    text = f"name: m\n{root}volumes: {{conf: /etc/app}}\nhost: {{conf: {host}}}\nweb: {{binds: {{conf: ro}}}}\n"
    state = desired_state(combine_maps([load_map_text(text, file)]))
    assert state.containers["m.web"].mounts == (Mount("/etc/app", expected, "bind", read_only=True),)


@pytest.mark.parametrize(
    ("binds", "expected"),
    [
        ({"/etc/nginx": ["config/nginx", "ro"]}, Mount("/etc/nginx", "/srv/config/nginx", "bind", True)),
        ({"/var/lib/redis": "redis/data"}, Mount("/var/lib/redis", "/srv/redis/data", "bind", False)),
        ([["/opt/x", "/abs/x", "rw"]], Mount("/opt/x", "/abs/x", "bind", False)),
        ([["/opt/x", "/abs/x", True]], Mount("/opt/x", "/abs/x", "bind", True)),
    ],
)
def test_container_path_binds(binds: Any, expected: Mount) -> None:
    data = {"name": "m", "host_root": "/srv", "web": {"binds": binds}}
    assert desired_state(combine_maps([load_map_dict(data)])).containers["m.web"].mounts == (expected,)


def test_per_instance_host_paths() -> None:
    state = desired(
        """
        name: m
        host_root: /srv
        volumes: {data: /data}
        host: {data: {one: data/one, two: /abs/two, default: data/any}}
        db: {instances: [one, two, three], binds: [data]}
        """
    )
    sources = {name: spec.mounts[0].source for name, spec in state.containers.items()}
    assert sources == {"m.db.one": "/srv/data/one", "m.db.two": "/abs/two", "m.db.three": "/srv/data/any"}


def test_missing_per_instance_host_path_is_a_problem_not_an_error() -> None:
    state = desired(
        """
        name: m
        volumes: {data: /data}
        host: {data: {one: /srv/one}}
        db: {instances: [one, two], binds: [data]}
        web: {links: db.one}
        """
    )
    # The buildable instance and the rest of the map are still there.
    assert sorted(state.containers) == ["m.db.one", "m.web"]
    [(rid, message)] = state.problems
    assert rid == cid("m.db.two")
    assert "no host path for volume alias 'data'" in message
    assert "instance 'two'" in message


def test_attached_and_used_volumes_with_paths_and_read_only() -> None:
    state = desired(
        """
        name: m
        volumes: {sock: /run/app, logs: /var/log/app}
        app: {attaches: [logs, [sock, /run/sock]]}
        reader: {uses: [[sock, /sock, ro], {logs: [/logs, ro]}]}
        writer: {uses: [sock, logs]}
        """
    )
    assert state.containers["m.app"].mounts == (
        Mount("/var/log/app", "m.logs", "volume"),
        Mount("/run/sock", "m.sock", "volume"),  # the attach's own path wins over `volumes`
    )
    assert state.containers["m.reader"].mounts == (
        Mount("/sock", "m.sock", "volume", read_only=True),
        Mount("/logs", "m.logs", "volume", read_only=True),
    )
    assert state.containers["m.writer"].mounts == (
        Mount("/run/sock", "m.sock", "volume"),  # no path given: where the attaching config mounts it
        Mount("/var/log/app", "m.logs", "volume"),
    )
    assert state.containers["m.reader"].volumes_from == ()


def test_shares_are_anonymous_volumes() -> None:
    spec = one("name: m\nweb: {shares: [/scratch, /cache]}")
    assert spec.anonymous_volumes == ("/scratch", "/cache")
    assert spec.mounts == ()


# --- links, volumes_from, network mode, endpoints ---------------------------------------------------------


def test_links_name_the_container_and_keep_the_alias() -> None:
    state = desired(
        """
        name: m
        db: {instances: [a, b]}
        cache: {}
        web: {links: [[db.a, database], db.b, [cache, c]]}
        """
    )
    web = state.containers["m.web"]
    # Without an alias the link is known by the reference in hostname form (docker-map's `get_hostname`).
    assert web.links == (("m.db.a", "database"), ("m.db.b", "db-b"), ("m.cache", "c"))
    assert {cid("m.db.a"), cid("m.db.b"), cid("m.cache")} <= state.depends_on[cid("m.web")]


def test_link_without_alias_uses_the_hostname_form_of_the_reference() -> None:
    """docker-map links `app_server.instance1` as `app-server-instance1` (`.` and `_` become `-`, no map name),
    on the legacy link and on a network endpoint's link alike."""
    state = desired(
        """
        name: m
        networks: {net: {}}
        app_server: {instances: [instance1]}
        db_main: {}
        web:
          links: [app_server.instance1, db_main]
        api:
          networks: [[net, {links: [app_server.instance1]}]]
        """
    )
    web, api = state.containers["m.web"], state.containers["m.api"]
    assert web.links == (("m.app_server.instance1", "app-server-instance1"), ("m.db_main", "db-main"))
    assert api.endpoints[0].links == (("m.app_server.instance1", "app-server-instance1"),)


@pytest.mark.parametrize(
    ("uses", "volumes_from"),
    [
        ("provider", ("m.provider.a", "m.provider.b")),
        ("provider.b", ("m.provider.b",)),
        ([["provider", "ro"]], ("m.provider.a:ro", "m.provider.b:ro")),
        ("single", ("m.single",)),
    ],
)
def test_uses_of_a_container_config_is_volumes_from(uses: Any, volumes_from: tuple[str, ...]) -> None:
    data = {
        "name": "m",
        "provider": {"instances": ["a", "b"], "shares": ["/shared"]},
        "single": {"shares": ["/x"]},
        "web": {"uses": uses},
    }
    state = desired_state(combine_maps([load_map_dict(data)]))
    web = state.containers["m.web"]
    assert web.volumes_from == volumes_from
    assert web.mounts == ()
    providers = {cid(v.split(":")[0]) for v in volumes_from}
    assert providers <= state.depends_on[cid("m.web")]


@pytest.mark.parametrize(
    ("mode", "expected", "dependency"),
    [
        ("host", "host", None),
        ("none", "none", None),
        ("disabled", "none", None),
        ("bridge", "bridge", None),
        ("app", "container:m.app", "m.app"),
        ("svc.two", "container:m.svc.two", "m.svc.two"),
        ("container:outside", "container:outside", None),
        ("/outside", "container:outside", None),
    ],
)
def test_network_mode(mode: str, expected: str, dependency: str | None) -> None:
    data = {"name": "m", "app": {}, "svc": {"instances": ["one", "two"]}, "web": {"network_mode": mode}}
    state = desired_state(combine_maps([load_map_dict(data)]))
    web = state.containers["m.web"]
    assert web.network_mode == expected
    assert web.endpoints == ()
    container_deps = {d for d in state.depends_on[cid("m.web")] if d.kind is Kind.CONTAINER}
    assert container_deps == ({cid(dependency)} if dependency else set())


@pytest.mark.parametrize("written", ["network_mode:", "network_mode: null", "network_mode: ''", "network_mode: false"])
def test_network_mode_present_but_empty_means_none(written: str) -> None:
    """docker-map's `get_network_mode`: an empty value disables networking (`none`), it is not the default."""
    assert one(f"name: m\nweb:\n  {written}\n").network_mode == "none"


def test_network_mode_left_out_is_the_engine_default() -> None:
    assert one("name: m\nweb: {image: x}\n").network_mode is None


def test_network_mode_emptied_by_an_extending_config_overrides_the_base() -> None:
    spec = one("name: m\nbase: {abstract: true, network_mode: host}\nweb: {extends: base, network_mode: null}\n")
    assert spec.network_mode == "none"


def test_network_endpoints_with_aliases_links_and_addresses() -> None:
    state = desired(
        """
        name: m
        networks: {app: null, back: null}
        db: {networks: back}
        web:
          networks:
            app: {aliases: [www, api], links: [[db, database]], ipv4_address: 10.9.0.5}
            back: null
        """
    )
    web = state.containers["m.web"]
    assert web.endpoints == (
        EndpointSpec("m.app", aliases=("www", "api"), links=(("m.db", "database"),), ipv4_address="10.9.0.5"),
        EndpointSpec("m.back"),
    )
    assert web.network_mode == "m.app"
    assert web.links == ()  # endpoint links are not legacy links
    assert state.depends_on[cid("m.web")] == {img("web:latest"), nid("m.app"), nid("m.back"), cid("m.db")}


# --- healthcheck, stop, limits, pass-through options ------------------------------------------------------


@pytest.mark.parametrize(
    ("check", "expected"),
    [
        ("curl -f localhost", {"Test": ("CMD-SHELL", "curl -f localhost")}),
        ({"test": ["curl", "-f", "localhost"]}, {"Test": ("CMD", "curl", "-f", "localhost")}),
        ({"test": ["CMD-SHELL", "true"], "retries": 0}, {"Test": ("CMD-SHELL", "true")}),
        (
            {"test": "true", "interval": "10s", "timeout": "500ms", "retries": 3, "start_period": "1m"},
            {
                "Test": ("CMD-SHELL", "true"),
                "Interval": 10_000_000_000,
                "Timeout": 500_000_000,
                "Retries": 3,
                "StartPeriod": 60_000_000_000,
            },
        ),
        (
            ["true", 1_000_000_000, 2_000_000_000, 5],
            {"Test": ("CMD-SHELL", "true"), "Interval": 10**9, "Timeout": 2 * 10**9, "Retries": 5},
        ),
        ("NONE", {"Test": ("NONE",)}),
    ],
)
def test_healthcheck_fields(check: Any, expected: dict[str, Any]) -> None:
    spec = desired_state(combine_maps([load_map_dict({"name": "m", "web": {"healthcheck": check}})])).containers[
        "m.web"
    ]
    assert spec.healthcheck is not None
    assert dict(spec.healthcheck) == expected


def test_stop_signal_and_timeout() -> None:
    spec = one("name: m\nweb: {stop_signal: SIGINT, stop_timeout: 3}")
    assert (spec.stop_signal, spec.stop_timeout) == ("SIGINT", 3)
    spec = one("name: m\nweb: {stop_signal: 9}")
    assert spec.stop_signal == "9"
    spec = one("name: m\nweb: {}")
    assert (spec.stop_signal, spec.stop_timeout) == (None, None)


@pytest.mark.parametrize(
    ("config", "limits", "policy"),
    [
        ({"host_config": {"mem_limit": "64m"}}, {"Memory": 64 * 1024**2}, None),
        ({"create_options": {"mem_limit": "64m"}}, {"Memory": 64 * 1024**2}, None),  # older maps write it here
        ({"create_options": {"mem_limit": "1g", "cpu_shares": 15}}, {"Memory": 1024**3, "CpuShares": 15}, None),
        (
            {"host_config": {"memswap_limit": "512k", "mem_limit": 1048576}},
            {"MemorySwap": 512 * 1024, "Memory": 2**20},
            None,
        ),
        ({"host_config": {"pids_limit": 100, "cpuset_cpus": "0-1"}}, {"PidsLimit": 100, "CpusetCpus": "0-1"}, None),
        (
            {"host_config": {"restart_policy": {"Name": "always"}}},
            {},
            {"Name": "always"},
        ),
        (
            {"create_options": {"restart_policy": {"Name": "on-failure", "MaximumRetryCount": 3}}},
            {},
            {"Name": "on-failure", "MaximumRetryCount": 3},
        ),
    ],
)
def test_limits_and_restart_policy_are_kept_apart(
    config: dict[str, Any], limits: dict[str, Any], policy: dict[str, Any] | None
) -> None:
    spec = desired_state(combine_maps([load_map_dict({"name": "m", "web": config})])).containers["m.web"]
    assert dict(spec.limits) == limits
    assert (None if spec.restart_policy is None else dict(spec.restart_policy)) == policy
    # Neither is passed through as a create/host option.
    assert spec.create_extra == ()
    assert spec.host_extra == ()


@pytest.mark.parametrize("bad", ["always", ["always"]])
def test_restart_policy_must_be_a_mapping(bad: Any) -> None:
    state = desired_state(combine_maps([load_map_dict({"name": "m", "web": {"host_config": {"restart_policy": bad}}})]))
    [(rid, message)] = state.problems
    assert rid == cid("m.web")
    assert "restart_policy must be a mapping" in message


def test_bad_memory_size_is_a_problem() -> None:
    state = desired_state(combine_maps([load_map_dict({"name": "m", "web": {"host_config": {"mem_limit": "lots"}}})]))
    [(rid, message)] = state.problems
    assert rid == cid("m.web")
    assert "not a size" in message


def test_other_create_and_host_options_pass_through() -> None:
    spec = one(
        """
        name: m
        web:
          create_options:
            working_dir: /app
            tty: true
            environment: {A: "1"}
            command: serve
          host_config:
            privileged: true
            cap_add: [NET_ADMIN, SYS_TIME]
            sysctls: {net.core.somaxconn: 1024}
            mem_limit: 64m
        """
    )
    assert spec.create_extra == (("tty", True), ("working_dir", "/app"))
    assert spec.host_extra == (
        ("cap_add", ("NET_ADMIN", "SYS_TIME")),
        ("privileged", True),
        ("sysctls", (("net.core.somaxconn", 1024),)),
    )
    assert spec.limits == (("Memory", 64 * 1024**2),)


def test_exec_commands_persistent_start_delay() -> None:
    spec = one(
        """
        name: m
        web:
          user: app
          persistent: true
          start_delay: 0.5
          exec_commands:
            - echo hello
            - [touch /tmp/x, root, initial]
            - {cmd: [ls, /], user: 1000}
        """
    )
    assert spec.exec_commands == (
        ExecSpec("echo hello", "app", "restart"),  # the config's user by default
        ExecSpec("touch /tmp/x", "root", "initial"),
        ExecSpec(("ls", "/"), "1000", "restart"),
    )
    assert spec.persistent is True
    assert spec.start_delay == 0.5


def test_user_uid_gid_runs_the_container_as_uid_and_chowns_volumes_to_uid_gid() -> None:
    """docker-map: the container and its exec commands run as `extract_user(user)` (the user part), the
    volume preparation chowns to `get_user_group(user)` (`uid:gid`)."""
    state = desired(
        """
        name: m
        volumes: {data: /data}
        app: {attaches: data, user: "1000:50", exec_commands: [echo hi, [id, "0:0"]]}
        """
    )
    app = state.containers["m.app"]
    assert app.user == "1000"
    assert [c.user for c in app.exec_commands] == ["1000", "0:0"]  # an exec's own user is passed as written
    assert state.inits["m.data.init"].command == ("sh", "-c", "chown -R 1000:50 /volume")


# --- volume inits ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "volume", "owner", "permissions"),
    [
        ({"user": 2000}, {}, "2000:2000", None),  # a bare uid means uid:uid for chown
        ({"user": "app"}, {}, "app", None),
        ({"user": "1000:50"}, {}, "1000:50", None),
        ({"user": ["app", "staff"], "permissions": "u=rwX,g=rX,o="}, {}, "app:staff", "u=rwX,g=rX,o="),
        ({"permissions": 750}, {}, None, "750"),
        ({"user": 2000}, {"user": "3000:3000", "permissions": "700"}, "3000:3000", "700"),  # the volume's own wins
        ({}, {"user": 1000}, "1000:1000", None),
    ],
)
def test_volume_init_owner_and_permissions(
    config: dict[str, Any], volume: dict[str, Any], owner: str | None, permissions: str | None
) -> None:
    data = {
        "name": "m",
        "volumes": {"data": {"default_path": "/data", **volume}},
        "app": {"attaches": "data", **config},
    }
    state = desired_state(combine_maps([load_map_dict(data)]))
    init = state.inits["m.data.init"]
    assert (init.owner, init.permissions) == (owner, permissions)
    steps = []
    if owner:
        steps.append(f"chown -R {owner} /volume")
    if permissions:
        steps.append(f"chmod -R {permissions} /volume")
    assert init.command == ("sh", "-c", " && ".join(steps))


@pytest.mark.parametrize(
    ("written", "mode"),
    [("0770", "0770"), ("0750", "0750"), ("770", "770"), ("'0770'", "0770"), ("u=rwX", "u=rwX")],
)
def test_yaml_octal_permissions_mean_the_chmod_mode_as_written(written: str, mode: str) -> None:
    """YAML 1.1 reads `0770` as 504 and `0750` as 488; the user meant `chmod 0770` / `chmod 0750`."""
    state = desired(
        f"""
        name: m
        volumes:
          data: /data
          logs: {{default_path: /logs, permissions: {written}}}
        app: {{attaches: [data, logs], permissions: {written}}}
        """
    )
    for volume in ("m.data.init", "m.logs.init"):
        assert state.inits[volume].command == ("sh", "-c", f"chmod -R {mode} /volume")


def test_yaml_octal_permissions_through_an_anchor_and_a_merge_key() -> None:
    state = desired(
        """
        name: m
        volumes: {data: /data}
        base: {abstract: true, <<: &owner {permissions: &mode 0750}}
        app: {extends: base, attaches: data}
        other: {attaches: [[logs, /logs]], permissions: *mode}
        merged: {<<: *owner, attaches: [[cache, /cache]]}
        """
    )
    assert {name: init.permissions for name, init in state.inits.items()} == {
        "m.data.init": "0750",  # inherited through extends
        "m.logs.init": "0750",  # through a YAML alias
        "m.cache.init": "0750",  # through a merge key
    }


def test_no_user_no_permissions_no_init() -> None:
    state = desired("name: m\nvolumes: {data: /data}\napp: {attaches: data}\n")
    assert list(state.volumes) == ["m.data"]
    assert state.inits == {}
    assert state.depends_on[cid("m.app")] == {img("app:latest"), vid("m.data")}


# --- dependency edges ----------------------------------------------------------------------------------------


def test_seed_map_dependency_edges() -> None:
    edges = desired(SEED_YAML).depends_on
    assert edges[cid("main.uwsgi")] == {
        img("uwsgi:latest"),
        vid("main.uwsgi_log"),
        vid("main.app_log"),
        vid("main.uwsgi_socket"),
        iid("main.uwsgi_log.init"),
        iid("main.app_log.init"),
        iid("main.uwsgi_socket.init"),
    }
    # nginx: its image, its own log volume, the used socket volume and its init, and uwsgi (the provider).
    assert edges[cid("main.nginx")] == {
        img("nginx:latest"),
        vid("main.nginx_log"),
        vid("main.uwsgi_socket"),
        iid("main.uwsgi_socket.init"),
        cid("main.uwsgi"),
    }
    assert edges[iid("main.uwsgi_socket.init")] == {vid("main.uwsgi_socket"), img("uwsgi:latest")}
    assert edges[vid("main.uwsgi_socket")] == frozenset()
    assert edges[img("nginx:latest")] == frozenset()


DEPS_MAP = """
name: d
networks: {app: null}
volumes: {sock: /sock, logs: /logs}
base: {instances: [a, b], attaches: sock, user: 100}
linked: {links: [[base.a, b]]}
netuser: {network_mode: base.b}
user_of_volume: {uses: sock}
user_of_container: {uses: base}
on_network: {networks: {app: {links: [[linked, l]]}}}
plain: {attaches: logs}
"""


@pytest.mark.parametrize(
    ("container", "expected"),
    [
        ("d.base.a", {img("base:latest"), vid("d.sock"), iid("d.sock.init")}),
        ("d.linked", {img("linked:latest"), cid("d.base.a")}),
        ("d.netuser", {img("netuser:latest"), cid("d.base.b")}),
        (
            "d.user_of_volume",
            {img("user_of_volume:latest"), vid("d.sock"), iid("d.sock.init"), cid("d.base.a"), cid("d.base.b")},
        ),
        ("d.user_of_container", {img("user_of_container:latest"), cid("d.base.a"), cid("d.base.b")}),
        ("d.on_network", {img("on_network:latest"), nid("d.app"), cid("d.linked")}),
        ("d.plain", {img("plain:latest"), vid("d.logs")}),
    ],
)
def test_dependency_edges(container: str, expected: set[ResourceId]) -> None:
    assert desired(DEPS_MAP).depends_on[cid(container)] == expected


def test_all_ids_covers_every_resource_sorted() -> None:
    state = desired(DEPS_MAP)
    ids = state.all_ids()
    assert ids == sorted(ids)
    assert len(ids) == len(set(ids))
    assert {i.kind for i in ids} == {Kind.IMAGE, Kind.NETWORK, Kind.VOLUME, Kind.VOLUME_INIT, Kind.CONTAINER}
    for rid in ids:
        assert state.spec(rid).id == rid
        assert rid in state.depends_on


# --- the spec hash --------------------------------------------------------------------------------------------

HASH_BASE: dict[str, Any] = {
    "name": "h",
    "volumes": {"data": "/data", "conf": "/etc/app"},
    "host": {"conf": "/srv/conf"},
    "networks": {"app": None},
    "other": {},
    "web": {
        "image": "app:1",
        "binds": {"conf": "ro"},
        "attaches": "data",
        "exposes": {80: 8080},
        "links": "other",
        "networks": {"app": {"aliases": ["www"]}},
        "user": 1000,
        "healthcheck": {"test": "true", "interval": "5s"},
        "stop_signal": "SIGINT",
        "stop_timeout": 3,
        "create_options": {"environment": {"A": "1"}, "command": "serve", "working_dir": "/app"},
        "host_config": {"privileged": False, "mem_limit": "64m", "restart_policy": {"Name": "always"}},
    },
}


def web_hash(changes: dict[str, Any] | None = None, map_changes: dict[str, Any] | None = None) -> str:
    import copy

    data = copy.deepcopy(HASH_BASE)
    data["web"].update(copy.deepcopy(changes or {}))
    data.update(copy.deepcopy(map_changes or {}))
    state = desired_state(combine_maps([load_map_dict(data)]))
    assert not state.problems, state.problems
    return state.containers["h.web"].spec_hash


def test_spec_hash_is_stable_for_the_same_input() -> None:
    first = web_hash()
    assert first == web_hash()
    assert len(first) == 32
    # Key order in the map does not matter.
    reordered = dict(reversed(list(HASH_BASE["web"].items())))
    assert web_hash(reordered) == first


def test_spec_hash_is_stable_across_processes() -> None:
    """The label outlives the process: a fresh interpreter (another hash seed) must compute the same value."""
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
        "from tests.unit.test_desired_state import web_hash\n"
        "print(web_hash())\n"
    )
    hashes = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        hashes.add(out.stdout.strip())
    assert hashes == {web_hash()}


def co(**changes: Any) -> dict[str, Any]:
    """`web`'s create_options with some keys changed."""
    return {"create_options": {**HASH_BASE["web"]["create_options"], **changes}}


def hc(drop: tuple[str, ...] = (), **changes: Any) -> dict[str, Any]:
    """`web`'s host_config with some keys changed or dropped."""
    options = {k: v for k, v in HASH_BASE["web"]["host_config"].items() if k not in drop}
    return {"host_config": {**options, **changes}}


@pytest.mark.parametrize(
    "changes",
    [
        {"image": "app:2"},
        co(environment={"A": "2"}),
        co(environment={"A": "1", "B": "1"}),
        co(environment={}),
        co(command="serve -v"),
        co(working_dir="/srv"),
        co(tty=True),
        co(entrypoint="x"),
        co(labels={"team": "web"}),
        hc(privileged=True),
        hc(cap_add=["X"]),
        {"binds": {"conf": "rw"}},
        {"attaches": []},
        {"shares": ["/scratch"]},
        {"exposes": {80: 8081}},
        {"exposes": {80: [8080, "127.0.0.1"]}},
        {"links": [["other", "o"]]},
        {"networks": {"app": {"aliases": ["api"]}}},
        {"user": 1001},
        {"healthcheck": {"test": "true", "interval": "6s"}},
        {"stop_signal": "SIGTERM"},
        {"stop_timeout": 4},
        {"network_mode": "host", "networks": []},
    ],
)
def test_spec_hash_changes_with_any_create_or_host_option(changes: dict[str, Any]) -> None:
    assert web_hash(changes) != web_hash()


def test_spec_hash_changes_with_map_level_settings() -> None:
    assert web_hash(map_changes={"host": {"conf": "/srv/conf2"}}) != web_hash()
    assert web_hash(map_changes={"default_domain": "example.test"}) != web_hash()
    assert web_hash(map_changes={"set_hostname": False}) != web_hash()


@pytest.mark.parametrize(
    "changes",
    [
        hc(mem_limit="128m"),
        hc(restart_policy={"Name": "no"}),
        hc(restart_policy={"Name": "on-failure", "MaximumRetryCount": 5}),
        hc(drop=("mem_limit",)),
        hc(drop=("restart_policy",)),
        hc(cpu_shares=7, pids_limit=50),
        co(cpu_shares=7),
        {"exec_commands": ["echo hi"]},
        {"persistent": True},
        {"start_delay": 2.0},
    ],
)
def test_spec_hash_ignores_what_is_updated_in_place(changes: dict[str, Any]) -> None:
    assert web_hash(changes) == web_hash()


def test_limits_written_in_create_options_hash_like_host_config() -> None:
    """Where a limit is written does not matter: it is a host setting either way."""
    moved = {
        "create_options": {"environment": {"A": "1"}, "command": "serve", "working_dir": "/app", "mem_limit": "64m"},
        "host_config": {"privileged": False, "restart_policy": {"Name": "always"}},
    }
    assert web_hash(moved) == web_hash()
    state = desired_state(combine_maps([load_map_dict({**HASH_BASE, "web": {**HASH_BASE["web"], **moved}})]))
    assert dict(state.containers["h.web"].limits) == {"Memory": 64 * 1024**2}


def test_container_specs_are_hashable_values() -> None:
    """Specs are frozen values (create/host options are frozen to tuples for this); a healthcheck must not make
    a spec unhashable."""
    state = desired_state(combine_maps([load_map_dict(HASH_BASE)]))
    spec = state.containers["h.web"]
    again = desired_state(combine_maps([load_map_dict(HASH_BASE)])).containers["h.web"]
    assert again is not spec
    assert hash(spec) == hash(again)
    assert len({spec, again}) == 1  # equal values built twice are one set member
    other = desired_state(combine_maps([load_map_dict({**HASH_BASE, "name": "h2"})])).containers["h2.web"]
    assert len({spec, again, other}) == 2


def test_spec_hash_is_pinned_across_versions() -> None:
    """Containers carry this hash; if it changed between reconciler versions, upgrading would recreate every
    container on every host. Change it only deliberately (and say so in the release notes)."""
    from reconciler.plan.resources import ContainerSpec, stable_hash

    spec = ContainerSpec(
        name="m.app",
        map="m",
        config="app",
        instance=None,
        image="nginx:1",
        command=("nginx", "-g", "daemon off;"),
        environment=(("A", "b"),),
    )
    assert spec.spec_hash == "6fd1809451a8f7b4b518fa0ef51d080b"
    # A field added later with an empty default leaves existing hashes alone.
    assert stable_hash({"a": 1}) == stable_hash({"a": 1, "added_later": None, "also": ()})
