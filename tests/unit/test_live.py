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
    """What one executor's hooks see: a pull pass, then two waves (the executor's calls, in order)."""
    hooks = progress.executor_hooks()
    run, event, phase = hooks["on_run"], hooks["on_event"], hooks["on_phase"]
    pull, db, app = act("img:1", Op.PULL, Kind.IMAGE), act("m.db"), act("m.app")
    run(Plan(waves=((pull,),)))
    event("start", pull, None)
    phase(pull, "pulling")
    event("done", pull, None)
    run(Plan(waves=((db,), (app,))))
    event("start", db, None)
    for name in ("creating", "starting", "waiting for health", "waiting for health", "healthy"):
        phase(db, name)
    event("done", db, None)
    event("start", app, None)
    phase(app, "creating")
    event("failed", app, "no such image")


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
    drive(live.Plain(lines.append, clock=lambda: 7.0))
    assert lines == [
        "  ok       pull      image        img:1 (0.0s)",
        "  ok       create    container    m.db (0.0s)",
        "  FAILED   create    container    m.app (0.0s): no such image",
    ]


def test_each_client_has_its_rows_and_waves() -> None:
    out = io.StringIO()
    display = live.Json(out)
    one, two = display.executor_hooks("one", shown=True), display.executor_hooks("two", shown=True)
    db = act("m.db")
    one["on_run"](Plan(waves=((db,),)))
    two["on_run"](Plan(waves=((db,),)))
    two["on_event"]("start", db, None)
    two["on_event"]("failed", db, "engine two says no")
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(r["client"], r["wave"], r["state"]) for r in records] == [
        ("one", "1", "waiting"),
        ("two", "1", "waiting"),
        ("two", "1", "failed"),
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
