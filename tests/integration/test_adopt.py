"""Coming from compose or docker-map on the real engine: `reconciler import compose` + `reconciler adopt`.

Each compose test brings a project of the corpus (tests/compose/) up with `docker compose up -d --wait`,
writes data into its named volume, imports and adopts it, and compares what the engine reports for our
containers with what it reported for compose's (environment, command, ports, mounts, networks). Then the
data must be there, `plan` must be empty, `docker compose ps` must show nothing, and a second adopt must
change nothing. Projects and maps are named with the session prefix and removed afterwards.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SESSION, TEST_IMAGE, TEST_LABEL
from tests.integration.engine_helpers import ROOT, TRAP, run_cli, unique_map_name, wait_for

CORPUS = ROOT / "tests" / "compose"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Project:
    """A corpus project run by docker compose under a session-unique project name."""

    def __init__(self, corpus: str, tmp_path: Path) -> None:
        self.corpus = corpus
        self.name = unique_map_name(corpus)
        self.file = CORPUS / corpus / "compose.yaml"
        self.map = tmp_path / f"{self.name}.yaml"
        # Host ports of the corpus come from the environment (defaults in the files): free ones here.
        self.env = {"WEBAPP_PORT": str(free_port()), "PROXY_PORT": str(free_port()), "DNS_PORT": str(free_port())}

    def compose(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        import os

        return subprocess.run(
            ["docker", "compose", "-p", self.name, "-f", str(self.file), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**os.environ, **self.env},
        )

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, env=self.env)


@pytest.fixture
def project(request: Any, tmp_path: Path, docker_client: Any) -> Iterator[Project]:
    made = Project(request.param, tmp_path)
    version = made.compose("version")
    if version.returncode != 0:  # never a skip: CI must run these
        pytest.fail(f"`docker compose` is missing ({version.stderr.strip()}): run scripts/engine.sh", pytrace=False)
    up = made.compose("up", "-d", "--wait")
    assert up.returncode == 0, up.stderr
    yield made
    if made.map.exists():
        run_cli("down", str(made.map))
    made.compose("down", "-v", "--remove-orphans")


def _essentials(client: Any, ident: str) -> dict[str, Any]:
    """What a service's container is, as the engine reports it (names of networks without their prefix)."""
    data = client.api.inspect_container(ident)
    config, host = data["Config"], data["HostConfig"]
    networks = {
        name.split("_", 1)[-1].split(".", 1)[-1]: sorted(
            a for a in (net.get("Aliases") or []) if a not in (data["Name"].lstrip("/"), data["Id"][:12])
        )
        for name, net in data["NetworkSettings"]["Networks"].items()
    }
    mounts = sorted(
        (m["Type"], m.get("Name") or m["Source"], m["Destination"], m["RW"])
        for m in data["Mounts"]
        if m.get("Name") or m["Type"] == "bind"
    )
    return {
        "env": sorted(config.get("Env") or []),
        "cmd": config.get("Cmd"),
        "entrypoint": config.get("Entrypoint"),
        "user": config.get("User"),
        "working_dir": config.get("WorkingDir"),
        "healthcheck": config.get("Healthcheck"),
        "ports": {
            k: sorted((b["HostIp"], b["HostPort"]) for b in v or [])
            for k, v in (host.get("PortBindings") or {}).items()
        },
        "mounts": mounts,
        "networks": networks,
        "network_mode": host.get("NetworkMode", "").startswith("container:"),
        "limits": {
            k: host.get(k) for k in ("Memory", "NanoCpus", "PidsLimit", "RestartPolicy", "Init", "ReadonlyRootfs")
        },
    }


def _compose_containers(client: Any, project: str) -> dict[tuple[str, str], str]:
    found = client.api.containers(all=True, filters={"label": f"com.docker.compose.project={project}"})
    return {
        (c["Labels"]["com.docker.compose.service"], c["Labels"]["com.docker.compose.container-number"]): c["Id"]
        for c in found
    }


def _ours(name: str, service: str, number: str, scaled: bool) -> str:
    return f"{name}.{service}.{number}" if scaled else f"{name}.{service}"


DATA_VOLUME = {"webapp": ("db", "/var/lib/db"), "network": ("proxy", "/var/log/proxy"), "limits": None}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("project", ["webapp", "network", "limits"], indirect=True)
def test_compose_project_is_adopted_with_its_data(project: Project, docker_client: Any) -> None:
    data = DATA_VOLUME[project.corpus]
    if data is not None:
        wrote = project.compose("exec", "-T", data[0], "sh", "-c", f"echo precious > {data[1]}/data.txt")
        assert wrote.returncode == 0, wrote.stderr
    theirs = _compose_containers(docker_client, project.name)
    scaled = {s for s, n in theirs if n != "1"}
    before = {(s, n): _essentials(docker_client, ident) for (s, n), ident in theirs.items()}

    imported = project.cli("import", "compose", str(project.file), "-p", project.name, "-o", str(project.map))
    assert imported.returncode == 0, imported.stderr
    assert project.cli("validate", str(project.map)).returncode == 0

    adopted = project.cli("adopt", str(project.map))
    assert adopted.returncode == 0, adopted.stdout + adopted.stderr
    assert adopted.stdout.index("take-over") < adopted.stdout.index("summary:")  # the plan comes first
    assert f"{len(theirs)} to take-over" in adopted.stdout

    for (service, number), wanted in before.items():
        ours = _ours(project.name, service, number, service in scaled)
        got = _essentials(docker_client, ours)
        assert got == wanted, ours
        labels = docker_client.api.inspect_container(ours)["Config"]["Labels"]
        assert labels["io.reconciler.managed"] == "true"
        assert not any(k.startswith("com.docker.compose.") for k in labels)
    assert not _compose_containers(docker_client, project.name)
    ps = project.compose("ps", "-a", "-q")
    assert ps.returncode == 0
    assert ps.stdout.strip() == ""
    if data is not None:
        service = data[0]
        out = docker_client.containers.get(f"{project.name}.{service}").exec_run(["cat", f"{data[1]}/data.txt"])
        assert out.output.decode().strip() == "precious"
    if project.corpus == "webapp":
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{project.env['WEBAPP_PORT']}/", timeout=5) as answer:
            assert answer.read().decode().strip() == "hello"

    plan = project.cli("plan", str(project.map), "--detailed-exitcode")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    ids = {c["Id"] for c in docker_client.api.containers(filters={"name": project.name})}
    again = project.cli("adopt", str(project.map))
    assert again.returncode == 0, again.stderr
    assert "in sync: nothing to do" in again.stdout
    assert "summary: 0 done, 0 failed, 0 skipped" in again.stdout
    assert {c["Id"] for c in docker_client.api.containers(filters={"name": project.name})} == ids


@pytest.mark.timeout(120)
@pytest.mark.parametrize("project", ["webapp"], indirect=True)
def test_plan_and_apply_never_start_a_second_copy_beside_compose(project: Project, docker_client: Any) -> None:
    assert (
        project.cli("import", "compose", str(project.file), "-p", project.name, "-o", str(project.map)).returncode == 0
    )
    plan = project.cli("plan", str(project.map))
    assert (
        f"compose container '{project.name}-db-1' (project {project.name}, service db) runs this service" in plan.stdout
    )
    applied = project.cli("apply", str(project.map))
    assert applied.returncode == 1
    assert not docker_client.api.containers(all=True, filters={"label": "io.reconciler.map=" + project.name})


def _docker_map_container(client: Any, name: str, command: str, volumes: list[str] | None = None, **host: Any) -> Any:
    """A container as docker-map created it: under the map's name, without reconciler's labels."""
    created = client.api.create_container(
        TEST_IMAGE,
        ["sh", "-c", command],
        name=name,
        labels={TEST_LABEL: SESSION},
        volumes=volumes,
        host_config=client.api.create_host_config(**host),
    )
    client.api.start(created["Id"])
    return client.containers.get(created["Id"])


@pytest.mark.timeout(180)
def test_docker_map_containers_are_adopted_with_their_data(docker_client: Any, tmp_path: Path) -> None:
    name = unique_map_name("dmap")
    host = tmp_path / "site"
    host.mkdir()
    (host / "index.html").write_text("from the host\n")
    # docker-map's attached volume: a named volume `<map>.<alias>` without our labels.
    docker_client.api.create_volume(f"{name}.state", labels={TEST_LABEL: SESSION})
    store = _docker_map_container(
        docker_client,
        f"{name}.store",
        f"echo kept > /data/kept.txt; echo attached > /state/kept.txt; {TRAP}",
        volumes=["/data", "/state"],  # an anonymous volume, as docker-map's `shares` made
        binds=[f"{name}.state:/state"],
    )
    web = _docker_map_container(
        docker_client,
        f"{name}.web",
        TRAP,
        volumes=["/site"],
        volumes_from=[store.name],
        binds=[f"{host}:/site:ro"],
    )
    wait_for(lambda: store.exec_run(["cat", "/data/kept.txt"]).exit_code == 0)
    unrelated = _docker_map_container(docker_client, f"{name}-unrelated", TRAP)
    # Theirs' volumes: a take-over never deletes them (what is not carried to ours stays, as data does).
    theirs = {
        m["Name"] for c in (store, web) for m in docker_client.api.inspect_container(c.id)["Mounts"] if m.get("Name")
    }
    map_file = tmp_path / "map.yaml"
    map_file.write_text(
        f"name: {name}\n"
        f"volumes: {{state: {{default_path: /state, external: {name}.state}}}}\n"
        f"store:\n  image: {TEST_IMAGE}\n  shares: [/data]\n  uses: [state]\n"
        f'  create_options:\n    command: [sh, -c, "{TRAP}"]\n'
        f"web:\n  image: {TEST_IMAGE}\n  uses: [store]\n  binds: {{/site: [{host}, ro]}}\n"
        f'  create_options:\n    command: [sh, -c, "{TRAP}"]\n'
    )
    try:
        blocked = run_cli("plan", str(map_file))
        assert "exists without reconciler's labels: not touched (`reconciler adopt` takes it over)" in blocked.stdout
        dry = run_cli("adopt", str(map_file), "--dry-run")
        assert dry.returncode == 0
        assert docker_client.containers.get(f"{name}.store").id == store.id  # a dry run changes nothing
        adopted = run_cli("adopt", str(map_file))
        assert adopted.returncode == 0, adopted.stdout + adopted.stderr
        new_store = docker_client.containers.get(f"{name}.store")
        new_web = docker_client.containers.get(f"{name}.web")
        assert new_store.id != store.id
        assert new_web.labels["io.reconciler.managed"] == "true"
        assert new_store.exec_run(["cat", "/data/kept.txt"]).output.decode().strip() == "kept"
        assert new_web.exec_run(["cat", "/data/kept.txt"]).output.decode().strip() == "kept"
        assert new_store.exec_run(["cat", "/state/kept.txt"]).output.decode().strip() == "attached"
        assert new_web.exec_run(["cat", "/site/index.html"]).output.decode().strip() == "from the host"
        assert docker_client.containers.get(unrelated.id).status == "running"  # not in the map: never touched
        assert run_cli("plan", str(map_file), "--detailed-exitcode").returncode == 0
        again = run_cli("adopt", str(map_file))
        assert "in sync: nothing to do" in again.stdout
        assert docker_client.containers.get(f"{name}.store").id == new_store.id
        down = run_cli("down", "--volumes", str(map_file))
        assert down.returncode == 0, down.stderr
        assert docker_client.volumes.get(f"{name}.state")  # external: never removed, not even by --volumes
    finally:
        anonymous = (
            theirs
            | {f"{name}.state"}
            | {
                m["Name"]
                for c in docker_client.api.containers(all=True, filters={"name": name})
                for m in docker_client.api.inspect_container(c["Id"])["Mounts"]
                if m["Type"] == "volume"
            }
        )
        run_cli("down", str(map_file))
        for container in (store, web, unrelated):
            try:
                container.remove(force=True, v=True)
            except Exception:  # already replaced by adopt
                continue
        for volume in anonymous:  # carried from theirs to ours, left by `down` (it never removes data)
            with contextlib.suppress(Exception):
                docker_client.api.remove_volume(volume, force=True)


@pytest.mark.timeout(120)
def test_a_failed_start_of_ours_leaves_theirs_running(docker_client: Any, tmp_path: Path) -> None:
    name = unique_map_name("dfail")
    theirs = _docker_map_container(docker_client, f"{name}.app", TRAP)
    map_file = tmp_path / "map.yaml"
    map_file.write_text(
        f"name: {name}\napp:\n  image: {TEST_IMAGE}\n  create_options:\n    command: [sh, -c, 'exit 3']\n"
        "  healthcheck: {test: [CMD, 'true'], interval: 1s}\n"
    )
    try:
        adopted = run_cli("adopt", str(map_file), "--health-gate", "10")
        assert adopted.returncode == 1
        assert "rolled back, the old container keeps running" in adopted.stderr
        theirs.reload()
        assert theirs.status == "running"
        assert theirs.name == f"{name}.app"
        names = [c.name for c in docker_client.containers.list(all=True, filters={"name": name})]
        assert names == [f"{name}.app"]  # no replacement left behind
    finally:
        theirs.remove(force=True, v=True)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("project", ["webapp"], indirect=True)
def test_a_failed_start_during_a_compose_adopt_leaves_compose_s_container_running(
    project: Project, docker_client: Any
) -> None:
    import yaml

    assert (
        project.cli("import", "compose", str(project.file), "-p", project.name, "-o", str(project.map)).returncode == 0
    )
    edited = yaml.safe_load(project.map.read_text())
    edited["web"]["create_options"]["command"] = ["sh", "-c", "exit 3"]
    project.map.write_text(yaml.safe_dump(edited))
    theirs = _compose_containers(docker_client, project.name)[("web", "1")]

    adopted = project.cli("adopt", str(project.map))
    assert adopted.returncode == 1
    assert "the replacement is restarting (exit code 3)" in adopted.stderr  # its restart policy hid the exit
    assert "rolled back, the old container keeps running" in adopted.stderr
    assert docker_client.api.inspect_container(theirs)["State"]["Running"] is True
    ps = project.compose("ps", "-q", "web")
    assert ps.stdout.strip() == theirs[:12] or ps.stdout.strip() == theirs
    names = {n.lstrip("/") for c in docker_client.api.containers(all=True) for n in c["Names"]}
    assert not {f"{project.name}.web", f"{project.name}.web..next"} & names  # ours went, nothing left behind
    # What did start is ours now: the rest of the project was taken over.
    assert docker_client.api.inspect_container(f"{project.name}.db")["Config"]["Labels"]["io.reconciler.managed"]


@pytest.mark.timeout(120)
def test_depends_on_healthy_starts_the_dependent_only_once_the_dependency_is_healthy(
    docker_client: Any, tmp_path: Path
) -> None:
    """Without a health gate (`--health-gate 0`) only the start ordering makes `web` wait for `db`."""
    from tests.integration.engine_helpers import engine_time

    name = unique_map_name("order")
    map_file = tmp_path / "map.yaml"
    map_file.write_text(
        f"name: {name}\n"
        f"db:\n  image: {TEST_IMAGE}\n"
        "  healthcheck: {test: [CMD, test, -f, /tmp/ready], interval: 500ms, retries: 30}\n"
        f'  create_options:\n    command: [sh, -c, "sleep 2; touch /tmp/ready; {TRAP}"]\n'
        f"web:\n  image: {TEST_IMAGE}\n  depends_on: {{db: healthy}}\n"
        f'  create_options:\n    command: [sh, -c, "{TRAP}"]\n'
    )
    try:
        applied = run_cli("apply", str(map_file), "--health-gate", "0")
        assert applied.returncode == 0, applied.stdout + applied.stderr
        db = docker_client.api.inspect_container(f"{name}.db")
        web = docker_client.api.inspect_container(f"{name}.web")
        healthy_at = min(engine_time(p["End"]) for p in db["State"]["Health"]["Log"] if p["ExitCode"] == 0)
        assert engine_time(web["State"]["StartedAt"]) >= healthy_at
        assert run_cli("plan", str(map_file), "--detailed-exitcode").returncode == 0
    finally:
        run_cli("down", str(map_file))
