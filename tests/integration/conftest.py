"""Fixtures shared by the real-engine tests, and the session-end leak check.

`docker_client` follows the engine's events for the whole session (`tests.integration.leaks`), so it knows
the session's containers and the anonymous volumes made for them. At the end, what the session left is
removed (containers with their anonymous volumes) and listed in the terminal summary, loudly; anything of the
session still on the engine after that — a container, a named or anonymous volume, a network — fails the
session (an error at the teardown of its last test).

Each test removes what it made, too (`tidy`, automatic): the session's objects that were not there when the
test began — containers (with their anonymous volumes), volumes, networks — go when it ends, after its own
fixtures (daemons among them) have stopped. What module and session fixtures make was there before the
test, so it stays for the next one.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from reconciler.executor.engine import DockerEngine
from tests.conftest import BUILT_IMAGES, SESSION, TEST_IMAGE
from tests.integration.engine_helpers import ROOT
from tests.integration.leaks import SessionObjects, new_since, remaining, remove, sweep

LEAK_REPORT: list[str] = []  # lines for the terminal summary
TRACKED: dict[str, SessionObjects] = {}  # the main engine's event follower, for `tidy`


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    import docker

    try:
        client = docker.from_env(timeout=30)
        client.ping()
        client.images.get(TEST_IMAGE)
    except Exception as exc:
        pytest.fail(
            f"the Docker engine or the test image {TEST_IMAGE} is not available ({exc}); "
            "run `scripts/engine.sh && scripts/test-images.sh` as root (CI runs them via scripts/test.sh)",
            pytrace=False,
        )
    tracked = TRACKED["main"] = SessionObjects(lambda: docker.from_env(timeout=30))
    yield client
    check_session_end(client, tracked, "the main engine")
    client.close()


@pytest.fixture(autouse=True)
def tidy(request: pytest.FixtureRequest) -> Iterator[None]:
    """Remove what this test made on the main engine (set up first, so torn down last: after the test's own
    fixtures stopped its daemons). Every test here, whether it asks for `docker_client` or not: a test that
    only runs the CLI or a daemon still makes containers."""
    client = request.getfixturevalue("docker_client")
    tracked = TRACKED.get("main")
    before = remaining(client, tracked)
    yield
    remove(client, new_since(before, remaining(client, tracked)))


def check_session_end(client: Any, tracked: SessionObjects | None, engine: str) -> None:
    """Sweep what the session left on `engine` (reported in the summary); fail if anything of it remains."""
    try:
        left = sweep(client, tracked)
        still = remaining(client, tracked)
    finally:
        if tracked is not None:
            tracked.close()
    if left:
        LEAK_REPORT.append(f"{engine}: left behind by the tests (the sweep removes them): {left.describe()}")
    if still:
        LEAK_REPORT.append(f"{engine}: STILL THERE after the sweep: {still.describe()}")
        pytest.fail(f"session {SESSION} leaked on {engine}: {still.describe()}", pytrace=False)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if LEAK_REPORT:
        terminalreporter.section(f"engine objects of session {SESSION}", sep="=", red=True, bold=True)
        for line in LEAK_REPORT:
            terminalreporter.line(line, red=True)


@pytest.fixture(scope="module")
def engine(docker_client: Any) -> Iterator[DockerEngine]:
    """reconciler's engine port on the test engine."""
    eng = DockerEngine(pool_size=8)
    yield eng
    eng.close()


def _dangling(client: Any) -> set[str]:
    return {str(i.id) for i in client.images.list(filters={"dangling": True})}


@pytest.fixture(scope="session")
def image(docker_client: Any) -> str:
    """reconciler's own image, built as the README says where no registry is reachable. The cached Debian
    base stays (it takes a minute to make); the image and what its build left behind go at the end."""
    before = _dangling(docker_client)
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "build-image.sh"), "reconciler:test"],
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    BUILT_IMAGES.update(_dangling(docker_client) - before)
    BUILT_IMAGES.add(str(docker_client.images.get("reconciler:test").id))
    return "reconciler:test"
