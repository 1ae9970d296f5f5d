"""The command line's flags on the real engine: `plan --detailed-exitcode`, `apply --dry-run / --pull /
--prune [--volumes] / --parallel / --health-gate / --json`, and an invalid map changing nothing.

Each test runs `python -m reconciler` from this checkout on maps named with the session prefix, and checks
the engine afterwards — not only the exit code.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from reconciler.plan import naming
from tests.conftest import TEST_IMAGE
from tests.integration.engine_helpers import build_image, map_text, run_cli, unique_map_name, wait_for

APP = """\
app:
  image: IMAGE
  stop_timeout: 1
  create_options:
    command: [sh, -c, "TRAP"]
    environment: {MODE: one}
"""


def write(tmp_path: Path, name: str, body: str, file: str = "site.yaml") -> Path:
    path = tmp_path / file
    path.write_text(map_text(name, body))
    return path


def inspect(client: Any, name: str) -> dict[str, Any]:
    try:
        return dict(client.api.inspect_container(name))
    except Exception:
        return {}


def ours(client: Any, name: str) -> set[str]:
    """Names of the containers of map `name` (by its label)."""
    return {c.name for c in client.containers.list(all=True, filters={"label": f"{naming.LABEL_MAP}={name}"})}


def test_plan_detailed_exitcode_is_2_with_drift_0_in_sync_and_1_on_error(docker_client: Any, tmp_path: Path) -> None:
    name = unique_map_name("exitcode")
    path = write(tmp_path, name, APP)
    drift = run_cli("plan", str(path), "--detailed-exitcode")
    assert drift.returncode == 2, drift.stderr
    assert "create" in drift.stdout
    assert run_cli("plan", str(path)).returncode == 0  # without the flag, drift is not an error
    assert not ours(docker_client, name)  # plan never changes anything
    assert run_cli("apply", str(path)).returncode == 0
    in_sync = run_cli("plan", str(path), "--detailed-exitcode")
    assert in_sync.returncode == 0, in_sync.stdout
    # Drift made by hand: exit 2 again, naming the reason.
    docker_client.api.stop(f"{name}.app", timeout=1)
    stopped = run_cli("plan", str(path), "--detailed-exitcode")
    assert stopped.returncode == 2
    assert "start" in stopped.stdout
    broken = write(tmp_path, name, APP + "  bogus_key: 1\n", "broken.yaml")
    assert run_cli("plan", str(broken), "--detailed-exitcode").returncode == 1


def test_apply_dry_run_changes_nothing_and_prints_the_plan(docker_client: Any, tmp_path: Path) -> None:
    name = unique_map_name("dryrun")
    path = write(tmp_path, name, APP)
    result = run_cli("apply", str(path), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert any(line.split()[:3] == ["create", "container", f"{name}.app"] for line in result.stdout.splitlines())
    assert not ours(docker_client, name)
    as_json = run_cli("apply", str(path), "--dry-run", "--json")
    plan = json.loads(as_json.stdout)
    assert plan["in_sync"] is False
    assert [a["name"] for wave in plan["waves"] for a in wave if a["kind"] == "container"] == [f"{name}.app"]
    assert not ours(docker_client, name)


def test_apply_json_reports_every_action(docker_client: Any, tmp_path: Path) -> None:
    name = unique_map_name("json")
    path = write(tmp_path, name, APP)
    result = run_cli("apply", str(path), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    done = {(r["name"], r["action"], r["outcome"]) for r in report["results"]}
    assert (f"{name}.app", "create", "done") in done
    assert report["plan"]["in_sync"] is False
    again = json.loads(run_cli("apply", str(path), "--json").stdout)
    assert again["results"] == []
    assert again["plan"]["in_sync"] is True


def test_apply_prune_removes_orphans_and_volumes_only_with_volumes(docker_client: Any, tmp_path: Path) -> None:
    name = unique_map_name("prune")
    both = APP + APP.replace("app:", "old:").replace("MODE: one", "MODE: old") + "  attaches: data\n"
    body = both + "volumes: {data: /data}\n"
    path = write(tmp_path, name, body)
    assert run_cli("apply", str(path)).returncode == 0
    assert ours(docker_client, name) >= {f"{name}.app", f"{name}.old"}
    write(tmp_path, name, APP)  # `old` and its volume are no longer in the map
    kept = run_cli("apply", str(path))
    assert kept.returncode == 0
    assert "orphan" in kept.stderr
    assert f"{name}.old" in ours(docker_client, name)  # orphans stay without --prune
    assert run_cli("apply", str(path), "--prune").returncode == 0
    assert f"{name}.old" not in ours(docker_client, name)
    assert f"{name}.app" in ours(docker_client, name)
    assert docker_client.volumes.get(f"{name}.data")  # the volume (data!) stays without --volumes
    assert run_cli("apply", str(path), "--prune", "--volumes").returncode == 0
    assert not docker_client.volumes.list(filters={"name": f"{name}.data"})
    assert ours(docker_client, name) == {f"{name}.app"}


def test_apply_pull_moves_to_the_registrys_image_and_without_it_present_images_stay(
    docker_client: Any, tmp_path: Path, prefix: str
) -> None:
    ref = f"127.0.0.1:5000/{prefix}/pulled:live"
    v1 = build_image(docker_client, ref, f"FROM {TEST_IMAGE}\nLABEL gen=1\n")
    for line in docker_client.images.push(ref, stream=True, decode=True):
        assert "error" not in line, line
    name = unique_map_name("pull")
    path = write(tmp_path, name, APP.replace("image: IMAGE", f"image: {ref}"))
    try:
        assert run_cli("apply", str(path)).returncode == 0
        assert inspect(docker_client, f"{name}.app")["Image"] == v1
        # Only the registry knows the new image: the local tag is put back on the old one.
        v2 = build_image(docker_client, ref, f"FROM {TEST_IMAGE}\nLABEL gen=2\n")
        for line in docker_client.images.push(ref, stream=True, decode=True):
            assert "error" not in line, line
        docker_client.images.get(v1).tag(ref)
        assert run_cli("apply", str(path)).returncode == 0
        assert inspect(docker_client, f"{name}.app")["Image"] == v1  # present: not pulled
        pulled = run_cli("apply", str(path), "--pull")
        assert pulled.returncode == 0, pulled.stderr
        assert inspect(docker_client, f"{name}.app")["Image"] == v2
        assert inspect(docker_client, f"{name}.app")["State"]["Running"]
    finally:
        if inspect(docker_client, f"{name}.app"):
            docker_client.api.remove_container(f"{name}.app", force=True, v=True)
        docker_client.images.remove(ref, force=True)


SLOW_STARTS = "".join(
    f'c{i}:\n  image: IMAGE\n  stop_timeout: 1\n  start_delay: 1\n  create_options: {{command: [sh, -c, "TRAP"]}}\n'
    for i in range(4)
)


def test_apply_parallel_runs_independent_actions_at_once(docker_client: Any, tmp_path: Path) -> None:
    """Four independent containers, each with a 1 s start_delay: one at a time takes ≥ 4 s; four at once
    take well under the serial run measured in the same test."""
    serial_name, parallel_name = unique_map_name("serial"), unique_map_name("parallel")
    serial = write(tmp_path, serial_name, SLOW_STARTS, "serial.yaml")
    parallel = write(tmp_path, parallel_name, SLOW_STARTS, "parallel.yaml")
    started = time.monotonic()
    assert run_cli("apply", str(serial), "--parallel", "1").returncode == 0
    serial_s = time.monotonic() - started
    started = time.monotonic()
    assert run_cli("apply", str(parallel), "--parallel", "4").returncode == 0
    parallel_s = time.monotonic() - started
    assert serial_s >= 4.0
    # The delays overlap: at least 2 of the 4 seconds are saved (the rest of each run is the same work).
    assert parallel_s < serial_s - 2.0, f"--parallel 4 took {parallel_s:.1f}s, --parallel 1 {serial_s:.1f}s"
    assert len(ours(docker_client, parallel_name)) == 4
    assert run_cli("apply", str(serial), "--parallel", "0").returncode == 2  # a usage error


GATED = """\
app:
  image: IMAGE
  stop_timeout: 1
  healthcheck: {test: [CMD, sh, -c, 'test "$MODE" != bad'], interval: 1s, timeout: 1s, retries: 1}
  create_options:
    command: [sh, -c, "TRAP"]
    environment: {MODE: one}
"""


def test_apply_health_gate_rolls_a_failing_recreate_back(docker_client: Any, tmp_path: Path) -> None:
    name = unique_map_name("gate")
    path = write(tmp_path, name, GATED)
    assert run_cli("apply", str(path), "--health-gate", "30").returncode == 0
    app = f"{name}.app"
    first = inspect(docker_client, app)["Id"]
    write(tmp_path, name, GATED.replace("MODE: one", "MODE: bad"))
    failed = run_cli("apply", str(path), "--health-gate", "30")
    assert failed.returncode == 1
    assert "rolled back" in failed.stderr
    current = inspect(docker_client, app)
    assert current["Id"] == first  # the previous container runs again
    assert current["State"]["Running"]
    assert "MODE=one" in current["Config"]["Env"]
    assert not inspect(docker_client, f"{app}..next")
    # The rollback is held, as a daemon's is: applying again leaves the failed replacement alone…
    held = run_cli("apply", str(path), "--health-gate", "0")
    assert held.returncode == 0, held.stderr
    assert "held back" in held.stderr
    assert inspect(docker_client, app)["Id"] == first
    # …until asked on purpose; without a gate the same change then goes through (the gate refused it).
    assert run_cli("apply", str(path), "--health-gate", "0", "--force").returncode == 0
    assert "MODE=bad" in inspect(docker_client, app)["Config"]["Env"]


def test_apply_health_gate_uses_the_images_own_healthcheck(docker_client: Any, tmp_path: Path, prefix: str) -> None:
    """No healthcheck in the map: the image's HEALTHCHECK is what the gate waits for."""
    tag = f"{prefix}-sick:1"
    build_image(
        docker_client, tag, f"FROM {TEST_IMAGE}\nHEALTHCHECK --interval=1s --timeout=1s --retries=1 CMD false\n"
    )
    name = unique_map_name("imagegate")
    path = write(tmp_path, name, APP.replace("image: IMAGE", f"image: {tag}"))
    try:
        result = run_cli("apply", str(path), "--health-gate", "30")
        assert result.returncode == 1
        assert "unhealthy" in result.stderr
        health = inspect(docker_client, f"{name}.app")["State"].get("Health") or {}
        assert health.get("Status") == "unhealthy"  # the image's check ran on the container
        assert run_cli("apply", str(path), "--health-gate", "0").returncode == 0  # no gate: in sync then
    finally:
        if inspect(docker_client, f"{name}.app"):
            docker_client.api.remove_container(f"{name}.app", force=True, v=True)
        docker_client.images.remove(tag, force=True)


@pytest.mark.parametrize(
    ("broken", "error"),
    [
        ("  bogus_key: 1\n", "unknown key 'bogus_key'"),
        ("  links: nosuch\n", "nosuch"),
    ],
)
def test_an_invalid_map_changes_nothing_on_apply(docker_client: Any, tmp_path: Path, broken: str, error: str) -> None:
    name = unique_map_name("invalid")
    path = write(tmp_path, name, APP + 'other:\n  image: IMAGE\n  create_options: {command: [sh, -c, "TRAP"]}\n')
    assert run_cli("apply", str(path)).returncode == 0
    before = {n: inspect(docker_client, n)["Id"] for n in ours(docker_client, name)}
    # A change to `app` and a new config, together with an error elsewhere in the same map: nothing applies.
    bad_body = APP.replace("MODE: one", "MODE: two") + "new:\n  image: IMAGE\n" + "other:\n  image: IMAGE\n" + broken
    write(tmp_path, name, bad_body)
    result = run_cli("apply", str(path))
    assert result.returncode == 1
    assert error in result.stderr
    assert {n: inspect(docker_client, n)["Id"] for n in ours(docker_client, name)} == before
    assert "MODE=one" in inspect(docker_client, f"{name}.app")["Config"]["Env"]
    # A second, valid map given with the broken one is not applied either.
    other = unique_map_name("innocent")
    good = write(tmp_path, other, APP, "good.yaml")
    assert run_cli("apply", str(good), str(path)).returncode == 1
    assert not ours(docker_client, other)
    wait_for(lambda: all(inspect(docker_client, n).get("State", {}).get("Running") for n in before), 5)
