"""reconciler's container image: built here without a registry (a Debian base made with debootstrap, cached
in the engine), run with the Docker socket mounted against a maps folder. It reconciles the map, its health
check turns healthy, and it never touches its own container — even when a map names it."""

from __future__ import annotations

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
        # No healthcheck of the test's own: the image's HEALTHCHECK is what must turn healthy.
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

        own = docker_client.api.inspect_container(own_name)
        check = own["Config"]["Healthcheck"]
        assert check == docker_client.api.inspect_image(image)["Config"]["Healthcheck"]
        assert check["Test"] == ["CMD", "reconciler", "healthcheck"]
        # The first probe comes one interval after the start (the start period only forgives failures):
        # healthy within two intervals and a timeout of the image's own check, plus the daemon's start.
        bound = (2 * check["Interval"] + check["Timeout"]) / 1e9 + 30
        wait_for(healthy, bound)
        logs = daemon.logs().decode()
        assert "reconciler's own container: never managed" in logs
        # The daemon is at work after that (it heals the map's app) and still leaves its own container alone.
        docker_client.api.kill(f"{name}.app")
        wait_for(app_running, 30)
        daemon.reload()
        assert daemon.id == own_id
        assert daemon.status == "running"
        assert daemon.attrs["State"]["StartedAt"] == own["State"]["StartedAt"]  # never restarted
        assert daemon.attrs["RestartCount"] == 0
        assert docker_client.api.inspect_container(own_name)["Config"]["Cmd"] == ["/maps"]
    finally:
        daemon.remove(v=True, force=True)
        for c in docker_client.containers.list(all=True, filters={"name": name}):
            if c.name.startswith(name):
                c.remove(v=True, force=True)
