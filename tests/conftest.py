"""Shared fixtures. Integration tests talk to the real engine set up by scripts/engine.sh.

They never skip: with no engine they fail with a message saying how to start one (CI must never pass
without having run them). Everything a test creates is named with the session's unique prefix and carries
the `TEST_LABEL` label, and is removed afterwards; nothing else on the engine is touched. The engine
fixtures (`docker_client`) and the session-end leak check are in tests/integration/conftest.py.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator

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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in item.path.parts:
            item.add_marker(pytest.mark.engine)


@pytest.fixture
def test_labels(prefix: str) -> dict[str, str]:
    return {TEST_LABEL: prefix}


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(autouse=True)
def _logging_as_a_library() -> Iterator[None]:
    """Each test starts with logging as a library host sees it: a test that runs the command line in-process
    (`--log-level warning`) configures structlog for the whole process, and a later test's `capture_logs`
    would then miss every info line."""
    yield
    import structlog

    from reconciler import logs

    structlog.reset_defaults()
    logs._configured = False  # the process-wide switch the command line sets
    logs._wanted = None
