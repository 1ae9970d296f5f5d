"""Maps load and resolve as docker-map would: the seed guide's map, the compat maps, a map using every key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from reconciler.model import (
    ExecPolicy,
    MapError,
    NetworkModeKind,
    load_map_dict,
    load_map_files,
    load_map_text,
    resolve_image,
)

COMPAT = Path(__file__).resolve().parents[1] / "maps" / "compat"  # copied from the shared compat-maps folder
MAPS = Path(__file__).resolve().parents[1] / "maps"

# The seed guide's nginx/uwsgi map, exactly as its Python snippet declares it (tuples become lists in YAML,
# but the API passes them as they are).
SEED_MAP = {
    "nginx": {
        "image": "nginx",
        "binds": {"nginx_config": "ro"},
        "uses": "uwsgi_socket",
        "attaches": "nginx_log",
        "exposes": {80: 80, 443: 443},
    },
    "uwsgi": {
        "binds": ({"uwsgi_config": "ro"}, {"app_config": "ro"}, "app_data"),
        "attaches": ("uwsgi_log", "app_log", "uwsgi_socket"),
        "user": 2000,
        "permissions": "u=rwX,g=rX,o=",
    },
    "volumes": {
        "nginx_config": "/etc/nginx",
        "nginx_log": "/var/log/nginx",
        "uwsgi_config": "/etc/uwsgi",
        "uwsgi_socket": "/var/lib/uwsgi/socket",
        "uwsgi_log": "/var/log/uwsgi",
        "app_config": "/var/lib/app/config",
        "app_log": "/var/lib/app/log",
        "app_data": "/var/lib/app/data",
    },
    "host": {
        "nginx_config": "/var/lib/site/config/nginx",
        "uwsgi_config": "/var/lib/site/config/uwsgi",
        "app_config": "/var/lib/site/config/app",
        "app_data": "/var/lib/site/data/app",
    },
}


def _tuples_to_lists(value: object) -> object:
    if isinstance(value, (tuple, list)):
        return [_tuples_to_lists(v) for v in value]
    if isinstance(value, dict):
        return {k: _tuples_to_lists(v) for k, v in value.items()}
    return value


def test_seed_map_resolves_like_the_guide_says() -> None:
    seed = _tuples_to_lists(SEED_MAP)
    assert isinstance(seed, dict)
    m = load_map_dict({"name": "main", **seed})
    assert sorted(m.configs) == ["nginx", "uwsgi"]
    assert m.image("nginx") == "nginx:latest"
    assert m.image("uwsgi") == "uwsgi:latest"  # no image: the config name, as docker-map does
    nginx, uwsgi = m.configs["nginx"], m.configs["uwsgi"]
    assert [(b.path, b.readonly) for b in nginx.binds] == [("nginx_config", True)]
    assert [(b.path, b.readonly) for b in uwsgi.binds] == [
        ("uwsgi_config", True),
        ("app_config", True),
        ("app_data", False),
    ]
    assert [a.alias for a in uwsgi.attaches] == ["uwsgi_log", "app_log", "uwsgi_socket"]
    assert [(p.exposed_port, p.host_port) for p in nginx.exposes] == [(80, 80), (443, 443)]
    assert uwsgi.user == "2000"
    assert uwsgi.permissions == "u=rwX,g=rX,o="
    # nginx needs uwsgi first: it uses uwsgi's socket volume, and only that one.
    assert m.dependencies("nginx") == {"uwsgi"}
    assert m.dependencies("uwsgi") == set()
    [use] = nginx.uses
    assert m.use_path(use) == "/var/lib/uwsgi/socket"
    assert m.host_path("app_data", None) == "/var/lib/site/data/app"


@pytest.mark.parametrize("name", ["docs_yaml_example", "map_data_1", "map_data_1_new", "map_data_2"])
def test_docker_map_compat_maps_load_unchanged(name: str) -> None:
    maps = load_map_files([COMPAT / f"{name}.yaml"])
    assert len(maps) == 1
    assert not maps.warnings


def test_compat_map_data_1_resolution() -> None:
    m = load_map_files([COMPAT / "map_data_1.yaml"])["main"]
    assert m.image("web_server") == "registry.example.com/nginx:latest"
    assert m.image("app_server") == "registry.example.com/app:custom"
    assert m.instances("app_server") == ["instance1", "instance2"]
    assert m.instances("web_server") == [None]
    assert m.host_path("app_config", "instance2") == "/var/lib/site/config/app2"
    web = m.configs["web_server"]
    assert [(b.path, b.host_path, b.readonly) for b in web.binds] == [("/etc/nginx", "config/nginx", True)]
    assert m.absolute_host_path("config/nginx") == "/var/lib/site/config/nginx"
    mode = m.configs["app_extra"].network_mode
    assert mode is not None
    assert (mode.kind, mode.value, mode.instance) == (NetworkModeKind.CONTAINER, "app_server", "instance1")
    assert m.dependencies("app_extra") == {"app_server"}
    assert m.dependencies("web_server") == {"app_server"}


def test_compat_map_data_1_new_networks_and_healthcheck() -> None:
    m = load_map_files([COMPAT / "map_data_1_new.yaml"])["main"]
    web = m.configs["web_server"]
    assert [n.network_name for n in web.networks] == ["bridge", "app"]
    app_net = web.networks[1]
    assert [(link.container, link.alias) for link in app_net.links] == [
        ("app_server.instance1", "i1"),
        ("app_server.instance2", "i2"),
    ]
    [use] = web.uses
    assert (use.name, use.path) == ("app_server_socket", "/var/lib/app/custom/socket")
    app = m.configs["app_server"]
    assert [(a.alias, a.path) for a in app.attaches] == [
        ("app_log", None),
        ("app_server_socket", "/var/lib/app/socket"),
    ]
    assert app.healthcheck is not None
    assert app.healthcheck.test == ["CMD", "curl", "http://localhost/"]
    assert app.healthcheck.interval == 60_000_000_000
    assert app.healthcheck.timeout == 1_000_000_000
    assert app.healthcheck.start_period == 5_000_000_000
    assert app.stop_signal == "SIGTERM"
    assert m.dependencies("web_server") == {"app_server"}


def test_compat_map_data_2_extends_and_groups() -> None:
    m = load_map_files([COMPAT / "map_data_2.yaml"])["main"]
    assert "abstract_config" not in m.configs
    assert "abstract_worker" not in m.configs
    server = m.configs["server"]
    assert server.image == "server"  # inherited scalar
    assert server.user == "server_user"  # later wins
    assert [b.path for b in server.binds] == ["app_config", "app_data"]  # merged by first element
    assert [(link.container, link.alias) for link in server.links] == [
        ("svc", "svc_alias1"),
        ("svc", "svc_alias2"),
    ]
    assert [a.alias for a in server.attaches] == ["app_log", "server_log"]
    assert server.create_options == {"mem_limit": "1g", "cpu_shares": 15}
    assert server.host_config["restart_policy"] == {"MaximumRetryCount": 3, "Name": "always"}
    server2 = m.configs["server2"]
    assert [link.container for link in server2.links] == ["svc", "svc", "svc2"]
    assert not server2.abstract
    worker = m.configs["worker"]
    assert worker.create_options == {
        "entrypoint": "celery",
        "mem_limit": "2g",
        "cpu_shares": 10,
        "command": "worker -A MyApp -Q queue1,queue2",
    }
    assert worker.host_config["restart_policy"]["MaximumRetryCount"] == 0
    assert m.model.groups["group1"] == ["server", "worker", "worker_q2"]
    assert m.configs["persistent_one"].persistent is True
    # use_attached_parent_name: `uses: redis.redis_socket` is redis's attached volume.
    assert m.dependencies("server") == {"svc", "redis"}
    assert m.dependencies("redis") == {"sub_svc"}
    [port] = server.exposes
    assert (port.exposed_port, port.host_port, port.interface) == (8443, 8443, "private")
    server3 = m.configs["server3"]
    assert [(n.network_name, n.aliases) for n in server3.networks] == [
        ("app_net1", None),
        ("app_net2", ["server_x"]),
    ]


def test_docs_example_null_bind_is_a_read_write_alias() -> None:
    m = load_map_files([COMPAT / "docs_yaml_example.yaml"])["example_map"]
    app = m.configs["app_server"]
    assert [(b.path, b.host_path, b.readonly) for b in app.binds] == [
        ("app_config", None, True),
        ("app_data", None, False),
    ]
    assert m.host_path("app_data", "instance1") == "/var/lib/site/data/app1"


def test_dependency_graph_map_fails_the_check_but_loads_without_it() -> None:
    with pytest.raises(MapError) as caught:
        load_map_files([COMPAT / "dependency_graph.yaml"])
    assert "config 'c' provides no volumes" in str(caught.value)
    maps = load_map_files([COMPAT / "dependency_graph.yaml"], check=False)
    assert maps["test_map"].dependencies("a") == {"b", "c"}


def test_every_key_map() -> None:
    m = load_map_files([MAPS / "every_key.yaml"])["full"]
    assert sorted(m.configs) == ["base_app", "sidecar", "worker"]
    app = m.configs["base_app"]
    assert app.image == "app"
    assert m.image("base_app") == "registry.local/app:stable"
    assert m.image("worker") == "plain/worker:1.2"  # a leading / opts out of the repository
    assert app.user == "app:app"
    assert app.create_options == {"environment": {"B": "2"}, "mem_limit": "64m", "command": "serve"}
    assert app.host_config == {"restart_policy": {"Name": "always"}, "mem_limit": "128m"}
    assert [(b.path, b.host_path, b.readonly) for b in app.binds] == [
        ("conf", None, True),
        ("/etc/extra", "extra", True),
        ("/srv/x", "/opt/x", False),
    ]
    assert [(p.exposed_port, p.host_port, p.interface) for p in app.exposes] == [
        (8080, 18080, "127.0.0.1"),
        (9090, 9090, None),
    ]  # the child's 8080 replaces the base's, in the base's place (docker-map's `_merge_first`)
    assert [(c.cmd, c.user, c.policy) for c in app.exec_commands] == [
        ("echo hello", None, ExecPolicy.RESTART),
        ("touch /tmp/x", "root", ExecPolicy.INITIAL),
        (["ls", "/"], "1000", ExecPolicy.RESTART),
    ]
    assert app.healthcheck is not None
    assert app.healthcheck.start_period == 60_000_000_000
    assert app.stop_signal == "SIGINT"
    assert app.start_delay == 0.5
    backend = app.networks[0]
    assert (backend.aliases, [link.container for link in backend.links]) == (["api"], ["worker.two"])
    worker = m.configs["worker"]
    assert worker.healthcheck is not None
    assert worker.healthcheck.test == ["NONE"]
    assert worker.shares == ["/scratch"]
    assert m.host_path("data", "one") == "/srv/full/data/one"
    assert m.host_path("data", "two") == "/abs/data/two"
    assert m.host_path("data", None) == "/srv/full/data/default"
    assert m.model.volumes["data"].driver_options == {"type": "tmpfs"}
    assert m.model.networks["backend"].internal is True
    assert m.model.volume_init.image == "tools/init:1"
    sidecar = m.configs["sidecar"]
    assert [(u.name, u.path, u.readonly) for u in sidecar.uses] == [
        ("base_app", None, False),
        ("sock", "/sock", True),
        ("logs", "/logs", True),
    ]
    assert m.dependencies("sidecar") == {"base_app", "worker"}


def test_several_maps_load_together_and_names_must_differ(tmp_path: Path) -> None:
    one = tmp_path / "one.yaml"
    two = tmp_path / "two.yaml"
    one.write_text("name: site\nweb: {image: nginx}\n")
    two.write_text("name: other\nweb: {image: nginx}\n")
    assert sorted(m.name for m in load_map_files([one, two])) == ["other", "site"]
    two.write_text("name: site\napp: {}\n")
    with pytest.raises(MapError) as caught:
        load_map_files([one, two])
    [problem] = caught.value.problems
    assert problem.file == str(two)
    assert problem.line == 1
    assert "map name 'site' is already used by" in problem.message


def test_file_name_is_the_default_map_name(tmp_path: Path) -> None:
    f = tmp_path / "web-site.yml"
    f.write_text("web: {image: nginx}\n")
    assert [m.name for m in load_map_files([f])] == ["web-site"]


def test_path_tags_expand_home_and_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SITE_ROOT", "/srv/site")
    monkeypatch.setenv("HOME", "/home/op")
    m = load_map_text(
        "name: m\nhost_root: !path $SITE_ROOT/x\nhost: {d: !path_lazy ~/data}\nvolumes: {d: /d}\nc: {binds: d}\n",
        "m.yaml",
    )
    assert m.model.host_root == "/srv/site/x"
    assert m.host_path("d", None) == "/home/op/data"


def test_relative_host_paths_without_host_root_are_relative_to_the_map_file(tmp_path: Path) -> None:
    f = tmp_path / "m.yaml"
    f.write_text("name: m\nvolumes: {d: /d}\nhost: {d: data}\nc: {binds: d}\n")
    m = load_map_files([f])["m"]
    assert m.host_path("d", None) == str(tmp_path / "data")


@pytest.mark.parametrize(
    ("image", "repository", "tag", "expected"),
    [
        ("nginx", None, "latest", "nginx:latest"),
        ("nginx", "reg.io", "latest", "reg.io/nginx:latest"),
        ("nginx:1.25", "reg.io", "latest", "reg.io/nginx:1.25"),
        ("lib/nginx", "reg.io", "v1", "lib/nginx:v1"),
        ("/nginx", "reg.io", "v1", "nginx:v1"),
        ("localhost:5000/app", None, "v2", "localhost:5000/app:v2"),
        ("app@sha256:abc", "reg.io", "v1", "reg.io/app@sha256:abc"),
    ],
)
def test_image_resolution(image: str, repository: str | None, tag: str, expected: str) -> None:
    assert resolve_image(image, repository, tag) == expected


# --- extends: the later entry with the same key wins (issue 10) --------------------------------------------

EXTENDS_BASE = """\
name: m
volumes: {conf: /etc/app, logs: /var/log/app, cache: /var/cache/app, sock: /run/sock, data: /data}
host: {conf: /srv/conf}
networks: {front: {}, back: {}}
base:
  abstract: true
  binds: [{conf: ro}, [/etc/extra, /srv/extra, ro]]
  attaches: [logs, cache]
  exposes: [[8080, 18080], 9000]
  networks: [[front, {aliases: [old]}], back]
provider: {attaches: sock}
volumes_host: {binds: {/data: /srv/data}}
"""


def test_extends_child_bind_replaces_the_base_bind_with_the_same_path() -> None:
    """A child turning the base's read-only `conf` bind into a read-write one gets read-write (docker-map)."""
    text = EXTENDS_BASE + "app: {extends: base, binds: [{conf: rw}, [/etc/extra, /srv/other]]}\n"
    app = load_map_text(text).configs["app"]
    assert [(b.path, b.host_path, b.readonly) for b in app.binds] == [
        ("conf", None, False),
        ("/etc/extra", "/srv/other", False),
    ]


def test_extends_child_attach_replaces_the_base_attach_with_the_same_alias() -> None:
    app = load_map_text(EXTENDS_BASE + "app: {extends: base, attaches: [[cache, /tmp/cache], data]}\n").configs
    assert [(a.alias, a.path) for a in app["app"].attaches] == [
        ("logs", None),
        ("cache", "/tmp/cache"),  # the child's mount path, in the base's place
        ("data", None),
    ]


def test_extends_child_use_replaces_the_base_use_with_the_same_name() -> None:
    text = EXTENDS_BASE + (
        "user1: {abstract: true, uses: [[sock, /a], volumes_host]}\napp: {extends: user1, uses: [[sock, /b, ro]]}\n"
    )
    app = load_map_text(text).configs["app"]
    assert [(u.name, u.path, u.readonly) for u in app.uses] == [("sock", "/b", True), ("volumes_host", None, False)]


def test_extends_child_port_replaces_the_base_port_with_the_same_exposed_port() -> None:
    app = load_map_text(EXTENDS_BASE + "app: {extends: base, exposes: {8080: [28080, 127.0.0.1], 7000: 7000}}\n")
    ports = [(p.exposed_port, p.host_port, p.interface) for p in app.configs["app"].exposes]
    assert ports == [(8080, 28080, "127.0.0.1"), (9000, None, None), (7000, 7000, None)]


def test_extends_child_endpoint_replaces_the_base_endpoint_on_the_same_network() -> None:
    app = load_map_text(EXTENDS_BASE + "app: {extends: base, networks: [[front, {aliases: [new]}]]}\n")
    endpoints = [(n.network_name, n.aliases) for n in app.configs["app"].networks]
    assert endpoints == [("front", ["new"]), ("back", None)]


def test_extends_exposed_port_key_is_the_value_as_written() -> None:
    """docker-map keys `_merge_first` by the raw first element: 8080 and "8080" are different keys there."""
    app = load_map_text(EXTENDS_BASE + "app: {extends: base, exposes: [['8080', 1]]}\n").configs["app"]
    assert [p.exposed_port for p in app.exposes] == [8080, 9000, "8080"]


def test_extends_several_bases_later_base_wins_and_lists_union_without_duplicates() -> None:
    text = """\
    name: m
    a: {abstract: true, user: a, exposes: [[80, 1]], links: [x], instances: [one]}
    b: {abstract: true, user: b, exposes: [[80, 2]], links: [x, y, y], instances: [one, two]}
    c: {extends: [a, b]}
    x: {}
    y: {}
    """
    c = load_map_text(textwrap.dedent(text)).configs["c"]
    assert (c.user, [p.host_port for p in c.exposes]) == ("b", [2])
    assert [link.container for link in c.links] == ["x", "y"]  # docker-map's merge_list drops repeats
    assert c.instances == ["one", "two"]


@pytest.mark.parametrize(
    ("user", "run_user"),
    [(None, None), (1000, "1000"), (0, "0"), ("app", "app"), ("1000:50", "1000"), (["app", "staff"], "app")],
)
def test_container_runs_as_the_user_part_of_user(user: object, run_user: str | None) -> None:
    """`user: uid:gid` runs the container as uid (docker-map's `extract_user`); `user` keeps both for chown."""
    config = {} if user is None else {"user": user}
    app = load_map_dict({"name": "m", "app": config}).configs["app"]
    assert app.run_user == run_user


def test_yaml_merge_key_values_are_overridden_by_keys_written_beside_them() -> None:
    """`<<: *base` then `abstract: false` is YAML's override, not a duplicate key. Of several merge sources the
    last one wins: that is how PyYAML, and so docker-map, reads them."""
    text = """\
    name: m
    volumes: {data: /data}
    tmpl: &tmpl {abstract: true, image: "tmpl:1", permissions: 0770, attaches: data}
    other: &other {image: "other:1", user: "7"}
    app:
      <<: [*tmpl, *other]
      abstract: false
      permissions: 750
    """
    m = load_map_text(textwrap.dedent(text), "m.yaml")
    app = m.configs["app"]
    assert (app.image, app.user, app.permissions) == ("other:1", "7", "750")  # not the merged 0770
    assert m.positions.locate(("app", "permissions")) == (8, 3)


def test_a_key_written_twice_is_still_a_duplicate_beside_a_merge_key() -> None:
    with pytest.raises(MapError, match=r"m.yaml:5:3: app.image: duplicate key 'image'"):
        load_map_text("name: m\nt: &t {image: a}\napp:\n  image: b\n  image: c\n  <<: *t\n", "m.yaml")
