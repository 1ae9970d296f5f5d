"""reconciler's container image: built here without a registry (a Debian base made with debootstrap, cached
in the engine), run with the Docker socket mounted against a maps folder. It reconciles the map, its health
check turns healthy, and it never touches its own container — even when a map names it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.engine_helpers import map_text, unique_map_name, wait_for


@pytest.mark.timeout(1800)
def test_the_image_runs_the_daemon(image: str, docker_client: Any, tmp_path: Path, test_labels: dict[str, str]) -> None:
    name = unique_map_name("image")
    maps = tmp_path / "maps"
    maps.mkdir()
    maps.chmod(0o755)
    body = (
        'app:\n  image: IMAGE\n  stop_timeout: 1\n  create_options: {command: [sh, -c, "TRAP"]}\n'
        # A map that (wrongly) also declares the daemon's own container: it must be left alone.
        'reconciler:\n  image: IMAGE\n  create_options: {command: [sh, -c, "TRAP"]}\n'
    )
    (maps / "site.yaml").write_text(map_text(name, body))
    (maps / "site.yaml").chmod(0o644)
    own_name = f"{name}.reconciler"
    daemon = docker_client.containers.run(
        image,
        name=own_name,
        detach=True,
        labels=test_labels,
        volumes={
            "/var/run/docker.sock": {"bind": "/var/run/docker.sock", "mode": "rw"},
            str(maps): {"bind": "/maps", "mode": "ro"},
        },
        healthcheck={
            "test": ["CMD", "reconciler", "healthcheck"],
            "interval": 1_000_000_000,
            "start_period": 1_000_000_000,
            "retries": 3,
        },
    )
    try:
        own_id = daemon.id
        assert docker_client.api.inspect_container(own_name)["Config"]["Labels"]["io.reconciler.self"] == "true"

        def app_running() -> bool:
            found = docker_client.containers.list(filters={"name": f"{name}.app"})
            return any(c.name == f"{name}.app" for c in found)

        wait_for(app_running, 60)

        def healthy() -> bool:
            state = docker_client.api.inspect_container(own_name)["State"]
            return bool(state.get("Health", {}).get("Status") == "healthy")

        wait_for(healthy, 60)
        logs = daemon.logs().decode()
        assert "reconciler's own container: never managed" in logs
        time.sleep(0)  # no fixed waits: the checks below hold from the moment the daemon reported the block
        daemon.reload()
        assert daemon.id == own_id
        assert daemon.status == "running"
        assert docker_client.api.inspect_container(own_name)["Config"]["Cmd"] == ["/maps"]
    finally:
        daemon.remove(force=True)
        for c in docker_client.containers.list(all=True, filters={"name": name}):
            if c.name.startswith(name):
                c.remove(force=True)
