"""The seed guide's snippets with `dockermap.api` replaced by `reconciler.api` (images built locally).

Each test follows one snippet of the docker-map guide; only the import line and the images differ.
"""

from __future__ import annotations

import socket
import tarfile
from pathlib import Path
from typing import Any

import pytest

from reconciler.api import (
    ContainerMap,
    DockerClientWrapper,
    DockerContext,
    DockerFile,
    MapIntegrityError,
    MappingDockerClient,
    load_map,
)
from reconciler.plan import naming
from tests.conftest import BUILT_IMAGES, SESSION, TEST_IMAGE, TEST_LABEL
from tests.integration.engine_helpers import TRAP, build_image, unique_map_name

SOCKET = "unix://var/run/docker.sock"  # written as in the guide


def test_simple_dockerfile(docker_client: Any, prefix: str) -> None:
    client = DockerClientWrapper(SOCKET)
    with DockerFile(TEST_IMAGE) as df:
        df.run("echo updated > /etc/motd")
        df.run("mkdir -p /srv/app", "touch /srv/app/ready")
        image_id = client.build_from_file(df, f"{prefix}-new_base_image:1", add_latest_tag=True, rm=True)
    try:
        assert image_id
        assert image_id.startswith("sha256:")
        tags = client.get_image_tags()
        assert tags[f"{prefix}-new_base_image:1"] == tags[f"{prefix}-new_base_image:latest"]
        out = docker_client.containers.run(f"{prefix}-new_base_image:latest", ["cat", "/etc/motd"], remove=True)
        assert out == b"updated\n"
    finally:
        docker_client.images.remove(f"{prefix}-new_base_image:1", force=True)
        docker_client.images.remove(f"{prefix}-new_base_image:latest", force=True)


def test_docker_image_with_files(docker_client: Any, prefix: str, tmp_path: Path) -> None:
    myfiles = tmp_path / "myfiles"
    (myfiles / "sub").mkdir(parents=True)
    (myfiles / "a.txt").write_text("alpha\n")
    (myfiles / "sub" / "b.txt").write_text("beta\n")
    (myfiles / "secret.key").write_text("no\n")
    (myfiles / ".dockerignore").write_text("*.key\n")
    client = DockerClientWrapper(SOCKET)
    logged: list[str] = []
    client.log_hook = lambda text, _level: logged.append(text)
    with DockerFile(TEST_IMAGE) as df:
        df.add_file(str(myfiles), "/var/lib/myfiles")
        df.command = ["cat", "/var/lib/myfiles/a.txt", "/var/lib/myfiles/sub/b.txt"]
        client.build_from_file(df, f"{prefix}-new_image:latest")
    try:
        assert any("ADD" in line for line in logged)  # build output streamed to the hook
        out = docker_client.containers.run(f"{prefix}-new_image:latest", remove=True)
        assert out == b"alpha\nbeta\n"
        listing = docker_client.containers.run(
            f"{prefix}-new_image:latest", ["ls", "-a", "/var/lib/myfiles"], remove=True
        )
        assert b"secret.key" not in listing  # left out by .dockerignore
    finally:
        docker_client.images.remove(f"{prefix}-new_image:latest", force=True)


def test_dockerfile_text_and_context() -> None:
    df = DockerFile(TEST_IMAGE, maintainer="ops@example.test")
    df.run_all("echo a", "echo b")
    df.add_volume("/data")
    df.expose = [80]
    df.labels = {"tier": "web"}
    df.stopsignal = "SIGINT"
    df.healthcheck = {"test": ["true"], "interval": "5s", "retries": 2}
    df.command_user = "2000"
    df.command_workdir = "/srv"
    df.entrypoint = ["sh", "-c"]
    df.command = "echo hi"
    df.finalize()
    assert df.text.splitlines() == [
        f"FROM {TEST_IMAGE}",
        'LABEL maintainer="ops@example.test"',
        "RUN echo a",
        "RUN echo b",
        "EXPOSE 80",
        'VOLUME ["/data"]',
        'LABEL "tier"="web"',
        "STOPSIGNAL SIGINT",
        'HEALTHCHECK --interval=5s --retries=2 CMD ["true"]',
        "WORKDIR /srv",
        "USER 2000",
        'ENTRYPOINT ["sh", "-c"]',
        "CMD echo hi",
    ]
    with pytest.raises(ValueError, match="finalized"):
        df.run("too late")
    with DockerContext(df) as ctx, tarfile.open(fileobj=ctx.fileobj, mode="r:gz") as archive:
        names = archive.getnames()
    assert names == ["Dockerfile"]


class ConfinedWrapper(DockerClientWrapper):
    """The guide's client, but its container listing only ever sees this session's containers (by the test
    label): `cleanup_containers` then cannot reach anything another test or user creates meanwhile."""

    def containers(self, *args: Any, **kwargs: Any) -> Any:
        filters = dict(kwargs.pop("filters", None) or {})
        labels = filters.get("label") or []
        filters["label"] = [*([labels] if isinstance(labels, str) else labels), f"{TEST_LABEL}={SESSION}"]
        return super().containers(*args, filters=filters, **kwargs)


def test_removing_stopped_containers_and_only_those(
    docker_client: Any, prefix: str, test_labels: dict[str, str]
) -> None:
    stopped, kept = f"{prefix}-stopped", f"{prefix}-kept"
    for name in (stopped, kept):
        container = docker_client.containers.create(TEST_IMAGE, ["true"], name=name, labels=test_labels)
        container.start()
        container.wait(timeout=30)
    never_started = docker_client.containers.create(TEST_IMAGE, ["true"], name=f"{prefix}-new", labels=test_labels)
    runner = docker_client.containers.run(
        TEST_IMAGE, ["sh", "-c", TRAP], name=f"{prefix}-running", detach=True, labels=test_labels
    )
    client = ConfinedWrapper(SOCKET)
    try:
        would = client.cleanup_containers(list_only=True)
        assert sorted(would) == [kept, stopped]  # exited ones only: not running, not never-started
        assert {stopped, kept} <= client.get_container_names()  # list_only removed nothing
        removed = client.cleanup_containers(exclude=[kept])
        assert removed == [stopped]
        names = client.get_container_names()
        assert stopped not in names
        assert {kept, f"{prefix}-new", f"{prefix}-running"} <= names
        initial = client.cleanup_containers(include_initial=True, list_only=True)
        assert sorted(initial) == sorted([kept, f"{prefix}-new"])
        runner.reload()
        assert runner.status == "running"
    finally:
        for container in (runner, never_started):
            container.remove(v=True, force=True)
        docker_client.api.remove_container(kept, force=True, v=True)


def seed_map(name: str, host_root: Path, port: int, image: str = TEST_IMAGE) -> ContainerMap:
    """The guide's nginx/uwsgi map, as Python (tuples and all); images and host paths adapted."""
    command = {"command": ["sh", "-c", TRAP]}
    return ContainerMap(
        name,
        {
            "nginx": {
                "image": image,
                "binds": {"nginx_config": "ro"},
                "uses": "uwsgi_socket",
                "attaches": "nginx_log",
                "exposes": {80: (port, "127.0.0.1")},
                "stop_timeout": 1,
                "create_options": command,
            },
            "uwsgi": {
                "image": image,
                "binds": (
                    {"uwsgi_config": "ro"},
                    {"app_config": "ro"},
                    "app_data",
                ),
                "attaches": ("uwsgi_log", "app_log", "uwsgi_socket"),
                "user": 2000,
                "permissions": "u=rwX,g=rX,o=",
                "stop_timeout": 1,
                "create_options": command,
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
                "nginx_config": str(host_root / "config/nginx"),
                "uwsgi_config": str(host_root / "config/uwsgi"),
                "app_config": str(host_root / "config/app"),
                "app_data": str(host_root / "data/app"),
            },
        },
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_container_map_integrity_check() -> None:
    with pytest.raises(MapIntegrityError) as caught:
        ContainerMap("main", {"nginx": {"binds": {"nginx_cfg": "ro"}}, "volumes": {"nginx_config": "/etc/nginx"}})
    assert "unknown volume alias 'nginx_cfg' (did you mean 'nginx_config'?)" in str(caught.value)
    m = ContainerMap("main", {"web": {"links": "db"}, "db": {}}, check_integrity=True)
    assert dict(m.dependency_items())["web"] == {"db"}
    loaded = load_map("name: other\nweb: {image: nginx}\n")
    assert loaded.name == "other"
    assert loaded.get_image("web") == "nginx:latest"


def test_mapping_docker_client_startup_and_update(docker_client: Any, tmp_path: Path, prefix: str) -> None:
    name = unique_map_name("api")
    container_map = seed_map(name, tmp_path, free_port())
    map_client = MappingDockerClient(container_map, DockerClientWrapper(SOCKET))
    result = map_client.startup("nginx")
    assert result.ok, result.actions
    created = [n for n, action, _ in result.actions if action == "create"]
    assert created.index(f"{name}.uwsgi") < created.index(f"{name}.nginx")  # uwsgi first: nginx needs its socket
    uwsgi = docker_client.containers.get(f"{name}.uwsgi")
    out = uwsgi.exec_run(["stat", "-c", "%u:%g %A", "/var/lib/uwsgi/socket", "/var/log/uwsgi"]).output.decode()
    assert out.split() == ["2000:2000", "drwxr-x---", "2000:2000", "drwxr-x---"]
    nginx_mounts = {m["Destination"] for m in docker_client.api.inspect_container(f"{name}.nginx")["Mounts"]}
    assert nginx_mounts == {"/etc/nginx", "/var/lib/uwsgi/socket", "/var/log/nginx"}

    # Nothing changed: update does nothing.
    ids = {n: docker_client.api.inspect_container(n)["Id"] for n in (f"{name}.uwsgi", f"{name}.nginx")}
    assert not map_client.update("nginx").actions
    assert {n: docker_client.api.inspect_container(n)["Id"] for n in ids} == ids  # not even restarted

    # The image tag moves (a newer image was pulled): update recreates only what uses it.
    tag = f"{prefix}-app:live"
    build_image(docker_client, tag, f"FROM {TEST_IMAGE}\nLABEL v=1\n")
    try:
        moved = seed_map(name, tmp_path, free_port(), image=TEST_IMAGE)
        # uwsgi gets its own image; nginx keeps the test image.
        moved.resolved.configs["uwsgi"] = moved.resolved.configs["uwsgi"].model_copy(update={"image": tag})
        client2 = MappingDockerClient(moved, DockerClientWrapper(SOCKET))
        assert client2.update("nginx").ok
        build_image(docker_client, tag, f"FROM {TEST_IMAGE}\nLABEL v=2\n")
        result = client2.update("nginx")
        assert result.ok
        recreated = {n for n, action, _ in result.actions if action == "recreate"}
        assert f"{name}.uwsgi" in recreated
        assert docker_client.api.inspect_container(f"{name}.uwsgi")["Image"] == docker_client.images.get(tag).id
        assert not client2.update("nginx").actions  # and then it is in sync
    finally:
        MappingDockerClient(container_map, DockerClientWrapper(SOCKET)).shutdown("uwsgi", volumes=True)
        docker_client.images.remove(tag, force=True)
    # Shutting uwsgi down took nginx (which needs its socket) along. (A *targeted* shutdown keeps the attached
    # volumes and their init records even with volumes=True — plan_down scopes targets to containers; the
    # session cleanup removes them.)
    ours = {"label": [f"{naming.LABEL_MAP}={name}", f"{naming.LABEL_KIND}=container"]}
    assert docker_client.containers.list(all=True, filters={"label": f"{naming.LABEL_MAP}={name}"})  # inits
    assert not docker_client.containers.list(all=True, filters=ours)


def test_image_cleanup_and_listing_helpers(docker_client: Any, prefix: str, test_labels: dict[str, str]) -> None:
    client = DockerClientWrapper(SOCKET)
    tag = f"{prefix}-cleanup:1"
    old = client.build_from_file(_df("LABEL gen=1"), tag)
    new = client.build_from_file(_df("LABEL gen=2"), tag)  # the tag moves: the first image is now dangling
    assert old is not None
    assert new is not None
    BUILT_IMAGES.update({old, new})
    assert old != new
    try:
        dangling = client.cleanup_images(list_only=True)
        assert old in dangling
        assert new not in dangling  # tagged: kept
        assert client.get_image_tags()[tag] == new
        # Never touch what this test did not create: remove only our dangling image.
        docker_client.images.remove(old, force=True)
        # list_only lists and removes nothing — over this session's containers only (other tests and users
        # create and remove containers on the same engine meanwhile).
        mine = docker_client.containers.create(TEST_IMAGE, ["true"], name=f"{prefix}-listed", labels=test_labels)
        confined = ConfinedWrapper(SOCKET)
        names = confined.remove_all_containers(list_only=True)
        assert f"{prefix}-listed" in names
        assert set(names) <= confined.get_container_names()
        mine.reload()  # still there
        mine.remove(v=True, force=True)
    finally:
        docker_client.images.remove(tag, force=True)


def _df(line: str) -> DockerFile:
    df = DockerFile(TEST_IMAGE)
    df.prefix_all(line)
    df.finalize()
    return df


def test_check_integrity_accepts_what_the_constructor_accepted() -> None:
    m = ContainerMap("m", {"app": {"attaches": "v", "user": 1000}, "volumes": {"v": "/v"}})
    m.check_integrity()  # no error: the same map, checked again
    assert dict(m.dependency_items()) == {"app": set()}
    # …while a map that breaks it is refused by the same check.
    with pytest.raises(MapIntegrityError, match="'w'"):
        ContainerMap("m", {"app": {"attaches": "v", "uses": "w"}, "volumes": {"v": "/v"}}, check_integrity=True)


def test_pull_output_goes_to_the_log_hook(docker_client: Any, prefix: str) -> None:
    ref = f"127.0.0.1:5000/{prefix}/hooked"
    image_id = build_image(docker_client, f"{ref}:1", f"FROM {TEST_IMAGE}\nLABEL hooked=yes\n")
    for line in docker_client.images.push(f"{ref}:1", stream=True, decode=True):
        assert "error" not in line, line
    docker_client.images.remove(f"{ref}:1", force=True)
    logged: list[str] = []
    client = DockerClientWrapper(SOCKET, log_hook=lambda text, _level: logged.append(text))
    try:
        client.pull(ref, tag="1")
        assert any("Downloaded newer image" in line or "Pull complete" in line for line in logged), logged
        assert client.get_image_tags()[f"{ref}:1"] == image_id
    finally:
        docker_client.images.remove(f"{ref}:1", force=True)


def test_create_makes_containers_without_starting_them(docker_client: Any) -> None:
    name = unique_map_name("create")
    container_map = ContainerMap(
        name, {"app": {"image": TEST_IMAGE, "create_options": {"command": ["sh", "-c", TRAP]}}}
    )
    client = MappingDockerClient(container_map, DockerClientWrapper(SOCKET))
    result = client.create("app")
    assert result.actions == [(f"{name}.app", "create", "done")]
    assert docker_client.api.inspect_container(f"{name}.app")["State"]["Status"] == "created"
    started = client.start("app")
    assert started.actions == [(f"{name}.app", "start", "done")]
    assert docker_client.api.inspect_container(f"{name}.app")["State"]["Running"]
    assert client.shutdown("app").ok
