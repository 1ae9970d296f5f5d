"""The update window on the real engine, with the daemon's controller in process and its wall clock injected:
outside the window an `auto` update waits (pending, and the reconcile asks to run again when it opens);
healing does not wait; inside the window the update runs."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from reconciler.daemon.controller import Controller
from reconciler.daemon.keys import ALL, ContainerKey
from reconciler.daemon.settings import Settings
from reconciler.executor.engine import DockerEngine
from reconciler.watch.maps import MapSource
from tests.conftest import TEST_IMAGE
from tests.integration.engine_helpers import build_image, map_text, unique_map_name, wait_for
from tests.integration.test_daemon import running, state

SITE = """\
update_window: Sat 02:00-05:00
app:
  image: TAG
  stop_timeout: 1
  create_options:
    command: [sh, -c, "TRAP"]
"""


class WallClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.mark.timeout(120)
def test_a_closed_window_holds_an_update_until_it_opens_and_healing_goes_on(
    docker_client: Any, engine: DockerEngine, tmp_path: Path, prefix: str
) -> None:
    tag = f"{prefix}-window:live"
    v1 = build_image(docker_client, tag, f"FROM {TEST_IMAGE}\nLABEL v=1\n")
    name = unique_map_name("window")
    site = tmp_path / "site.yaml"
    site.write_text(map_text(name, SITE.replace("TAG", tag)))
    app = f"{name}.app"
    clock = WallClock(datetime(2026, 12, 5, 1, 0).astimezone())  # a Saturday, an hour before the window
    settings = Settings(paths=[], state_dir="off", crash_threshold=0.01)
    ctl = Controller(settings, engine, MapSource([site]), wall_clock=clock)
    try:
        ctl.load_maps()
        assert ctl.reconcile(ALL).wake_after is None
        assert state(docker_client, app)["Image"] == v1
        container = state(docker_client, app)["Id"]

        v2 = build_image(docker_client, tag, f"FROM {TEST_IMAGE}\nLABEL v=2\n")
        ctl.cache.relist()
        result = ctl.reconcile(ALL)
        assert result.wake_after == pytest.approx(3600)  # looked at again when the window opens
        assert state(docker_client, app)["Id"] == container  # the update waits…
        pending = ctl.windows.waiting(ctl.desired)
        assert app in pending

        docker_client.api.kill(app)  # …healing does not
        wait_for(lambda: not running(docker_client, app), 10)
        ctl.cache.relist()
        ctl.reconcile(ContainerKey(app))
        assert running(docker_client, app)
        assert state(docker_client, app)["Id"] == container
        assert state(docker_client, app)["Image"] == v1

        clock.now = datetime(2026, 12, 5, 2, 30).astimezone()  # the window is open
        ctl.cache.relist()
        assert ctl.reconcile(ALL).wake_after is None
        assert state(docker_client, app)["Image"] == v2
        assert running(docker_client, app)
    finally:
        ctl.stop(5)
        if state(docker_client, app):
            docker_client.api.remove_container(app, force=True, v=True)
        docker_client.images.remove(tag, force=True)
