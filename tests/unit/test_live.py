"""`reconciler.live` without an engine: the states a display shows for the executor's hooks."""

from __future__ import annotations

import io
import json

import pytest

from reconciler import live
from reconciler.plan.planner import Action, Op, Plan
from reconciler.plan.resources import Kind, ResourceId

pytestmark = pytest.mark.timeout(30)


def act(name: str, op: Op = Op.CREATE, kind: Kind = Kind.CONTAINER) -> Action:
    return Action(ResourceId(kind, name), op, (op,))


def drive(progress: live.Progress) -> None:
    pull, db, app = act("img:1", Op.PULL, Kind.IMAGE), act("m.db"), act("m.app")
    progress.on_run(Plan(waves=((pull,),)))
    progress.on_event("start", pull, None)
    progress.on_phase(pull, "pulling")
    progress.on_event("done", pull, None)
    progress.on_run(Plan(waves=((db,), (app,))))
    progress.on_event("start", db, None)
    for phase in ("creating", "starting", "waiting for health", "waiting for health", "healthy"):
        progress.on_phase(db, phase)
    progress.on_event("done", db, None)
    progress.on_event("start", app, None)
    progress.on_phase(app, "creating")
    progress.on_event("failed", app, "no such image")


def test_json_is_one_object_per_state_change() -> None:
    out = io.StringIO()
    drive(live.Json(out))
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    by_name: dict[str, list[tuple[str, str]]] = {}
    for r in records:
        by_name.setdefault(r["name"], []).append((r["wave"], r["state"]))
    assert by_name["img:1"] == [("pull", "waiting"), ("pull", "pulling"), ("pull", "done")]
    assert [s for _w, s in by_name["m.db"]] == ["waiting", "creating", "starting", "waiting for health", "healthy"]
    assert {w for w, _s in by_name["m.db"]} == {"1"}  # the pull pass does not count as a wave
    assert by_name["m.app"][-1] == ("2", "failed")
    assert records[-1]["error"] == "no such image"


def test_plain_prints_a_line_per_finished_action() -> None:
    lines: list[str] = []
    drive(live.Plain(lines.append))
    assert lines == [
        "  ok       pull      image        img:1",
        "  ok       create    container    m.db",
        "  FAILED   create    container    m.app: no such image",
    ]


def test_the_terminal_display_groups_by_wave_with_times() -> None:
    display = live.Tty(force=True)
    drive(display)
    text = display.render().plain.splitlines()
    assert text[0] == "pulls"
    assert text[2] == "wave 1"
    assert text[3].split()[:4] == ["healthy", "create", "container", "m.db"]
    assert text[3].endswith("s")
    assert text[5].split()[0] == "failed"
    assert text[6].strip() == "no such image"
