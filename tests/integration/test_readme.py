"""The README's commands, as an operator runs them: the quick start, `docker run` and `docker compose`."""

from __future__ import annotations

import os
import socket
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.integration.engine_helpers import ROOT, run_cli, unique_map_name, wait_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def example_copy(tmp_path: Path, name: str, port: int) -> Path:
    """config/example.yaml under this test's own map name, port and host root (never the operator's)."""
    text = (ROOT / "config" / "example.yaml").read_text()
    text = text.replace("name: example", f"name: {name}").replace("18080", str(port))
    text = text.replace("/var/lib/reconciler-example", str(tmp_path / "root"))
    path = tmp_path / "example.yaml"
    path.write_text(text)
    (tmp_path / "root" / "config" / "web").mkdir(parents=True)
    (tmp_path / "root" / "config" / "web" / "index.html").write_text("hello from the README test\n")
    return path


@pytest.mark.timeout(600)
def test_quick_start(docker_client: Any, tmp_path: Path) -> None:
    name = unique_map_name("quick")
    port = free_port()
    example = example_copy(tmp_path, name, port)
    env = {**os.environ, "EXAMPLE_MAP": str(example)}
    first = subprocess.run(
        ["bash", "scripts/quickstart.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=500, check=False
    )
    assert first.returncode == 0, first.stderr[-2000:]
    assert first.stdout.strip().splitlines()[-2] == "in sync"
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
        assert response.read() == b"hello from the README test\n"
    again = subprocess.run(
        ["bash", "scripts/quickstart.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=500, check=False
    )
    assert again.returncode == 0
    assert "summary: 0 done, 0 failed, 0 skipped" in again.stdout  # nothing changes the second time
    down = run_cli("down", str(example))
    assert down.returncode == 0, down.stderr
    assert not [
        c
        for c in docker_client.containers.list(all=True)
        if c.name.startswith(f"{name}.") and not c.name.endswith(".init")
    ]


MAP = (
    "name: {name}\napp:\n  image: reconciler-test/busybox:latest\n  stop_timeout: 1\n"
    "  create_options: {{command: [sh, -c, \"trap 'exit 0' TERM; while :; do sleep 1; done\"]}}\n"
)


def _maps(tmp_path: Path, name: str) -> Path:
    maps = tmp_path / "maps"
    maps.mkdir()
    maps.chmod(0o755)
    (maps / "site.yaml").write_text(MAP.format(name=name))
    (maps / "site.yaml").chmod(0o644)
    return maps


def _running(client: Any, name: str) -> bool:
    return any(c.name == name for c in client.containers.list(filters={"name": name}))


@pytest.mark.timeout(1800)
def test_docker_run_example(image: str, docker_client: Any, tmp_path: Path, prefix: str) -> None:
    name = unique_map_name("dockerrun")
    maps = _maps(tmp_path, name)
    env = {
        **os.environ,
        "RECONCILER_IMAGE": image,
        "RECONCILER_NAME": f"{prefix}-docker-run",
        "RECONCILER_MAPS": str(maps),
    }
    try:
        result = subprocess.run(
            ["sh", str(ROOT / "deploy" / "docker-run.sh")],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        wait_for(lambda: _running(docker_client, f"{name}.app"), 60)
    finally:
        subprocess.run(["docker", "rm", "-fv", f"{prefix}-docker-run"], capture_output=True, timeout=60, check=False)


@pytest.mark.timeout(1800)
def test_compose_example(image: str, docker_client: Any, tmp_path: Path, prefix: str) -> None:
    name = unique_map_name("compose")
    maps = _maps(tmp_path, name)
    env = {**os.environ, "RECONCILER_IMAGE": image, "RECONCILER_MAPS": str(maps)}
    compose = ["docker", "compose", "-p", f"{prefix}-compose", "-f", str(ROOT / "deploy" / "compose.yaml")]
    version = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, check=False)
    assert version.returncode == 0, "the docker compose plugin is missing: scripts/engine.sh installs it"
    try:
        up = subprocess.run(
            [*compose, "up", "-d", "--no-build"], env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert up.returncode == 0, up.stderr
        wait_for(lambda: _running(docker_client, f"{name}.app"), 60)
    finally:
        subprocess.run([*compose, "down"], env=env, capture_output=True, timeout=120, check=False)
