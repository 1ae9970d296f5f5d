"""Helpers for real-engine tests: unique map names, loading maps, converging, and reading the engine."""

from __future__ import annotations

import itertools
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reconciler.executor.converge import Converged, converge, update
from reconciler.executor.engine import DockerEngine
from reconciler.executor.observe import observe
from reconciler.model import MapSet, combine_maps, load_map_text
from reconciler.plan.desired import desired_state
from reconciler.plan.planner import Plan, PlanOptions, plan_update
from tests import cli
from tests.conftest import BUILT_IMAGES, SESSION, TEST_IMAGE, TEST_LABEL

ROOT = Path(__file__).resolve().parents[2]
_counter = itertools.count(1)
TRAP = "trap 'exit 0' TERM; while :; do sleep 1; done"


def build_image(client: Any, tag: str, dockerfile: str) -> str:
    """Build an image from Dockerfile text; its id is removed at the end of the session (even once untagged)."""
    import io

    # forcerm: a failed step leaves no intermediate container behind (rm only cleans up after a success)
    image, _ = client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True, forcerm=True)
    BUILT_IMAGES.add(str(image.id))
    return str(image.id)


def unique_map_name(tag: str) -> str:
    """Every map in the tests is named with the session prefix: all its objects are then easy to clean."""
    return f"{SESSION}-{tag}{next(_counter)}"


def map_text(name: str, body: str) -> str:
    return f"name: {name}\n" + textwrap.dedent(body).replace("IMAGE", TEST_IMAGE).replace("TRAP", TRAP)


def load(text: str, base_dir: Path | None = None) -> MapSet:
    file = str((base_dir or Path("/tmp")) / "map.yaml")
    return combine_maps([load_map_text(text, file)])


def plan_for(engine: DockerEngine, maps: MapSet, options: PlanOptions | None = None) -> Plan:
    desired = desired_state(maps)
    return plan_update(desired, observe(engine, desired), options)


def apply(engine: DockerEngine, maps: MapSet, options: PlanOptions | None = None) -> Converged:
    done = converge(engine, desired_state(maps), update(options))
    assert done.ok, [r.error for r in done.result.failed] + [b.message for b in done.plan.blocked]
    return done


def reasons(plan: Plan, name: str) -> list[str]:
    action = next(a for a in plan.actions if a.resource.name == name)
    return [d.describe() for d in action.reasons]


def ops(plan: Plan) -> dict[str, str]:
    return {a.resource.name: a.op.value for a in plan.actions}


def container_id(client: Any, name: str) -> str:
    return str(client.api.inspect_container(name)["Id"])


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120, crash_after: int | None = None
) -> subprocess.CompletedProcess[str]:
    """The command line in a subprocess, logging warnings only; `crash_after`: killed (exit 137) at that step
    boundary."""
    entry = ["-m", "reconciler"] if crash_after is None else ["-m", "tests.integration.crashing_cli", str(crash_after)]
    return cli.run_cli("--log-level", "warning", *args, env=env, timeout=timeout, entry=entry)


def interpreter_start_seconds() -> float:
    """How long starting Python and importing what the daemon imports takes here and now: the part of a
    daemon's start-up that no promise about reconciler itself covers (a baseline for "ready within a second")."""
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-c", "import reconciler.cli, reconciler.daemon.run, docker, watchfiles, prometheus_client"],
        check=True,
        timeout=60,
        cwd=ROOT,
    )
    return time.monotonic() - started


def engine_start_seconds(client: Any) -> tuple[float, float]:
    """The engine's own (create, start) time for a small container here and now: the baseline healing bounds
    are derived from (the daemon cannot bring a container back faster than the engine starts one)."""
    name = f"{SESSION}-baseline{next(_counter)}"
    began = time.monotonic()
    container = client.containers.create(TEST_IMAGE, ["sh", "-c", TRAP], name=name, labels={TEST_LABEL: SESSION})
    try:
        created = time.monotonic()
        container.start()
        return created - began, time.monotonic() - created
    finally:
        container.remove(v=True, force=True)


def engine_time(text: str) -> float:
    """An engine timestamp (RFC 3339 with nanoseconds, `2026-11-28T00:29:02.499633718Z`) as epoch seconds."""
    from datetime import datetime

    head, _, frac = text.rstrip("Z").partition(".")
    seconds = datetime.fromisoformat(head + "+00:00").timestamp()
    return seconds + (float(f"0.{frac}") if frac else 0.0)


def wait_for(condition: Callable[[], bool], timeout: float = 20.0, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")
