"""Running unattended without an engine: update policies in the plan, update windows, notifications
(batching, rate limit, failures), webhook signatures and git sources that may be hostile."""

from __future__ import annotations

import hashlib
import hmac
import subprocess
import threading
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from reconciler.daemon.alerts import Alerts
from reconciler.daemon.gitsync import signature_status
from reconciler.daemon.metrics import Metrics
from reconciler.daemon.windows import UpdateWindows
from reconciler.model import MapError, load_map_text
from reconciler.model.window import WindowError, parse_window
from reconciler.plan.observed import ObservedState
from reconciler.plan.planner import Op, PlanOptions, plan_update
from reconciler.plan.render import render_plan
from reconciler.plan.resources import DesiredState
from reconciler.testing import image_json
from reconciler.watch.git import GitError, GitRepo
from tests.unit.test_planner import c, desired, ops, single

MAP = """\
name: s
update: notify
base: {abstract: true, update: pinned}
auto: {image: app:1, update: auto}
notify: {image: app:1}
pinned: {image: app:1, extends: base}
"""


def moved(text: str) -> tuple[DesiredState, ObservedState]:
    state, snapshot = single(text)
    old = snapshot.images["app:1"]
    snapshot.images = {"app:1": image_json("app:1", ident="sha256:" + "2" * 64), old["Id"]: old}
    return state, snapshot.observed()


# --- update policies ---------------------------------------------------------------------------------


def test_policies_are_inherited_from_the_map_and_through_extends() -> None:
    state = desired(MAP)
    assert {n: s.update for n, s in state.containers.items()} == {
        "s.auto": "auto",
        "s.notify": "notify",
        "s.pinned": "pinned",
    }


def test_a_moved_tag_recreates_auto_reports_notify_and_leaves_pinned() -> None:
    state, observed = moved(MAP)
    plan = plan_update(state, observed)
    assert ops(plan) == {c("s.auto"): Op.RECREATE}
    assert [p.resource.name for p in plan.pending] == ["s.notify"]
    assert "pending updates" in render_plan(plan)
    taken = plan_update(state, observed, PlanOptions(apply_pending=True))
    assert ops(taken) == {c("s.auto"): Op.RECREATE, c("s.notify"): Op.RECREATE}
    assert not taken.pending


def test_an_auto_update_outside_its_window_is_pending_but_other_drift_is_fixed() -> None:
    state, observed = moved(MAP)
    plan = plan_update(state, observed, PlanOptions(waiting=frozenset({"s.auto"})))
    assert ops(plan) == {}
    assert {p.resource.name: p.why for p in plan.pending} == {
        "s.auto": "waiting for the update window",
        "s.notify": "update: notify; apply --update takes it",
    }
    assert plan.in_sync  # pending is not drift: `plan --detailed-exitcode` exits 0


def test_the_policy_is_not_part_of_the_spec_hash() -> None:
    plain = desired("name: s\napp: {image: app:1}\n").containers["s.app"]
    pinned = desired("name: s\napp: {image: app:1, update: pinned, update_window: 'Sat 02:00-05:00'}\n")
    assert pinned.containers["s.app"].spec_hash == plain.spec_hash


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("name: s\nupdate: sometimes\napp: {image: x}\n", "update"),
        ("name: s\nupdate_window: Sat 25:00-26:00\napp: {image: x}\n", "time of day"),
        ("name: s\napp: {image: x, update_window: '0 2 * * 6'}\n", "update window"),
    ],
)
def test_bad_policies_and_windows_are_map_errors_with_their_line(text: str, error: str) -> None:
    with pytest.raises(MapError) as caught:
        load_map_text(text, "m.yaml")
    assert error in str(caught.value)
    assert "m.yaml:2" in str(caught.value)


def test_a_docker_map_config_named_update_stays_a_config() -> None:
    state = desired("name: s\nupdate: {image: app:1}\n")
    assert list(state.containers) == ["s.update"]


# --- windows -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "open_at", "closed_at"),
    [
        ("Sat 02:00-05:00", datetime(2026, 12, 5, 4, 59), datetime(2026, 12, 5, 5, 0)),
        ("0 2 * * 6 3h", datetime(2026, 12, 5, 2, 0), datetime(2026, 12, 5, 1, 59)),
        ("Fri 23:00-01:00", datetime(2026, 12, 5, 0, 30), datetime(2026, 12, 4, 22, 59)),
        ("Mon-Fri 12:00-12:30", datetime(2026, 12, 1, 12, 10), datetime(2026, 12, 5, 12, 10)),
        ("03:00-04:00", datetime(2026, 12, 6, 3, 0), datetime(2026, 12, 6, 4, 0)),
    ],
)
def test_windows_open_and_close(text: str, open_at: datetime, closed_at: datetime) -> None:
    window = parse_window(text)
    assert window.is_open(open_at)
    assert not window.is_open(closed_at)
    assert window.wait(open_at) == 0


def test_a_closed_window_says_when_it_opens() -> None:
    window = parse_window("Sat 02:00-05:00")
    assert window.wait(datetime(2026, 12, 5, 1, 0)) == 3600
    assert window.next_open(datetime(2026, 12, 5, 5, 0)) == datetime(2026, 12, 12, 2, 0)


@pytest.mark.parametrize("text", ["", "Sat", "Sat 02:00-02:00", "Caturday 01:00-02:00", "* * * * * 0m", "x" * 300])
def test_bad_windows_are_refused(text: str) -> None:
    with pytest.raises(WindowError):
        parse_window(text)


def test_the_daemon_setting_is_the_default_window_and_only_auto_waits() -> None:
    state = desired(
        "name: s\nupdate: notify\na: {image: x, update: auto}\nb: {image: x}\n"
        "c: {image: x, update: auto, update_window: '00:00-23:59'}\n"
    )
    now = datetime(2026, 12, 5, 12, 0)
    windows = UpdateWindows("Sat 02:00-05:00", lambda: now)
    assert windows.waiting(state) == frozenset({"s.a"})
    assert windows.next_opening(state, ["s.a", "s.b"]) == timedelta(days=6, hours=14).total_seconds()
    assert UpdateWindows(None, lambda: now).waiting(state) == frozenset()


# --- notifications -----------------------------------------------------------------------------------


class Target:
    def __init__(self, ok: bool = True) -> None:
        self.sent: list[tuple[str, str]] = []
        self.ok = ok
        self.got = threading.Event()

    def __call__(self, title: str, body: str) -> bool:
        self.sent.append((title, body))
        self.got.set()
        return self.ok


def test_one_message_per_reconcile_and_a_burst_is_merged() -> None:
    target = Target()
    alerts = Alerts(targets=[target], interval=0.3)
    alerts.begin()
    alerts.add("update", "s.a", "updated: app:1 111 → 222")
    alerts.add("pending", "s.b", "app:1: 111 → 222 (update: notify)")
    alerts.add("pending", "s.b", "app:1: 111 → 222 (update: notify)")  # the same thing once
    alerts.end()
    alerts.start()
    assert target.got.wait(5)
    title, body = target.sent[0]
    assert "1 update, 1 pending" in title
    assert body.splitlines() == [
        "[update] s.a: updated: app:1 111 → 222",
        "[pending] s.b: app:1: 111 → 222 (update: notify)",
    ]
    target.got.clear()
    for n in range(5):  # within the interval: waits, then goes as one message
        alerts.add("crash-loop", f"s.c{n}", "crash loop: restart held back")
    assert target.got.wait(5)
    alerts.stop()
    assert len(target.sent) == 2
    assert len(target.sent[1][1].splitlines()) == 5


def test_the_first_news_waits_for_its_neighbours_from_other_reconciles() -> None:
    """One tag move is a reconcile per container: the one that ends a moment later joins the message."""
    target = Target()
    alerts = Alerts(targets=[target], interval=10, gather=0.6)
    alerts.start()
    alerts.add("pending", "s.b", "app:1: 111 → 222 (update: notify)")  # a quick reconcile: nothing to do
    time.sleep(0.2)
    alerts.add("update", "s.a", "updated: app:1 111 → 222")  # the recreate, done a little later
    assert target.got.wait(5)
    alerts.stop()
    assert len(target.sent) == 1
    assert target.sent[0][1].splitlines() == [
        "[pending] s.b: app:1: 111 → 222 (update: notify)",
        "[update] s.a: updated: app:1 111 → 222",
    ]


def test_a_failing_target_is_counted_and_the_others_still_get_it() -> None:
    metrics = Metrics()
    broken, good = Target(ok=False), Target()

    def raising(_title: str, _body: str) -> bool:
        raise OSError("connection refused")

    alerts = Alerts(targets=[broken, raising, good], metrics=metrics, interval=0)
    alerts.start()
    alerts.add("map-error", "m.yaml", "m.yaml:3:5: app.image: bad")
    assert good.got.wait(5)
    alerts.stop()
    assert metrics.notifications.labels("failed")._value.get() == 2
    assert metrics.notifications.labels("sent")._value.get() == 1


def test_adding_never_blocks_and_a_full_queue_drops_the_oldest() -> None:
    metrics = Metrics()
    alerts = Alerts(targets=[Target()], metrics=metrics, queue_size=2)  # never started: nothing is sent
    for n in range(5):
        alerts.add("update", f"s.{n}", "updated")
    assert metrics.notifications.labels("dropped")._value.get() == 3


def test_without_targets_nothing_is_queued() -> None:
    alerts = Alerts()
    alerts.add("update", "s.a", "updated")
    assert not alerts.enabled


# --- webhook signatures ------------------------------------------------------------------------------


def test_webhook_signatures() -> None:
    body = b'{"ref": "refs/heads/main"}'
    good = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert signature_status(b"s3cret", body, good) == 200
    assert signature_status(b"s3cret", body, None) == 401
    assert signature_status(b"s3cret", body, "") == 401
    assert signature_status(b"s3cret", body + b"x", good) == 403
    assert signature_status(b"other", body, good) == 403
    assert signature_status(b"s3cret", body, good.upper()) == 403
    assert signature_status(None, body, good) == 403  # no secret configured: nothing is accepted


# --- git sources -------------------------------------------------------------------------------------


def _repo(tmp_path: Path) -> tuple[Path, Path]:
    bare, work = tmp_path / "origin.git", tmp_path / "work"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True, timeout=30)
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True, timeout=30)
    (work / "maps").mkdir()
    return bare, work


def _commit(work: Path, bare: Path) -> None:
    ident = ["-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run(["git", "add", "-A"], cwd=work, check=True, timeout=30)
    subprocess.run(["git", *ident, "commit", "-q", "-m", "x"], cwd=work, check=True, timeout=30)
    subprocess.run(["git", "push", "-q", str(bare), "HEAD:main"], cwd=work, check=True, timeout=30)


@pytest.mark.timeout(60)
def test_a_symlink_in_the_repository_is_never_followed(tmp_path: Path) -> None:
    bare, work = _repo(tmp_path)
    secret = tmp_path / "host-secret.yaml"
    secret.write_text("name: stolen\napp: {image: x}\n")
    (work / "maps" / "site.yaml").symlink_to(secret)
    (work / "maps" / "dir").symlink_to(tmp_path)
    _commit(work, bare)
    repo = GitRepo(str(bare), tmp_path / "state", branch="main", path="maps")
    folder = repo.checkout(repo.fetch())
    link = folder / "site.yaml"
    assert not link.is_symlink()
    assert link.read_text() == str(secret)  # the link's target as text, not the file it points at
    assert not (folder / "dir").is_symlink()
    assert not (folder / "dir").is_dir()


@pytest.mark.timeout(60)
def test_a_repository_over_the_limits_is_refused_before_it_is_written(tmp_path: Path) -> None:
    bare, work = _repo(tmp_path)
    (work / "maps" / "big.yaml").write_text("# " + "x" * 5000 + "\n")
    _commit(work, bare)
    repo = GitRepo(str(bare), tmp_path / "state", branch="main", path="maps", max_bytes=4096)
    commit = repo.fetch()
    with pytest.raises(GitError, match="over 4096 bytes"):
        repo.checkout(commit)
    assert not (repo.commits / commit).exists()
    few = GitRepo(str(bare), tmp_path / "state2", branch="main", path="maps", max_files=0)
    with pytest.raises(GitError, match="more than 0 files"):
        few.checkout(few.fetch())


@pytest.mark.timeout(60)
def test_git_calls_time_out_and_bad_paths_are_refused(tmp_path: Path) -> None:
    with pytest.raises(GitError):
        GitRepo("x", tmp_path, path="../etc")
    repo = GitRepo(str(tmp_path / "missing.git"), tmp_path / "state")
    with pytest.raises(GitError, match="fetch failed"):
        repo.fetch()
    slow = GitRepo(str(tmp_path / "missing.git"), tmp_path / "state", timeout=0.0001)
    with pytest.raises(GitError, match="took longer"):
        slow.fetch()


def test_engine_lost_past_the_grace_period_and_recovery_are_notified_once() -> None:
    from reconciler.daemon.controller import Controller
    from reconciler.daemon.settings import Settings
    from reconciler.testing import FakeEngine
    from reconciler.watch.maps import MapSource

    now = [1000.0]
    target = Target()
    alerts = Alerts(targets=[target], interval=0)
    ctl = Controller(
        Settings(paths=[], state_dir="off", engine_grace=60),
        FakeEngine(),
        MapSource([]),
        alerts=alerts,
        clock=lambda: now[0],
    )
    ctl.on_disconnect("gone")
    now[0] += 30
    ctl.heartbeat()  # within the grace period: nothing
    now[0] += 31
    ctl.heartbeat()
    ctl.heartbeat()  # told once
    now[0] += 10
    ctl.on_connect()
    alerts.start()
    wait = threading.Event()
    for _ in range(50):
        if sum(len(body.splitlines()) for _t, body in target.sent) >= 2:
            break
        wait.wait(0.1)
    alerts.stop()
    lines = [line for _t, body in target.sent for line in body.splitlines()]
    assert lines == ["[engine-lost] engine: unreachable for 61s", "[engine-back] engine: reachable again after 71s"]


def test_rollbacks_and_crash_loops_are_notified_in_one_batch_and_a_crash_loop_once() -> None:
    from datetime import UTC

    from reconciler.executor.apply import ActionResult, Outcome
    from reconciler.testing import synthesize
    from tests.unit.test_daemon_logic import HEALTHY, controller

    target = Target()
    ctl = controller(HEALTHY, alerts=Alerts(targets=[target], interval=0))
    old = controller(HEALTHY.replace("'2'", "'1'"))
    observed = synthesize(old.desired).observed()
    action = plan_update(ctl.desired, observed).actions[0]
    image_id = observed.images["x:latest"].id
    rolled = ActionResult(action, Outcome.FAILED, "the replacement became unhealthy", 1.0, ("x:latest", image_id))

    crashing = controller("name: m\napp: {image: nginx}\n")
    snapshot = synthesize(crashing.desired)
    now = datetime.now(UTC)
    snapshot.container("m.app")["State"].update(
        Running=False,
        Status="exited",
        ExitCode=1,
        StartedAt=(now - timedelta(seconds=2)).isoformat().replace("+00:00", "Z"),
        FinishedAt=now.isoformat().replace("+00:00", "Z"),  # a crash just now: its restart waits 1 s
    )
    looping = snapshot.observed()
    ctl.alerts.begin()
    ctl.outcomes.rolled_back(ctl.desired, rolled)
    for _ in range(3):  # the same crash loop seen by three reconciles' plans: told once
        ctl.guards.hold(plan_update(crashing.desired, looping), looping, crashing.desired)
    ctl.alerts.end()
    ctl.alerts.start()
    assert target.got.wait(5)
    ctl.alerts.stop()
    assert len(target.sent) == 1
    lines = target.sent[0][1].splitlines()
    assert lines == [
        "[rollback] m.app: rolled back a recreate, the previous container runs again: the replacement became unhealthy",
        "[crash-loop] m.app: crash loop: restart held back (1 crashes in a row)",
    ]


def test_git_urls_are_shown_without_their_credentials(tmp_path: Path) -> None:
    from reconciler.watch.git import redact

    assert redact("https://bot:tok3n@git.example.com/ops/maps.git") == "https://***@git.example.com/ops/maps.git"
    assert redact("https://git.example.com/ops/maps.git") == "https://git.example.com/ops/maps.git"
    assert redact("/srv/git/maps.git") == "/srv/git/maps.git"
    repo = GitRepo("https://bot:tok3n@127.0.0.1:1/maps.git", tmp_path / "state", timeout=20)
    with pytest.raises(GitError) as caught:
        repo.fetch()  # nothing listens there
    assert "tok3n" not in str(caught.value)


@pytest.mark.parametrize(
    "flags",
    [{"git_branch": "--upload-pack=evil"}, {"git_branch": "a..b"}, {"git_path": "../etc"}, {"git_path": "x/.git"}],
)
def test_git_settings_that_could_escape_are_refused(flags: dict[str, str]) -> None:
    from pydantic import ValidationError

    from reconciler.daemon.settings import Settings

    with pytest.raises(ValidationError):
        Settings(git="/srv/maps.git", **flags)  # type: ignore[arg-type]


def test_the_git_hook_is_signed_not_token_guarded_and_bounded_like_every_request() -> None:
    from reconciler.daemon.server import HttpLimits, StatusApp
    from tests.unit.test_http_server import Client, call

    calls: list[bytes] = []
    secret = b"hook-secret"

    def hook(body: bytes, headers: Mapping[str, str]) -> tuple[int, str]:
        calls.append(body)
        status = signature_status(secret, body, headers.get("x-hub-signature-256"))
        return (202, "fetching") if status == 200 else (status, "refused")

    application = StatusApp(
        Metrics(),
        lambda: (True, "ok"),
        lambda: (True, "ready"),
        token=b"bearer-token",
        limits=HttpLimits(body_limit=100, body_timeout=0.2),
        hooks={"/hooks/git": hook},
    )
    body = b'{"ref":"refs/heads/main"}'
    signed = [(b"x-hub-signature-256", ("sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()).encode())]
    length = [(b"content-length", str(len(body)).encode())]
    assert call(application, "POST", "/hooks/git", length + signed, Client([body])).status == 202  # no bearer token
    assert call(application, "POST", "/hooks/git", length, Client([body])).status == 401
    assert call(application, "GET", "/hooks/git", [], Client()).status == 405
    big = [(b"content-length", b"101")]
    assert call(application, "POST", "/hooks/git", big + signed, Client([b"x" * 101])).status == 413
    assert calls == [body, body]  # the refused methods and sizes never reached the hook
    assert call(application, "GET", "/metrics", [], Client()).status == 401  # the rest still needs the token


def test_a_closed_window_asks_for_one_wake_up_however_often_it_is_seen() -> None:
    from reconciler.daemon.controller import Result
    from reconciler.daemon.keys import ALL
    from tests.unit.test_daemon_logic import controller

    ctl = controller("name: m\napp: {image: nginx}\n")
    for _ in range(5):
        ctl._follow_up(ALL, Result(wake_after=3600))
    assert len(ctl.queue._delayed) == 1
    ctl._follow_up(ALL, Result(wake_after=60))  # an earlier opening (the maps changed): that one too
    assert len(ctl.queue._delayed) == 2


def test_a_secret_quoted_by_an_error_never_reaches_a_message() -> None:
    target = Target()
    alerts = Alerts(targets=[target], interval=0)
    alerts.add(
        "rollback", "m.app", "create failed: DB_PASSWORD=hunter2 given; env {'API_TOKEN': 'abc123', 'MODE': 'x'}"
    )
    alerts.start()
    assert target.got.wait(5)
    alerts.stop()
    body = target.sent[0][1]
    assert "hunter2" not in body
    assert "abc123" not in body
    assert "DB_PASSWORD=***" in body
    assert "'MODE': 'x'" in body


def test_a_broken_map_is_one_message_for_all_clients_and_news_again_once_fixed(tmp_path: Path) -> None:
    from reconciler.daemon.controller import Controller
    from reconciler.daemon.settings import Settings
    from reconciler.testing import FakeEngine
    from reconciler.watch.maps import MapSource

    site = tmp_path / "site.yaml"
    broken = "name: s\napp:\n  image: [not, an, image]\n"
    site.write_text(broken)
    target = Target()
    alerts = Alerts(targets=[target], interval=0)
    alerts.start()
    settings = Settings(paths=[], state_dir="off")
    controllers = [Controller(settings, FakeEngine(), MapSource([site]), alerts=alerts) for _ in range(2)]
    for ctl in controllers:
        ctl.load_maps()
        ctl.load_maps()  # a reload: not news
    assert target.got.wait(5)
    target.got.clear()
    site.write_text("name: s\napp: {image: x}\n")
    controllers[0].load_maps()
    site.write_text(broken)
    controllers[0].load_maps()  # broken again: news again
    assert target.got.wait(5)
    alerts.stop()
    lines = [line for _t, body in target.sent for line in body.splitlines()]
    assert lines == [f"[map-error] {site}:3:3: app.image: Input should be a valid string"] * 2
