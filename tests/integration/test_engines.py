"""Several engines (docker-map's clients) on two real engines: the main 26.1.5 and scripts/engine2.sh's
20.10.24. A map in docker-fabric's multi-client shape — a web server on one client, app instances on two,
ports on the interface alias `private` (127.0.0.1 on the main engine, 127.0.0.2 on the second) — is applied
through the command line with a clients file; each container lands on its engine with its address, plan is
empty after, `--client` restricts every command, and bad clients files and placements are clear errors.
"""

from __future__ import annotations

import json
import os
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SESSION, TEST_IMAGE
from tests.integration.conftest import check_session_end
from tests.integration.engine_helpers import map_text, run_cli, unique_map_name
from tests.integration.leaks import SessionObjects

ENGINE2_HOST = os.environ.get("ENGINE2_HOST", "unix:///run/reconciler-engine2/docker.sock")
MAIN_HOST = "unix:///var/run/docker.sock"


@pytest.fixture(scope="session")
def engine2() -> Iterator[Any]:
    """The second engine (scripts/engine2.sh); the tests fail, never skip, without it."""
    import docker

    try:
        client = docker.DockerClient(base_url=ENGINE2_HOST, version="auto", timeout=30)
        client.images.get(TEST_IMAGE)
    except Exception as exc:
        pytest.fail(
            f"the second engine at {ENGINE2_HOST} or its test image is not available ({exc}); "
            "run `scripts/engine2.sh` as root (CI runs it via scripts/bootstrap.sh)",
            pytrace=False,
        )
    tracked = SessionObjects(lambda: docker.DockerClient(base_url=ENGINE2_HOST, version="auto", timeout=30))
    yield client
    check_session_end(client, tracked, "engine 2")
    client.close()


def free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


FLEET = """\
clients: [main, second]
web:
  image: IMAGE
  clients: [main]
  exposes: [[80, WEB_PORT, private]]
  stop_timeout: 1
  create_options: {command: [httpd, -f, -p, "80", -h, /etc]}
app:
  image: IMAGE
  instances: [one, two]
  stop_timeout: 1
  create_options: {command: [sh, -c, "TRAP"]}
api:
  image: IMAGE
  clients: [second]
  links: [app.one]
  exposes: [[80, API_PORT, private]]
  stop_timeout: 1
  create_options: {command: [httpd, -f, -p, "80", -h, /etc]}
"""


@pytest.fixture
def fleet(tmp_path: Path, docker_client: Any, engine2: Any) -> Iterator[tuple[Path, Path, str]]:
    """(map file, clients file, map name); the map's containers are removed from both engines afterwards."""
    name = unique_map_name("fleet")
    text = map_text(name, FLEET)
    text = text.replace("WEB_PORT", str(free_port("127.0.0.1"))).replace("API_PORT", str(free_port("127.0.0.2")))
    map_file = tmp_path / "fleet.yaml"
    map_file.write_text(text)
    clients = tmp_path / "clients.yaml"
    clients.write_text(
        f"main: {{base_url: '{MAIN_HOST}', interfaces: {{private: 127.0.0.1}}}}\n"
        f"second: {{base_url: '{ENGINE2_HOST}', timeout: 30, interfaces: {{private: 127.0.0.2}}}}\n"
    )
    yield map_file, clients, name
    for client in (docker_client, engine2):
        for container in client.containers.list(all=True, filters={"label": f"io.reconciler.map={name}"}):
            container.remove(v=True, force=True)


def names_on(client: Any, map_name: str) -> set[str]:
    return {c.name for c in client.containers.list(all=True, filters={"label": f"io.reconciler.map={map_name}"})}


def binding(client: Any, name: str) -> tuple[str, str]:
    (entry,) = client.api.inspect_container(name)["HostConfig"]["PortBindings"]["80/tcp"]
    return entry["HostIp"], entry["HostPort"]


def test_apply_places_each_container_on_its_engine_with_its_address(
    fleet: tuple[Path, Path, str], docker_client: Any, engine2: Any
) -> None:
    map_file, clients, name = fleet
    done = run_cli("apply", "--clients", str(clients), "--json", str(map_file), timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert [entry["client"] for entry in report["clients"]] == ["main", "second"]
    assert names_on(docker_client, name) == {f"{name}.web", f"{name}.app.one", f"{name}.app.two"}
    assert names_on(engine2, name) == {f"{name}.api", f"{name}.app.one", f"{name}.app.two"}
    assert binding(docker_client, f"{name}.web")[0] == "127.0.0.1"
    host, port = binding(engine2, f"{name}.api")
    assert host == "127.0.0.2"
    with urllib.request.urlopen(f"http://127.0.0.2:{port}/hostname", timeout=10) as answer:
        assert answer.status == 200
    labels = engine2.api.inspect_container(f"{name}.api")["Config"]["Labels"]
    assert labels["io.reconciler.client"] == "second"
    again = run_cli("plan", "--clients", str(clients), "--detailed-exitcode", str(map_file))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "== client main" in again.stdout
    assert "== client second" in again.stdout


def test_client_flag_restricts_every_command(fleet: tuple[Path, Path, str], docker_client: Any, engine2: Any) -> None:
    map_file, clients, name = fleet
    done = run_cli("apply", "--clients", str(clients), "--client", "second", str(map_file), timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    assert names_on(docker_client, name) == set()
    assert len(names_on(engine2, name)) == 3
    plan_main = run_cli("plan", "--clients", str(clients), "--client", "main", "--json", str(map_file))
    entries = json.loads(plan_main.stdout)["clients"]
    assert [e["client"] for e in entries] == ["main"]
    assert not entries[0]["in_sync"]
    down = run_cli("down", "--clients", str(clients), "--client", "second", str(map_file), timeout=120)
    assert down.returncode == 0, down.stdout + down.stderr
    assert names_on(engine2, name) == set()
    unknown = run_cli("plan", "--clients", str(clients), "--client", "secnod", str(map_file))
    assert unknown.returncode == 2
    assert "unknown client 'secnod' (did you mean 'second'?)" in unknown.stderr


def test_an_unreachable_engine_fails_only_its_client(tmp_path: Path, fleet: tuple[Path, Path, str]) -> None:
    map_file, clients, _name = fleet
    broken = tmp_path / "broken.yaml"
    broken.write_text(clients.read_text().replace(ENGINE2_HOST, f"unix:///run/{SESSION}-nothing.sock"))
    done = run_cli("status", "--clients", str(broken), "--json", str(map_file), timeout=120)
    assert done.returncode == 1
    assert "client second: cannot reach the Docker engine" in done.stderr
    entries = {e["client"]: e for e in json.loads(done.stdout)["clients"]}
    assert "resources" in entries["main"]  # the reachable one is shown…
    assert "cannot reach the Docker engine" in entries["second"]["error"]  # …the other one says why


@pytest.mark.parametrize(
    ("clients_text", "message"),
    [
        ("- main\n", "a clients file is a mapping of client names to settings"),
        ("main: {base_ulr: 'unix:///x'}\n", "main.base_ulr: unknown client setting (did you mean 'base_url'?)"),
        ("main: {interfaces: [a]}\n", "interfaces must be a mapping"),
        ("main: {tls: {client_cert: only-one}}\n", "tls.client_cert must be [cert file, key file]"),
        ("main: [\n", "clients.yaml"),
    ],
)
def test_bad_clients_files_are_clear_errors(tmp_path: Path, clients_text: str, message: str) -> None:
    map_file = tmp_path / "map.yaml"
    map_file.write_text(map_text(unique_map_name("bad"), "web: {image: IMAGE}\n"))
    clients = tmp_path / "clients.yaml"
    clients.write_text(clients_text)
    done = run_cli("validate", "--clients", str(clients), str(map_file))
    assert done.returncode == 1
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_unknown_clients_and_split_dependencies_are_validate_errors(tmp_path: Path) -> None:
    clients = tmp_path / "clients.yaml"
    clients.write_text("main: {}\nsecond: {}\n")
    map_file = tmp_path / "map.yaml"
    map_file.write_text(
        map_text(
            unique_map_name("split"),
            """\
            web:
              image: IMAGE
              clients: [main, secnod]
            api:
              image: IMAGE
              clients: [main]
              links: [db]
            db:
              image: IMAGE
              clients: [second]
            """,
        )
    )
    done = run_cli("validate", "--clients", str(clients), str(map_file))
    assert done.returncode == 1
    assert "map.yaml:4:" in done.stderr
    assert "unknown client 'secnod' (did you mean 'second'?)" in done.stderr
    assert "'api' runs on client 'main' but its dependency 'db' does not" in done.stderr


def test_python_api_with_clients(fleet: tuple[Path, Path, str], docker_client: Any, engine2: Any) -> None:
    from reconciler.api import MappingDockerClient, load_clients_file, load_map_file

    map_file, clients, name = fleet
    mapping = MappingDockerClient(load_map_file(map_file), clients=load_clients_file(clients))
    assert sorted(mapping.children) == ["main", "second"]
    result = mapping.startup("app")
    assert result.ok, result.actions
    assert sorted(result.clients) == ["main", "second"]
    assert names_on(docker_client, name) == {f"{name}.app.one", f"{name}.app.two"}
    assert names_on(engine2, name) == {f"{name}.app.one", f"{name}.app.two"}
    assert mapping.startup("api").ok  # on the second engine only; web stays absent
    assert f"{name}.api" in names_on(engine2, name)
    assert f"{name}.web" not in names_on(docker_client, name)
    assert mapping.remove("app").ok  # api depends on app.one: it goes with it
    assert names_on(docker_client, name) == set()
    assert names_on(engine2, name) == set()


TLS_DIR = Path(os.environ.get("ENGINE2_ROOT", "/opt/reconciler-engine2")) / "tls"
TLS_URL = "tcp://" + os.environ.get("ENGINE2_TLS_ADDR", "127.0.0.1:23760")


def test_a_client_over_tcp_with_tls(tmp_path: Path, engine2: Any) -> None:
    name = unique_map_name("tls")
    map_file = tmp_path / "tls.yaml"
    map_file.write_text(
        map_text(name, 'clients: [remote]\napp: {image: IMAGE, create_options: {command: [sh, -c, "TRAP"]}}\n')
    )
    clients = tmp_path / "clients.yaml"
    tls = f"{{ca_cert: '{TLS_DIR}/ca.pem', client_cert: ['{TLS_DIR}/cert.pem', '{TLS_DIR}/key.pem'], verify: true}}"
    clients.write_text(f"remote: {{base_url: '{TLS_URL}', tls: {tls}}}\n")
    try:
        done = run_cli("apply", "--clients", str(clients), str(map_file), timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        assert names_on(engine2, name) == {f"{name}.app"}
        again = run_cli("plan", "--clients", str(clients), "--detailed-exitcode", str(map_file))
        assert again.returncode == 0, again.stdout + again.stderr
        # Without the client certificate the engine refuses the connection: an error for that client.
        clients.write_text(f"remote: {{base_url: '{TLS_URL}', tls: {{ca_cert: '{TLS_DIR}/ca.pem'}}}}\n")
        refused = run_cli("plan", "--clients", str(clients), str(map_file))
        assert refused.returncode == 1
        assert "client remote: cannot reach the Docker engine" in refused.stderr
    finally:
        for container in engine2.containers.list(all=True, filters={"label": f"io.reconciler.map={name}"}):
            container.remove(v=True, force=True)


SSHD_ROOT = Path(os.environ.get("SSHD_ROOT", "/opt/reconciler-sshd"))
SSH_ADDR = os.environ.get("SSHD_ADDR", "127.0.0.1:22220")


def test_a_client_over_ssh(tmp_path: Path, docker_client: Any) -> None:
    """`base_url: ssh://root@host:port` goes through docker-py's own SSH transport (paramiko), with the
    user's ~/.ssh (config, known_hosts) as for the docker CLI; scripts/sshd.sh's server reaches the main
    engine, so the container appears there, labelled with the client's name."""
    assert (SSHD_ROOT / "client_key").exists(), "scripts/sshd.sh has not run (bootstrap starts it)"
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "known_hosts").write_text((SSHD_ROOT / "known_host").read_text())
    host = SSH_ADDR.rsplit(":", 1)[0]
    (home / ".ssh" / "config").write_text(f"Host {host}\n  IdentityFile {SSHD_ROOT / 'client_key'}\n")
    name = unique_map_name("ssh")
    map_file = tmp_path / "ssh.yaml"
    map_file.write_text(
        map_text(name, 'clients: [viassh]\napp: {image: IMAGE, create_options: {command: [sh, -c, "TRAP"]}}\n')
    )
    clients = tmp_path / "clients.yaml"
    clients.write_text(f"viassh: {{base_url: 'ssh://root@{SSH_ADDR}'}}\n")
    env = {"HOME": str(home)}
    try:
        done = run_cli("apply", "--clients", str(clients), str(map_file), env=env, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        container = docker_client.containers.get(f"{name}.app")
        assert container.labels["io.reconciler.client"] == "viassh"
        again = run_cli("plan", "--clients", str(clients), "--detailed-exitcode", str(map_file), env=env)
        assert again.returncode == 0, again.stdout + again.stderr
        # A host whose key is not known is refused: an error for that client, nothing done.
        (home / ".ssh" / "known_hosts").write_text("")
        refused = run_cli("plan", "--clients", str(clients), str(map_file), env=env)
        assert refused.returncode == 1
        assert "client viassh" in refused.stderr
    finally:
        for leftover in docker_client.containers.list(all=True, filters={"label": f"io.reconciler.map={name}"}):
            leftover.remove(force=True, v=True)
