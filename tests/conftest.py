"""Shared fixtures. Integration tests talk to the real engine set up by scripts/engine.sh.

They never skip: with no engine they fail with a message saying how to start one (CI must never pass
without having run them). Everything a test creates is named with the session's unique prefix and carries
the `TEST_LABEL` label, and is removed afterwards; nothing else on the engine is touched.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

TEST_IMAGE = "reconciler-test/busybox:latest"
TEST_LABEL = "io.reconciler.test-session"
SESSION = f"rt{uuid.uuid4().hex[:8]}"
# The daemon's state directory (holds, pauses) of every command and daemon the tests start: the session's
# own, never the machine's /var/lib/reconciler. A test that needs another one sets it for its process.
os.environ["RECONCILER_STATE_DIR"] = tempfile.mkdtemp(prefix=f"{SESSION}-state-")
BUILT_IMAGES: set[str] = set()  # image ids the tests built: removed at the end of the session


@pytest.fixture(scope="session")
def prefix() -> str:
    """Unique per test session; name everything you create with it."""
    return SESSION


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
    yield client
    _remove_session_objects(client)
    client.close()


def _remove_session_objects(client: Any) -> None:
    """Everything this session created: by test label, or by the session prefix in its name (maps used by
    the tests are named with the prefix, and reconciler names every object after its map)."""
    label = f"{TEST_LABEL}={SESSION}"
    for container in client.containers.list(all=True, filters={"label": label}):
        container.remove(force=True)
    for container in client.containers.list(all=True, filters={"name": SESSION}):
        if container.name.startswith(SESSION):
            container.remove(force=True)
    for volume in client.volumes.list():
        if volume.name.startswith(SESSION) or (volume.attrs.get("Labels") or {}).get(TEST_LABEL) == SESSION:
            volume.remove(force=True)
    for image_id in BUILT_IMAGES:
        try:
            client.images.remove(image_id, force=True)
        except Exception:  # already removed by the test itself
            continue
    for network in client.networks.list():
        if network.name.startswith(SESSION) or (network.attrs.get("Labels") or {}).get(TEST_LABEL) == SESSION:
            network.remove()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in item.path.parts:
            item.add_marker(pytest.mark.engine)


@pytest.fixture
def test_labels(prefix: str) -> dict[str, str]:
    return {TEST_LABEL: prefix}


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")
