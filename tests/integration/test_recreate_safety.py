"""Do no harm (issue 21) on the real engine: a recreate keeps anonymous volume data, an interrupted recreate
is restored or finished, volume inits outlast the client timeout, pulls end, two reconcilers do not undo
each other, and networks with strangers attached are left alone.

Everything is named with the session prefix; anonymous volumes (named by the engine) are collected from the
containers' mounts and removed at the end of each test that makes them."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.executor import lease
from reconciler.executor.apply import Executor
from reconciler.executor.converge import converge
from reconciler.executor.engine import DockerEngine
from reconciler.executor.errors import EngineError
from reconciler.plan.desired import desired_state
from reconciler.plan.naming import replacement_name
from tests.conftest import TEST_IMAGE
from tests.integration.engine_helpers import (
    ROOT,
    apply,
    build_image,
    container_id,
    load,
    map_text,
    ops,
    plan_for,
    run_cli,
    unique_map_name,
)

HEALTHY = '{test: [CMD-SHELL, "test \\"$BROKEN\\" != 1"], interval: 1s, timeout: 1s, retries: 1}'

VOLUME_MAP = f"""\
app:
  image: TAG
  shares: [/var/data]
  stop_timeout: 1
  healthcheck: {HEALTHY}
  create_options: {{command: [sh, -c, "TRAP"], environment: {{V: "1"}}}}
"""


@contextlib.contextmanager
def anonymous_volumes(client: Any, *names: str) -> Iterator[set[str]]:
    """Collects the anonymous volumes of the named containers (call `seen` via the set) and removes them."""
    found: set[str] = set()
    try:
        yield found
    finally:
        for name in names:
            with contextlib.suppress(Exception):
                found |= _volumes_of(client, name)
            with contextlib.suppress(Exception):
                client.api.remove_container(name, force=True, v=True)
        for volume in found:
            with contextlib.suppress(Exception):
                client.api.remove_volume(volume)


def _volumes_of(client: Any, name: str) -> set[str]:
    mounts = client.api.inspect_container(name)["Mounts"]
    return {m["Name"] for m in mounts if m["Type"] == "volume"}


def _read(client: Any, name: str, path: str) -> bytes:
    result = client.containers.get(name).exec_run(["cat", path])
    return bytes(result.output)


@pytest.mark.timeout(240)
def test_anonymous_volume_data_survives_recreate_image_update_and_rollback(
    engine: DockerEngine, docker_client: Any
) -> None:
    name = unique_map_name("anon")
    tag = f"{name}/app:live"
    build_image(docker_client, tag, f"FROM {TEST_IMAGE}\nVOLUME /data\nLABEL v=1\n")
    text = map_text(name, VOLUME_MAP).replace("TAG", tag)
    app = f"{name}.app"
    with anonymous_volumes(docker_client, app) as seen:
        apply(engine, load(text))
        seen.update(_volumes_of(docker_client, app))
        docker_client.containers.get(app).exec_run(["sh", "-c", "echo image > /data/f; echo shares > /var/data/f"])
        volumes = _volumes_of(docker_client, app)
        assert len(volumes) == 2

        def check(expect_id_change: bool, before: str) -> str:
            now = container_id(docker_client, app)
            assert (now != before) is expect_id_change
            assert _read(docker_client, app, "/data/f") == b"image\n"
            assert _read(docker_client, app, "/var/data/f") == b"shares\n"
            assert _volumes_of(docker_client, app) == volumes  # the very same volumes, none new
            assert plan_for(engine, load(text)).in_sync, ops(plan_for(engine, load(text)))
            return now

        first = container_id(docker_client, app)
        text = text.replace('V: "1"', 'V: "2"')  # an env change: recreate
        apply(engine, load(text))
        second = check(True, first)

        build_image(docker_client, tag, f"FROM {TEST_IMAGE}\nVOLUME /data\nLABEL v=2\n")  # the tag moves
        assert ops(plan_for(engine, load(text))) == {app: "recreate"}
        apply(engine, load(text))
        third = check(True, second)

        broken = text.replace('V: "2"', 'V: "2", BROKEN: "1"')  # fails its health gate: rolled back
        done = converge(engine, desired_state(load(broken)), executor=Executor(engine, health_gate=20))
        assert not done.ok
        [failure] = done.result.failed
        assert failure.rolled_back is not None, failure.error
        assert docker_client.api.inspect_container(app)["State"]["Running"]
        check(False, third)
        assert not docker_client.containers.list(all=True, filters={"name": replacement_name(app)})


def _crash_during_recreate(docker_client: Any, map_file: Path, text: str, steps: int) -> str:
    """Apply `text` (a change that recreates the app), killing the executor after `steps` step boundaries
    (1: replacement created, 2: old stopped, 3: replacement healthy, 4: old removed); the app's name."""
    map_file.write_text(text)
    crashed = run_cli("apply", str(map_file), crash_after=steps)
    assert crashed.returncode == 137, crashed.stderr
    return text


@pytest.mark.timeout(240)
def test_after_a_crash_between_stop_and_start_a_failing_recreate_starts_the_old_container(
    engine: DockerEngine, docker_client: Any, tmp_path: Path
) -> None:
    name = unique_map_name("restore")
    app = f"{name}.app"
    text = map_text(name, VOLUME_MAP).replace("TAG", TEST_IMAGE)
    with anonymous_volumes(docker_client, app, replacement_name(app)):
        apply(engine, load(text))
        old_id = container_id(docker_client, app)
        _crash_during_recreate(docker_client, tmp_path / "m.yaml", text.replace('V: "1"', 'V: "2"'), 2)
        assert not docker_client.api.inspect_container(app)["State"]["Running"]  # the service is down
        # The next run's change fails its health gate: the old container must run again, although it was
        # not running when that run began.
        broken = text.replace('V: "1"', 'V: "3", BROKEN: "1"')
        done = converge(engine, desired_state(load(broken)), executor=Executor(engine, health_gate=20))
        [failure] = done.result.failed
        assert "the old container runs again" in (failure.error or ""), failure.error
        old = docker_client.api.inspect_container(app)
        assert (old["Id"], old["State"]["Running"]) == (old_id, True)
        assert not docker_client.containers.list(all=True, filters={"name": replacement_name(app)})


@pytest.mark.timeout(240)
def test_after_a_crash_between_removing_the_old_container_and_the_rename_the_replacement_is_adopted(
    engine: DockerEngine, docker_client: Any, tmp_path: Path
) -> None:
    name = unique_map_name("adopt")
    app = f"{name}.app"
    text = map_text(name, VOLUME_MAP).replace("TAG", TEST_IMAGE)
    with anonymous_volumes(docker_client, app, replacement_name(app)):
        apply(engine, load(text))
        docker_client.containers.get(app).exec_run(["sh", "-c", "echo kept > /var/data/f"])
        changed = _crash_during_recreate(docker_client, tmp_path / "m.yaml", text.replace('V: "1"', 'V: "2"'), 4)
        assert not docker_client.containers.list(all=True, filters={"name": f"^/{app}$"})
        replacement = docker_client.api.inspect_container(replacement_name(app))
        assert replacement["State"]["Health"]["Status"] == "healthy"
        plan = plan_for(engine, load(changed))
        assert ops(plan) == {app: "adopt"}
        result = run_cli("apply", str(tmp_path / "m.yaml"))
        assert result.returncode == 0, result.stderr
        assert container_id(docker_client, app) == replacement["Id"]  # renamed into place, not rebuilt
        assert _read(docker_client, app, "/var/data/f") == b"kept\n"
        assert plan_for(engine, load(changed)).in_sync
        assert not docker_client.containers.list(all=True, filters={"name": replacement_name(app)})


# --- volume inits outlast the client timeout -----------------------------------------------------------------

SLOW_INIT_MAP = """\
volume_init: {image: SLOW}
app:
  image: IMAGE
  attaches: data
  user: 2000
  stop_timeout: 1
  create_options: {command: [sh, -c, "TRAP"]}
volumes:
  data: /data
"""

# The init runs `sh -c "chown -R …"`; a `sh` first in PATH that sleeps makes it slow (busybox's own sh runs
# its applets internally, so wrapping `chown` would not do).
SLOW_SH = (
    f"FROM {TEST_IMAGE}\n"
    'RUN mkdir -p /usr/local/bin && printf "#!/bin/busybox sh\\nsleep 5\\nexec /bin/busybox sh \\"\\$@\\"\\n" '
    "> /usr/local/bin/sh && chmod +x /usr/local/bin/sh\n"
)


@pytest.mark.timeout(120)
def test_a_volume_init_longer_than_the_client_timeout_completes(docker_client: Any) -> None:
    name = unique_map_name("slowinit")
    slow = f"{name}/slow:1"
    build_image(docker_client, slow, SLOW_SH)
    text = map_text(name, SLOW_INIT_MAP).replace("SLOW", slow)
    short = DockerEngine(timeout=2, attempts=1)  # every request must answer within 2 s
    try:
        started = time.monotonic()
        done = converge(short, desired_state(load(text)))
        assert done.ok, [r.error for r in done.result.failed]
        assert time.monotonic() - started >= 5
        init = docker_client.api.inspect_container(f"{name}.data.init")
        assert (init["State"]["Status"], init["State"]["ExitCode"]) == ("exited", 0)
        out = docker_client.containers.get(f"{name}.app").exec_run(["stat", "-c", "%u", "/data"])
        assert out.output.strip() == b"2000"
        assert plan_for(short, load(text)).in_sync
    finally:
        short.close()


# --- pulls end: a stalled registry ---------------------------------------------------------------------------


class StallingRegistry:
    """A registry on 127.0.0.1 that serves one manifest and its config, then stalls in the middle of the
    layer (headers and a few bytes, then nothing) until closed. The engine treats loopback registries as
    insecure, so plain HTTP does."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.layer_requests = 0
        config = json.dumps(
            {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "0" * 64]}}
        ).encode()
        self.config = config
        self.config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
        self.layer_digest = "sha256:" + "1" * 64
        self.manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {
                    "mediaType": "application/vnd.docker.container.image.v1+json",
                    "size": len(config),
                    "digest": self.config_digest,
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                        "size": 1 << 20,
                        "digest": self.layer_digest,
                    }
                ],
            }
        ).encode()
        registry = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                return

            def do_HEAD(self) -> None:
                self.answer(head=True)

            def do_GET(self) -> None:
                self.answer(head=False)

            def answer(self, *, head: bool) -> None:
                if self.path.rstrip("/") == "/v2":
                    self.send(b"{}", "application/json", head)
                elif "/manifests/" in self.path:
                    self.send(registry.manifest, "application/vnd.docker.distribution.manifest.v2+json", head)
                elif self.path.endswith(registry.config_digest):
                    self.send(registry.config, "application/octet-stream", head)
                elif self.path.endswith(registry.layer_digest):
                    registry.layer_requests += 1
                    self.send_response(200)
                    self.send_header("Content-Length", str(1 << 20))
                    self.end_headers()
                    self.wfile.write(b"\x1f\x8b" + b"\0" * 1000)
                    self.wfile.flush()
                    registry.release.wait(120)  # the stall
                else:
                    self.send_error(404)

            def send(self, body: bytes, kind: str, head: bool) -> None:
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Docker-Content-Digest", "sha256:" + hashlib.sha256(body).hexdigest())
                self.send_header("Docker-Distribution-API-Version", "registry/2.0")
                self.end_headers()
                if not head:
                    self.wfile.write(body)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stalling_registry() -> Iterator[StallingRegistry]:
    registry = StallingRegistry()
    yield registry
    registry.close()


@pytest.mark.timeout(120)
def test_a_pull_that_stalls_mid_layer_fails_within_its_timeouts(
    engine: DockerEngine, stalling_registry: StallingRegistry
) -> None:
    ref = f"127.0.0.1:{stalling_registry.port}/{unique_map_name('stall')}/app:1"
    started = time.monotonic()
    with pytest.raises(EngineError, match="no progress"):
        engine.pull(ref, idle_timeout=2, timeout=60)  # stalls are retried (transient), each ends after 2 s
    assert time.monotonic() - started < 45
    assert stalling_registry.layer_requests >= 1
    started = time.monotonic()
    with pytest.raises(EngineError):
        engine.pull(ref, idle_timeout=60, timeout=4)  # the overall timeout bounds even a long idle one
    assert time.monotonic() - started < 12


PULL_MAP = """\
app:
  image: REF
  create_options: {command: [sh, -c, "TRAP"]}
web:
  image: IMAGE
  links: app
  create_options: {command: [sh, -c, "TRAP"]}
other:
  image: IMAGE
  stop_timeout: 1
  create_options: {command: [sh, -c, "TRAP"]}
"""


@pytest.mark.timeout(120)
def test_dependents_of_a_stalled_pull_are_skipped_and_the_rest_goes_on(
    engine: DockerEngine, docker_client: Any, stalling_registry: StallingRegistry
) -> None:
    name = unique_map_name("pulldeps")
    ref = f"127.0.0.1:{stalling_registry.port}/{name}/app:1"
    text = map_text(name, PULL_MAP).replace("REF", ref)
    done = converge(engine, desired_state(load(text)), executor=Executor(engine, pull_idle_timeout=1, pull_timeout=4))
    assert done.pulled is not None
    [pull] = done.pulled.failed
    assert pull.action.resource.name == ref
    outcomes = {r.action.resource.name: (r.outcome.value, r.error) for r in done.result.results}
    assert outcomes == {
        f"{name}.app": ("skipped", f"dependency image {ref} failed"),
        f"{name}.web": ("skipped", f"dependency container {name}.app failed"),
        f"{name}.other": ("done", None),
    }
    assert docker_client.api.inspect_container(f"{name}.other")["State"]["Running"]


# --- two reconcilers at once ---------------------------------------------------------------------------------


def _apply_in_background(map_file: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "reconciler", "--log-level", "warning", "apply", str(map_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


@pytest.mark.timeout(300)
def test_two_concurrent_applies_never_undo_each_other(engine: DockerEngine, docker_client: Any, tmp_path: Path) -> None:
    name = unique_map_name("twice")
    app = f"{name}.app"
    text = map_text(name, VOLUME_MAP).replace("TAG", TEST_IMAGE)
    map_file = tmp_path / "m.yaml"
    with anonymous_volumes(docker_client, app, replacement_name(app)):
        apply(engine, load(text))
        for round_ in range(2, 6):
            text = text.replace(f'V: "{round_ - 1}"', f'V: "{round_}"')
            map_file.write_text(text)
            runs = [_apply_in_background(map_file) for _ in range(2)]
            outputs = [(run.wait(120), *run.communicate()) for run in runs]
            for code, out, err in outputs:
                assert "rolled back" not in out + err, (out, err)
                assert code == 0 or lease.IN_PROGRESS in out + err, (code, out, err)
            assert any(code == 0 for code, _out, _err in outputs), outputs
            listed = docker_client.api.containers(all=True, filters={"name": name})  # no inspects: others' go
            names = [n.lstrip("/") for c in listed for n in c["Names"] if n.count("/") == 1 and n[1:].startswith(name)]
            assert names == [app], names
            assert docker_client.api.inspect_container(app)["State"]["Running"]
            assert plan_for(engine, load(text)).in_sync


# --- networks with strangers attached ------------------------------------------------------------------------

NETWORK_MAP = """\
networks:
  back: {}
app:
  image: IMAGE
  networks: [back]
  stop_timeout: 1
  create_options: {command: [sh, -c, "TRAP"]}
"""


@pytest.mark.timeout(120)
def test_a_network_with_a_stranger_attached_is_not_recreated(
    engine: DockerEngine, docker_client: Any, test_labels: dict[str, str]
) -> None:
    name = unique_map_name("netstranger")
    text = map_text(name, NETWORK_MAP)
    apply(engine, load(text))
    network = f"{name}.back"
    stranger = docker_client.containers.run(
        TEST_IMAGE, ["sleep", "300"], name=f"{name}-stranger", labels=test_labels, network=network, detach=True
    )
    try:
        changed = text.replace("back: {}", "back: {internal: true}")
        plan = plan_for(engine, load(changed))
        [blocked] = [b for b in plan.blocked if b.resource.name == network]
        assert "without reconciler's labels are attached" in blocked.message
        assert stranger.id[:12] in blocked.message
        assert not plan.actions  # nor is anything recreated to follow it
        done = converge(engine, desired_state(load(changed)))
        assert not done.ok
        attached = docker_client.api.inspect_network(network)["Containers"]
        assert stranger.id in attached  # never disconnected
        assert docker_client.api.inspect_container(stranger.id)["State"]["Running"]
    finally:
        stranger.remove(v=True, force=True)
    # Without the stranger, the network is recreated and ours follow.
    apply(engine, load(changed))
    assert docker_client.api.inspect_network(network)["Internal"] is True
    assert plan_for(engine, load(changed)).in_sync
