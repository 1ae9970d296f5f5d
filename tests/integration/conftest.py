"""Fixtures shared by the real-engine tests."""

from __future__ import annotations

import subprocess

import pytest

from tests.integration.engine_helpers import ROOT


@pytest.fixture(scope="session")
def image() -> str:
    """reconciler's own image, built as the README says where no registry is reachable."""
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "build-image.sh"), "reconciler:test"],
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return "reconciler:test"
