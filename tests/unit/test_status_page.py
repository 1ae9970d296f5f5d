"""The status page's server side without a daemon: the routes and their token rule, the JSON `/api/status`
serves (what it shows, and that it never shows an environment value), and the shipped page's self-reliance."""

from __future__ import annotations

import json
import re
from importlib import resources

import pytest

from reconciler.daemon.board import EVENTS_KEPT, Board, View, status
from reconciler.daemon.metrics import Metrics
from reconciler.daemon.server import StatusApp
from reconciler.model import combine_maps, load_map_text
from reconciler.plan.desired import desired_state
from reconciler.plan.planner import Action, Op, plan_update
from reconciler.plan.resources import DesiredState, Kind, ResourceId
from reconciler.testing import state_json, synthesize
from tests.unit.test_http_server import LIMITS, TOKEN, Client, call

pytestmark = pytest.mark.timeout(60)

SECRET = "s3cr3t-value-4711"
MAP = f"""\
name: shop
app:
  image: shop/app:1
  attaches: data
  user: "100"
  create_options:
    environment: {{DB_PASSWORD: {SECRET}, MODE: plain-value-0815}}
web:
  image: shop/web:2
  links: app
volumes:
  data: /data
"""


def shop() -> DesiredState:
    return desired_state(combine_maps([load_map_text(MAP, "/tmp/shop.yaml")]))


def view_of(desired: DesiredState, **changes: object) -> View:
    snapshot = synthesize(desired)
    app = snapshot.container("shop.app")
    app["Config"]["Env"] = [e.replace("plain-value-0815", "old-value-0042") for e in app["Config"]["Env"]]
    snapshot.container("shop.web")["State"] = state_json("exited", 1)
    observed = snapshot.observed()
    plan = plan_update(desired, observed)
    fields: dict[str, object] = {
        "desired": desired,
        "observed": observed,
        "plan": plan,
        "engine_error": None,
        "crash_loops": {"shop.web": 3},
        "health": (True, "ok"),
        "ready": (True, "ready"),
        "engines": [{"name": "__default__", "up": True}],
    }
    fields.update(changes)
    return View(**fields)  # type: ignore[arg-type]


def action(name: str) -> Action:
    return Action(ResourceId(Kind.CONTAINER, name), Op.START, (Op.START,))


def test_the_json_shows_each_container_with_state_drift_and_history() -> None:
    board = Board()
    board.action("start", action("shop.web"), None)
    board.phase(action("shop.app"), "waiting for health")
    board.action("failed", action("shop.web"), "it exited again")
    board.map_errors([])
    data = status(view_of(shop()), board)
    (shop_map,) = data["maps"]
    containers = {c["name"]: c for c in shop_map["containers"]}
    web, app = containers["shop.web"], containers["shop.app"]
    assert web["state"] == "exited (1)"
    assert web["image"] == "shop/web:2"
    assert web["image_id"].startswith("sha256:")
    assert web["crash_loop"] == 3
    assert web["last_action"]["outcome"] == "failed"
    assert web["last_action"]["error"] == "it exited again"
    assert app["action"] == "recreate"
    assert app["last_action"]["outcome"] == "waiting for health"  # in progress: not in the history yet
    assert "env MODE changed" in app["drift"]
    kinds = {r["name"]: r["kind"] for r in shop_map["resources"]}
    assert kinds == {"shop.data": "volume", "shop.data.init": "volume-init"}
    assert [e["outcome"] for e in data["events"]] == ["failed"]  # starts are not history
    assert {n["name"] for n in data["graph"]["nodes"]} == {"shop.app", "shop.web", "shop.data", "shop.data.init"}
    assert {"from": "shop.web", "to": "shop.app", "label": "links"} in data["graph"]["edges"]
    assert data["in_sync"] is False


def test_no_environment_value_ever_appears() -> None:
    text = json.dumps(status(view_of(shop()), Board()))
    assert SECRET not in text
    assert "plain-value-0815" not in text  # not even values that do not look secret
    assert "old-value-0042" not in text


def test_the_history_is_a_ring_buffer_newest_first() -> None:
    board = Board()
    for i in range(EVENTS_KEPT + 50):
        board.action("done", action(f"shop.c{i}"), None)
    events = status(view_of(shop()), board)["events"]
    assert len(events) == EVENTS_KEPT
    assert events[0]["name"] == f"shop.c{EVENTS_KEPT + 49}"


def test_map_errors_rollbacks_and_an_absent_engine_are_shown() -> None:
    board = Board()
    board.map_errors(["shop.yaml:3:3: app.imagee: unknown key"])  # type: ignore[list-item]
    board.rolled_back(action("shop.app"), "the replacement became unhealthy")
    data = status(view_of(shop()), board)
    assert data["map_errors"] == ["shop.yaml:3:3: app.imagee: unknown key"]
    app = next(c for c in data["maps"][0]["containers"] if c["name"] == "shop.app")
    assert app["rolled_back"]["error"] == "the replacement became unhealthy"
    down = status(view_of(shop(), observed=None, plan=None, engine_error="connection refused"), board)
    assert down["engine_error"] == "connection refused"
    assert {c["state"] for c in down["maps"][0]["containers"]} == {"unknown"}


def page_app(token: bytes | None = None) -> StatusApp:
    return StatusApp(
        Metrics(),
        lambda: (True, "ok"),
        lambda: (True, "ready"),
        token=token,
        limits=LIMITS,
        status=lambda: status(view_of(shop()), Board()),
    )


@pytest.mark.parametrize("path", ["/", "/static/status.js", "/static/status.css", "/api/status"])
def test_the_page_needs_the_token_once_one_is_set(path: str) -> None:
    assert call(page_app(TOKEN), "GET", path, [], Client()).status == 401
    auth = [(b"authorization", b"Bearer " + TOKEN)]
    assert call(page_app(TOKEN), "GET", path, auth, Client()).status == 200
    assert call(page_app(), "GET", path, [], Client()).status == 200  # loopback without a token


def test_the_page_is_served_with_a_strict_content_security_policy() -> None:
    page = call(page_app(), "GET", "/", [], Client())
    assert page.headers[b"content-type"].startswith(b"text/html")
    assert b"script-src 'self'" in page.headers[b"content-security-policy"]
    assert b'<script src="/static/status.js"' in page.body
    api = call(page_app(), "GET", "/api/status", [], Client())
    assert api.headers[b"content-type"] == b"application/json"
    assert json.loads(api.body)["maps"][0]["name"] == "shop"


def test_the_page_loads_nothing_from_elsewhere() -> None:
    static = resources.files("reconciler.daemon").joinpath("static")
    for name in ("index.html", "status.js", "status.css"):
        text = static.joinpath(name).read_text()
        assert re.findall(r"https?://[^\s\"')]+", text) in ([], ["http://www.w3.org/2000/svg"]), name
        for markup in ("innerHTML", "outerHTML", "insertAdjacentHTML", "eval(", "document.write"):
            assert markup not in text, (name, markup)


def test_several_engines_are_combined_into_one_page() -> None:
    from reconciler.daemon.board import combine

    board = Board()
    board.action("done", action("shop.web"), None)
    one = status(view_of(shop()), board)
    two = status(
        view_of(
            shop(), observed=None, plan=None, engine_error="connection refused", engines=[{"name": "b", "up": False}]
        ),
        Board(),
    )
    data = combine([one, two], (False, "client b: engine unreachable"), (True, "ready"))
    assert data["health"] == {"ok": False, "reason": "client b: engine unreachable"}
    assert [e["name"] for e in data["engines"]] == ["__default__", "b"]
    assert data["engine_error"] == "connection refused"
    assert data["in_sync"] is None  # one engine's state is not known
    (shop_map,) = data["maps"]
    assert sorted(c["state"] for c in shop_map["containers"] if c["name"] == "shop.web") == ["exited (1)", "unknown"]
    assert [e["name"] for e in data["events"]] == ["shop.web"]
