"""The daemon's status page in a real browser: Debian's Chromium, headless, driven by selenium through
Debian's chromium-driver (scripts/browser.sh installs both; nothing downloads a browser).

A daemon runs a map on the real engine with a bearer token set; the browser sends the token (as a reverse
proxy or an SSH tunnel's client would) and finds the map's containers and their states, sees a container
that is killed healed and one that is paused shown as paused — without reloading the page — and a secret
environment value appears neither in the page nor in /api/status. Without the token, everything but the
probes is refused. The screenshot is saved in the test's folder (`UPDATE_SCREENSHOT=1` also writes it to
docs/status.png, the README's picture).
"""

from __future__ import annotations

import os
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.engine_helpers import ROOT, map_text, unique_map_name, wait_for
from tests.integration.test_daemon import Daemon, running

pytestmark = [pytest.mark.engine, pytest.mark.timeout(240)]

TOKEN = "page-token-5be1f0"
SECRET = "pw-never-shown-93c1"
SITE = """\
db:
  image: IMAGE
  stop_timeout: 1
  attaches: data
  user: "1000"
  create_options:
    command: [sh, -c, "TRAP"]
    environment: {DB_PASSWORD: SECRET, MODE: plain-but-hidden}
app:
  image: IMAGE
  stop_timeout: 1
  links: db
  create_options:
    command: [sh, -c, "TRAP"]
volumes:
  data: /data
"""


@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless Chromium; failing (never skipping) when it or selenium is missing."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as exc:
        pytest.fail(f"selenium is missing ({exc}): run scripts/browser.sh (bootstrap does)", pytrace=False)
    driver_path = shutil.which("chromedriver")
    if driver_path is None or shutil.which("chromium") is None:
        pytest.fail("Debian's chromium and chromium-driver are missing: run scripts/browser.sh", pytrace=False)
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or ""
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.add_argument("--window-size=1400,1000")
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def get(port: int, path: str, token: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""  # not listening yet


def cell(driver: Any, name: str, column: str) -> str:
    """The text of one cell of a container's row ('' while the row is not there)."""
    from selenium.common.exceptions import WebDriverException

    try:
        return str(
            driver.execute_script(
                "const td = document.querySelector(`tr[data-name='${arguments[0]}'] td.${arguments[1]}`);"
                "return td ? td.textContent : '';",
                name,
                column,
            )
        )
    except WebDriverException:
        return ""


def eventually(condition: Callable[[], bool], timeout: float = 20) -> None:
    wait_for(condition, timeout, interval=0.2)


def remove_map_objects(client: Any, name: str) -> None:
    for container in client.containers.list(all=True, filters={"name": name}):
        if container.name.startswith(f"{name}."):
            container.remove(force=True, v=True)
    for volume in client.volumes.list(filters={"name": name}):
        if volume.name.startswith(f"{name}."):
            volume.remove(force=True)


def test_status_page_in_a_browser(docker_client: Any, browser: Any, tmp_path: Path) -> None:
    name = unique_map_name("page")
    maps_dir = tmp_path / "maps"
    maps_dir.mkdir()
    (maps_dir / "site.yaml").write_text(map_text(name, SITE.replace("SECRET", SECRET)))
    daemon = Daemon(maps_dir, env={**os.environ, "RECONCILER_HTTP_TOKEN": TOKEN})
    db, app = f"{name}.db", f"{name}.app"
    try:
        wait_for(lambda: get(daemon.port, "/readyz")[0] == 200, 60)
        wait_for(lambda: running(docker_client, app), 30)

        # The token rule: probes open, everything else 401 without the token.
        assert get(daemon.port, "/healthz")[0] == 200
        for path in ("/", "/api/status", "/static/status.js", "/metrics"):
            assert get(daemon.port, path)[0] == 401, path
        code, api = get(daemon.port, "/api/status", TOKEN)
        assert code == 200
        assert SECRET not in api
        assert "plain-but-hidden" not in api

        browser.execute_cdp_cmd("Network.enable", {})
        browser.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Bearer {TOKEN}"}})
        browser.get(f"http://127.0.0.1:{daemon.port}/")
        eventually(lambda: cell(browser, db, "state") == "running" and cell(browser, app, "state") == "running")
        assert cell(browser, db, "image").startswith("reconciler-test/busybox:latest")
        assert browser.execute_script("return document.querySelectorAll('#graph svg g.node').length") == 4
        browser.execute_script("window.notReloaded = true;")

        # A killed container: the daemon starts it again, and the page shows that healing by itself.
        before = cell(browser, app, "last")
        docker_client.api.kill(app)
        eventually(lambda: "start done" in cell(browser, app, "last") and cell(browser, app, "last") != before, 30)
        eventually(lambda: cell(browser, app, "state") == "running")
        newest = browser.execute_script("return document.querySelector('#events tbody tr .outcome').textContent")
        assert newest == "done"

        # A paused container is shown paused (the daemon leaves a paused container alone).
        docker_client.api.pause(db)
        try:
            eventually(lambda: cell(browser, db, "state") == "paused")
        finally:
            docker_client.api.unpause(db)
        eventually(lambda: cell(browser, db, "state") == "running")
        assert browser.execute_script("return window.notReloaded === true")

        page = browser.page_source
        assert SECRET not in page
        assert "plain-but-hidden" not in page
        time.sleep(0.5)  # the last redraw settles before the picture is taken
        shot = tmp_path / "status.png"
        assert browser.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000
        if os.environ.get("UPDATE_SCREENSHOT") == "1":
            shutil.copyfile(shot, ROOT / "docs" / "status.png")
    finally:
        try:
            daemon.stop()
        finally:
            if daemon.proc.poll() is None:
                daemon.proc.kill()
        remove_map_objects(docker_client, name)
