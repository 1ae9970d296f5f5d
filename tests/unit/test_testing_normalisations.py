"""The fake engine (`reconciler.testing`) answers as the real one does, where the real one changes what it was sent.

Part 1 checks the fake against recorded answers of the real engine 26.1.5 (`tests/fixtures/engine/
normalisations.json`, made by `scripts/record-fixtures.py --normalisations`): the same create arguments, the
fields the engine normalises — cleaned container paths, the image's HEALTHCHECK merged field by field, link
lists, `container:<name>` stored as `container:<id>`, the image's defaults.

Part 2 is the pure form of the round trip (tests/integration/test_roundtrip.py): the smallest maps that showed
a false drift on the real engine (issue 10), planned against the fake: each must now plan in sync.
"""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from reconciler.model import combine_maps, load_map_text
from reconciler.plan.desired import desired_state
from reconciler.plan.planner import plan_update
from reconciler.plan.render import render_plan
from reconciler.testing import container_json, engine_container, image_json, synthesize, top_lines
from reconciler.testing.normalise import merged_healthcheck
from tests.recorded import fixture

RECORDED = fixture("normalisations")
CASES = sorted(RECORDED["cases"])
BUSYBOX = "reconciler-test/busybox:latest"
RICH = "reconciler-test/rich:latest"


def recorded_image(ref: str) -> dict[str, Any]:
    return RECORDED["image_rich"] if ref == RICH else fixture("image")


def fake_for(case: str) -> dict[str, Any]:
    entry = RECORDED["cases"][case]
    args = entry["args"]
    return engine_container(
        entry["name"],
        args,
        image=recorded_image(args["image"]),
        container_ids={"fixture-rec.ndep": RECORDED["dependency_id"]},
    )


def mounts(data: dict[str, Any]) -> list[tuple[str, str, bool, str | None]]:
    """Mounts without the engine's random names of anonymous volumes."""
    return sorted(
        (m["Type"], m["Destination"], m["RW"], m["Source"] if m["Type"] == "bind" else m.get("Name") and None)
        for m in data["Mounts"]
    )


@pytest.mark.parametrize("case", CASES)
def test_fake_stores_what_the_engine_stores(case: str) -> None:
    real = RECORDED["cases"][case]["inspect"]
    fake = fake_for(case)
    for key in ("Cmd", "Entrypoint", "Env", "User", "WorkingDir", "Volumes", "ExposedPorts", "Labels", "Healthcheck"):
        assert fake["Config"].get(key) == real["Config"].get(key), key
    for key in ("Binds", "Links", "NetworkMode", "VolumesFrom", "PortBindings"):
        assert fake["HostConfig"].get(key) == real["HostConfig"].get(key), key
    assert mounts(fake) == mounts(real)
    assert sorted(fake["NetworkSettings"]["Networks"]) == sorted(real["NetworkSettings"]["Networks"])


def test_recorded_cases_show_each_normalisation() -> None:
    """What the recordings hold (so a re-recording that loses a case is noticed)."""
    cases = RECORDED["cases"]
    paths = cases["paths"]["inspect"]
    assert paths["HostConfig"]["Binds"] == ["/tmp/fixture-rec-bind:/etc/app/:ro"]  # kept as sent
    assert sorted(m["Destination"] for m in paths["Mounts"]) == ["/etc/app", "/scratch"]  # cleaned
    assert paths["Config"]["WorkingDir"] == "/srv/work"
    image_check = RECORDED["image_rich"]["Config"]["Healthcheck"]
    assert cases["healthcheck_partial"]["inspect"]["Config"]["Healthcheck"] == {
        **image_check,
        "Test": ["CMD-SHELL", "true"],
    }
    assert cases["healthcheck_no_test"]["inspect"]["Config"]["Healthcheck"] == {
        **image_check,
        "Interval": 2_000_000_000,
    }
    assert cases["healthcheck_none"]["inspect"]["Config"]["Healthcheck"] == {**image_check, "Test": ["NONE"]}
    assert len(cases["two_link_aliases"]["inspect"]["HostConfig"]["Links"]) == 2
    mode = cases["network_mode_container_name"]["inspect"]["HostConfig"]["NetworkMode"]
    assert mode == f"container:{RECORDED['dependency_id']}"


def test_healthcheck_merge_field_by_field() -> None:
    image = {"Test": ["CMD", "true"], "Interval": 1, "Timeout": 3, "Retries": 3}
    assert merged_healthcheck(None, image) == image
    assert merged_healthcheck({"Interval": 2}, image) == {**image, "Interval": 2}
    assert merged_healthcheck({"Test": ["NONE"]}, image) == {**image, "Test": ["NONE"]}
    assert merged_healthcheck({"Test": ["CMD", "x"], "Retries": 0}, None) == {"Test": ["CMD", "x"]}


def test_top_shows_argv_joined_and_a_shell_execs_one_simple_command() -> None:
    """As `GET /containers/{id}/top` showed on the real engine for `docker exec` of these commands."""
    assert top_lines("sh -c 'sleep 3604'") == ["sleep 3604"]
    assert top_lines('sleep "3605"') == ["sleep 3605"]
    assert top_lines(["sh", "-c", "sleep 3606; true"]) == ["sh -c sleep 3606; true", "sleep 3606"]
    assert top_lines(("sleep", "3602")) == ["sleep 3602"]


def test_spec_fake_goes_through_the_executors_create_arguments() -> None:
    """`container_json(spec)` is the engine's answer to exactly what the executor sends: two links to one
    container under two aliases reach the engine only if the executor sends both."""
    state = desired(
        """
        db: {image: IMAGE}
        app: {image: IMAGE, links: [[db, first], [db, second]]}
        """
    )
    spec = state.containers["m.app"]
    assert [alias for _, alias in spec.links] == ["first", "second"]
    stored = container_json(spec)["HostConfig"]["Links"]
    assert stored is not None
    assert {link.rpartition("/")[2] for link in stored} <= {"first", "second"}


# --- part 2: the false drifts of the round trip, without an engine -------------------------------------------


def desired(body: str) -> Any:
    text = "name: m\n" + textwrap.dedent(body).replace("IMAGE", BUSYBOX).replace("RICH", RICH)
    return desired_state(combine_maps([load_map_text(text, "/srv/maps/m.yaml")]))


RICH_IMAGE_JSON = image_json(
    RICH,
    env=RECORDED["image_rich"]["Config"]["Env"],
    cmd=None,
    entrypoint=RECORDED["image_rich"]["Config"]["Entrypoint"],
    user="app",
    exposed=sorted(RECORDED["image_rich"]["Config"]["ExposedPorts"]),
    volumes=sorted(RECORDED["image_rich"]["Config"]["Volumes"]),
    healthcheck=RECORDED["image_rich"]["Config"]["Healthcheck"],
    labels=RECORDED["image_rich"]["Config"]["Labels"],
)

FALSE_DRIFT = {
    "trailing_slash_bind": "volumes: {cfg: /etc/app/}\nhost: {cfg: /srv/cfg}\napp: {image: IMAGE, binds: cfg}",
    "trailing_slash_attach": "volumes: {data: /srv/data/}\napp: {image: IMAGE, attaches: data}",
    "trailing_slash_shares": "app: {image: IMAGE, shares: [/scratch/]}",
    "link_two_aliases": "db: {image: IMAGE}\napp: {image: IMAGE, links: [[db, first], [db, second]]}",
    "healthcheck_partial": "app: {image: RICH, healthcheck: {test: 'true'}}",
    "healthcheck_no_test": "app: {image: RICH, healthcheck: {interval: 2s}}",
    "healthcheck_none_on_image_with_healthcheck": "app: {image: RICH, healthcheck: NONE}",
    "healthcheck_short_form": "app: {image: RICH, healthcheck: ['true', 1s]}",
    "network_mode_external": "app: {image: IMAGE, network_mode: 'container:vpn'}",
    "overlap_host_config_binds": "app: {image: IMAGE, host_config: {binds: ['/srv/x:/srv/x:ro']}}",
    "overlap_create_options_ports": "app: {image: IMAGE, create_options: {ports: [7001]}}",
    "overlap_port_bindings": (
        "app: {image: IMAGE, create_options: {ports: [7000]},"
        " host_config: {port_bindings: {7000: {HostIp: 127.0.0.1, HostPort: 27000}}}}"
    ),
    "overlap_host_config_links": "db: {image: IMAGE}\napp: {image: IMAGE, host_config: {links: {m.db: hc}}}",
    "overlap_host_config_volumes_from": (
        "db: {image: IMAGE, shares: [/srv/shared]}\napp: {image: IMAGE, host_config: {volumes_from: [m.db]}}"
    ),
    "exec_quoted": "app: {image: IMAGE, exec_commands: [\"sh -c 'sleep 3604'\"]}",
    "exec_double_quoted": "app: {image: IMAGE, exec_commands: ['sleep \"3605\"']}",
}
IN_SYNC = {
    "exec_shell_list": "app: {image: IMAGE, exec_commands: [{cmd: [sh, -c, 'sleep 3606; true']}]}",
    "healthcheck_full_on_image_with_healthcheck": (
        "app: {image: RICH, healthcheck: {test: [CMD, 'true'], interval: 1s, timeout: 5s, retries: 2}}"
    ),
    "image_defaults": "app: {image: RICH}",
    "network_mode_config": "vpn: {image: IMAGE}\napp: {image: IMAGE, network_mode: vpn}",
    "overlap_create_options_volumes": "app: {image: IMAGE, create_options: {volumes: [/srv/anon]}}",
}


def plan_against_fake(body: str) -> Any:
    state = desired(body)
    # `vpn` of `network_mode: container:vpn` runs outside the maps: observing the maps' containers never sees it.
    snapshot = synthesize(state, images={RICH: RICH_IMAGE_JSON})
    return plan_update(state, snapshot.observed())


@pytest.mark.parametrize("case", sorted(FALSE_DRIFT))
def test_false_drift_seen_on_the_real_engine_is_gone(case: str) -> None:
    plan = plan_against_fake(FALSE_DRIFT[case])
    assert plan.in_sync, render_plan(plan)


@pytest.mark.parametrize("case", sorted(IN_SYNC))
def test_in_sync_on_the_real_engine_and_on_the_fake(case: str) -> None:
    plan = plan_against_fake(IN_SYNC[case])
    assert plan.in_sync, render_plan(plan)
