"""Fixtures shared by the real-engine tests."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from reconciler.executor.engine import DockerEngine
from tests.conftest import BUILT_IMAGES
from tests.integration.engine_helpers import ROOT


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
