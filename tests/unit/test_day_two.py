"""Day two (issue 18) without an engine: pauses, presence, holds read back by the CLI, honest readiness."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from structlog.testing import capture_logs

from reconciler.cli import parse_duration
from reconciler.daemon.controller import Controller, Result
from reconciler.daemon.holds import HoldStore
from reconciler.daemon.intents import PauseFile, Presence, running_daemon
from reconciler.daemon.keys import ALL
from reconciler.daemon.settings import Settings
from reconciler.executor.apply import ActionResult, Outcome, RunResult
from reconciler.model import MapProblem
from reconciler.plan.planner import HeldBack, plan_update
from reconciler.testing import FakeEngine, synthesize
from reconciler.watch.maps import MapSource, ReloadResult
from tests.cli import run_cli as run
from tests.unit.test_daemon_logic import HEALTHY, Clock, controller

APP = "name: m\napp: {image: x}\nweb: {image: x}\n"


def test_a_paused_container_is_not_healed_and_resume_brings_it_back(tmp_path: Path) -> None:
    ctl = controller(APP, state_dir=str(tmp_path))
    observed = synthesize(controller("name: m\nweb: {image: x}\n").desired).observed()  # m.app is missing
    assert [a.resource.name for a in ctl._planner(ALL)(ctl.desired, observed).actions] == ["m.app"]

    PauseFile(tmp_path).pause(
        {"m.app": ctl.desired.containers["m.app"].spec_hash}, None, "by `reconciler pause`"
    )  # the CLI, another process
    plan = ctl._planner(ALL)(ctl.desired, observed)
    assert not plan.actions
    assert [n.message for n in plan.notes] == ["paused (by `reconciler pause`, until `reconciler resume`)"]
    with capture_logs() as logs:
        ctl.watch_pauses()
    assert [e["event"] for e in logs] == ["paused by a person: not healed until resumed"]
    ctl.map_health.files = ["m.yaml"]
    ctl.first_reconcile_done.set()
    assert ctl.ready() == (True, "ready; 1 container paused by a person")

    assert PauseFile(tmp_path).resume(["m.app"]) == ["m.app"]
    ctl.queue.get(timeout=0)  # drain
    with capture_logs() as logs:
        ctl.watch_pauses()
    assert [e["event"] for e in logs] == ["resumed: managed again"]
    assert ctl.queue.get(timeout=0) == ALL  # looked at again at once
    assert [a.resource.name for a in ctl._planner(ALL)(ctl.desired, observed).actions] == ["m.app"]


def test_a_pause_is_per_client(tmp_path: Path) -> None:
    """The same container name runs on several clients: a pause on one must not stop healing on the others
    (found by trying the product as a new operator). The CLI writes each client's pauses where that
    client's daemon controller reads them."""
    from reconciler.model.clients import ClientConfig

    maps = tmp_path / "m.yaml"
    maps.write_text(APP.replace("name: m\n", "name: m\nclients: [local, far]\n"))
    clients = tmp_path / "clients.yaml"
    clients.write_text("local: {base_url: 'unix:///nowhere/1.sock'}\nfar: {base_url: 'unix:///nowhere/2.sock'}\n")
    env = {"RECONCILER_STATE_DIR": str(tmp_path / "state")}
    done = run("pause", str(maps), "app", "--clients", str(clients), "--client", "far", env=env)
    assert done.returncode == 0, done.stderr
    assert "paused on client far: m.app" in done.stdout
    assert not (tmp_path / "state" / "paused.json").exists()
    assert "m.app" in PauseFile(tmp_path / "state" / "clients" / "far").active()
    assert not PauseFile(tmp_path / "state" / "clients" / "local").active()
    # Each client's controller reads its own: `local` heals m.app, `far` leaves it alone.
    observed = synthesize(controller("name: m\nweb: {image: x}\n").desired).observed()
    for name, healed in (("local", True), ("far", False)):
        ctl = Controller(
            Settings(paths=[], state_dir=str(tmp_path / "state")),
            FakeEngine(),
            MapSource([]),
            client=ClientConfig(name=name),
        )
        ctl.maps = controller(APP).maps
        ctl.desired = controller(APP).desired
        names = [a.resource.name for a in ctl._planner(ALL)(ctl.desired, observed).actions]
        assert ("m.app" in names) is healed, name
    resumed = run("resume", str(maps), "--clients", str(clients), env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert not PauseFile(tmp_path / "state" / "clients" / "far").active()


def test_a_map_change_of_a_paused_container_ends_its_pause(tmp_path: Path) -> None:
    ctl = controller(APP, state_dir=str(tmp_path))
    PauseFile(tmp_path).pause({"m.app": ctl.desired.containers["m.app"].spec_hash}, None, "maintenance")
    assert set(ctl.guards.paused(ctl.desired)) == {"m.app"}
    edited = controller(APP.replace("app: {image: x}", "app: {image: x, user: nobody}"), state_dir=str(tmp_path))
    assert edited.guards.paused(edited.desired) == {}


def test_a_pause_for_a_while_runs_out(tmp_path: Path) -> None:
    clock = Clock()
    pauses = PauseFile(tmp_path, clock=clock)
    pauses.pause({"m.app": ""}, clock.now + 60, "maintenance")
    assert set(pauses.active()) == {"m.app"}
    clock.now += 61
    assert pauses.active() == {}
    assert pauses.resume(["m.app"]) == []  # nothing in force to resume


def test_resuming_what_was_never_paused_writes_nothing(tmp_path: Path) -> None:
    assert PauseFile(tmp_path / "state").resume(["m.app"]) == []
    assert not (tmp_path / "state").exists()  # `apply` never creates a state directory for nothing


def test_durations() -> None:
    assert [parse_duration(t) for t in ("90s", "30m", "2h", "1h30m", "1d")] == [90, 1800, 7200, 5400, 86400]
    with pytest.raises(typer.BadParameter):
        parse_duration("soon")
    with pytest.raises(typer.BadParameter):
        parse_duration("10x")


def test_presence_says_whether_a_daemon_runs(tmp_path: Path) -> None:
    clock = Clock()
    presence = Presence(tmp_path, ["/maps"], clock=clock)
    assert running_daemon(tmp_path, clock=clock) is None
    presence.beat()
    found = running_daemon(tmp_path, clock=clock)
    assert found is not None
    assert found["paths"] == ["/maps"]
    clock.now += 60  # killed: no heartbeat for a minute
    assert running_daemon(tmp_path, clock=clock) is None
    presence.withdraw()
    assert not (tmp_path / "daemon.json").exists()


def test_a_release_by_the_cli_reaches_the_daemons_store(tmp_path: Path) -> None:
    daemon = HoldStore(tmp_path)
    daemon.hold(HeldBack("m.app", "h", "sha256:bad", "failed"), ("x:latest", "sha256:bad"))
    cli = HoldStore(tmp_path)
    assert cli.holds == daemon.holds  # the CLI reads what the daemon holds
    assert cli.release(["m.app", "m.other"]) == ["m.app"]
    assert daemon.holds == frozenset()
    assert daemon.rejected_images == frozenset()
    daemon.hold(HeldBack("m.web", "h", "sha256:2"))  # …and a later write does not bring m.app back
    assert [h["container"] for h in json.loads((tmp_path / "held.json").read_text())["holds"]] == ["m.web"]


def test_a_held_rollback_promises_no_retry() -> None:
    ctl = controller(HEALTHY)
    observed = synthesize(controller(HEALTHY.replace("'2'", "'1'")).desired).observed()
    action = plan_update(ctl.desired, observed).actions[0]
    rolled = ActionResult(action, Outcome.FAILED, "unhealthy", 1.0, ("x:latest", "sha256:1"))
    with capture_logs() as logs:
        assert ctl._failed(ALL, RunResult([rolled])) == Result()
    assert not [e for e in logs if "retry" in e["event"]]
    other = ActionResult(action, Outcome.FAILED, "engine said no", 1.0)
    assert ctl._failed(ALL, RunResult([rolled, other])) == Result(failed=True)


def test_no_valid_map_is_not_ready_and_the_gauge_says_which(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: b\napp: {image: x, bogus: 1}\n")
    ctl = controller("name: m\napp: {image: x}\n")
    ctl.maps = type(ctl.maps)()
    ctl.source.paths = [tmp_path]
    with capture_logs() as logs:
        ctl.map_health.update(ReloadResult(ctl.maps, [MapProblem("unknown key 'bogus'", file=str(broken))]), ctl.source)
    assert [e["event"] for e in logs] == ["map error: not managed (no good version of this file yet)"]
    assert ctl.ready() == (False, f"no valid map loaded (broken: {broken})")
    labels = {"client": "__default__", "file": str(broken)}
    assert ctl.metrics.registry.get_sample_value("reconciler_maps_broken", labels) == 1.0
    with capture_logs() as logs:
        ctl.map_health.update(ReloadResult(ctl.maps), ctl.source)
    assert [e["event"] for e in logs] == ["map OK again"]
    assert ctl.metrics.registry.get_sample_value("reconciler_maps_broken", labels) == 0.0


def test_no_map_files_is_not_ready(tmp_path: Path) -> None:
    ctl = controller("name: m\napp: {image: x}\n")
    ctl.source.paths = [tmp_path / "wrong"]
    ctl.settings.paths = [str(tmp_path / "wrong")]
    ctl.map_health.update(ReloadResult(ctl.maps), ctl.source)
    assert ctl.ready() == (False, f"no map files found in {tmp_path / 'wrong'}")


# --- the command line's edges ---------------------------------------------------------------------------


def test_global_options_work_after_the_command() -> None:
    from reconciler.cli import hoist_globals

    argv = ["plan", "x.yaml", "--log-level", "debug", "--json", "--log-json", "--state-dir=/s"]
    assert hoist_globals(argv) == ["--log-level", "debug", "--log-json", "--state-dir=/s", "plan", "x.yaml", "--json"]
    assert hoist_globals(["--log-level", "info", "run", "/maps"]) == ["--log-level", "info", "run", "/maps"]
    assert hoist_globals(["plan", "--", "--log-json"]) == ["plan", "--", "--log-json"]
    result = run("validate", "config/example.yaml", "--log-level", "warning")
    assert result.returncode == 0, result.stderr


def test_healthcheck_reads_the_run_setting_and_accepts_host_port(monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.cli import health_url

    monkeypatch.setenv("RECONCILER_HTTP", "0.0.0.0:18650")
    assert health_url(None, None) == "http://127.0.0.1:18650/healthz"  # a wildcard is asked on loopback
    assert health_url("127.0.0.1:18650", None) == "http://127.0.0.1:18650/healthz"
    assert health_url("http://h:1/readyz", None) == "http://h:1/readyz"
    monkeypatch.setenv("RECONCILER_HTTP", "127.0.0.1:1")  # nothing listens there
    result = run("healthcheck", "--timeout", "1", env={"RECONCILER_HTTP": "127.0.0.1:1"})
    assert result.returncode == 1
    assert "127.0.0.1:1" in result.stderr or "refused" in result.stderr


def test_a_missing_map_is_reported_as_such_and_status_rejects_targets() -> None:
    typo = run("plan", "ncshop.yam")
    assert typo.returncode == 1
    assert "ncshop.yam: no such map file or folder" in typo.stderr
    extra = run("status", "config/example.yaml", "web")
    assert extra.returncode == 2
    assert "takes map files or folders only, not web" in extra.stderr


def test_progress_lines_name_outcome_action_and_seconds(capsys: pytest.CaptureFixture[str]) -> None:
    import typer

    from reconciler import live

    ctl = controller(APP)
    observed = synthesize(controller("name: m\nweb: {image: x}\n").desired).observed()
    action = plan_update(ctl.desired, observed).actions[0]
    clock = Clock()
    show = live.Plain(typer.echo, clock).executor_hooks()["on_event"]
    show("start", action, None)
    clock.now += 1.25
    show("done", action, None)
    assert capsys.readouterr().out == "  ok       create    container    m.app (1.2s)\n"
    live.progress_for("quiet", typer.echo).executor_hooks()["on_event"]("done", action, None)
    assert capsys.readouterr().out == ""


# --- readable reasons ---------------------------------------------------------------------------------


def test_reasons_are_worded_for_a_person_and_json_keeps_the_values() -> None:
    from reconciler.plan.drift import Drift, Fix, Reason

    cascade = Drift(Reason.DEPENDENCY, "m.db", "follows its recreation", "stale", Fix.RECREATE)
    assert cascade.describe() == "recreated because m.db was recreated"
    restart = Drift(Reason.DEPENDENCY, "m.db", "follows its recreation", "stale", Fix.RESTART)
    assert restart.describe() == "restarted because m.db was recreated"
    leftover = Drift(Reason.MISSING, "temporary", "absent", "left by an interrupted recreate", Fix.CREATE)
    assert leftover.describe() == "leftover replacement of an interrupted recreate"
    orphan = Drift(Reason.MISSING, "map", "absent", "present", Fix.CREATE)
    assert orphan.describe() == "config removed from the map"
    check = Drift(
        Reason.HEALTHCHECK,
        "healthcheck",
        {"Test": ["CMD", "true"], "Interval": 10_000_000_000, "Retries": 3},
        {"Test": ["CMD", "true"], "Interval": 120_000_000_000},
        Fix.RECREATE,
    )
    assert (
        check.describe()
        == "healthcheck: test ['CMD', 'true'], interval 2m → test ['CMD', 'true'], interval 10s, retries 3"
    )
    assert check.as_dict()["wanted"]["Interval"] == 10_000_000_000  # machine values stay


def test_an_image_reference_change_is_named_not_a_hash() -> None:
    from reconciler.plan.drift import ContainerContext, container_drift

    before = controller("name: m\napp: {image: 'x:1'}\n")
    after = controller("name: m\napp: {image: 'x:2'}\n")
    observed = synthesize(before.desired).observed()
    found = observed.containers["m.app"]
    drifts = container_drift(after.desired.containers["m.app"], found, ContainerContext(observed))
    assert [d.describe() for d in drifts] == ["image: x:1 → x:2"]


def test_a_replacement_carries_no_label_that_outlives_it() -> None:
    from reconciler.executor.translate import container_config

    spec = controller(APP).desired.containers["m.app"]
    assert not [k for k in container_config(spec)["labels"] if "temporary" in k]


def test_the_python_api_leaves_logging_to_its_host_program() -> None:
    code = (
        "import logging; logging.basicConfig(level=logging.WARNING)\n"
        "import reconciler.api\n"
        "from reconciler.logs import get_logger\n"
        "get_logger('reconciler.x').info('hello-info')\n"
        "get_logger('reconciler.x').warning('hello-warning')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False, env=dict(os.environ)
    )
    assert result.returncode == 0, result.stderr
    assert "hello-info" not in result.stderr + result.stdout  # the host's level applies
    assert "WARNING:reconciler.x:event='hello-warning'" in result.stderr  # through the host's handler


# --- logs: one line per event ---------------------------------------------------------------------------


def test_a_crash_is_logged_once_however_often_it_is_planned() -> None:
    from reconciler.daemon.crashloop import CrashLoops
    from tests.unit.test_crashloop import T0, _died

    now = [T0 + 0.5]
    loops = CrashLoops(threshold=10, backoff_max=60, clock=lambda: now[0])
    for crash in (1, 2):  # a second crash: the first restart waited 1 s, this one 2 s
        finished = T0 + 100 * crash
        now[0] = finished + 0.1
        plan, observed = _died(ran=1, finished=finished)
        with capture_logs() as logs:
            loops.hold(plan, observed)
            loops.hold(plan, observed)  # the reconcile plans again under its locks
        assert [e["event"] for e in logs] == ["crash loop: restart held back"]


def test_a_container_removed_under_an_action_is_a_warning_not_an_error() -> None:
    from reconciler.executor.apply import Executor
    from reconciler.executor.errors import Conflict

    ctl = controller(APP)
    observed = synthesize(controller("name: m\nweb: {image: x}\n").desired).observed()
    action = plan_update(ctl.desired, observed).actions[0]

    class Racing(Executor):
        def perform(self, action: object) -> None:
            raise Conflict("container is marked for removal and cannot be started")

    with capture_logs() as logs:
        Racing(FakeEngine())._run_one(action)  # the engine is never reached
    assert [(e["event"], e["log_level"]) for e in logs] == [("action failed", "warning")]


# --- ports ---------------------------------------------------------------------------------------------


def test_a_host_port_held_by_another_container_is_blocked_naming_it() -> None:
    from dataclasses import replace

    ports = "name: m\nweb: {image: x}\napp: {image: x, exposes: {8080: [18650, 127.0.0.1]}}\n"
    ctl = controller(ports)
    observed = synthesize(controller("name: m\nweb: {image: x}\n").desired).observed()
    assert [a.resource.name for a in plan_update(ctl.desired, observed).actions] == ["m.app"]
    for holder_ip in ("127.0.0.1", "0.0.0.0"):  # the same address, or every address
        taken = replace(observed, published={(holder_ip, "18650", "tcp"): "someone"})
        plan = plan_update(ctl.desired, taken)
        assert not plan.actions
        assert [b.message for b in plan.blocked] == ["host port 127.0.0.1:18650/tcp is already published by 'someone'"]
    elsewhere = replace(observed, published={("10.0.0.1", "18650", "tcp"): "someone", ("", "18650", "udp"): "x"})
    assert plan_update(ctl.desired, elsewhere).actions  # another address, another protocol: free
    itself = replace(observed, published={("127.0.0.1", "18650", "tcp"): "m.app"})
    assert not plan_update(ctl.desired, itself).blocked  # its own old container (a recreate stops it first)


def test_a_created_container_that_cannot_start_is_removed() -> None:
    from reconciler.executor.apply import Executor
    from reconciler.executor.errors import PermanentEngineError
    from tests.unit.test_executor import FailingCreates

    class PortTaken(FailingCreates):
        removed: list[str] = []

        def start(self, ident: str) -> None:
            raise PermanentEngineError("driver failed programming external connectivity: port is allocated", 500)

        def remove_container(self, ident: str, *, force: bool = False, volumes: bool = False) -> None:
            self.removed.append(ident)

    ctl = controller(APP)
    observed = synthesize(controller("name: m\nweb: {image: x}\n").desired).observed()
    engine = PortTaken(fail=set())
    result = Executor(engine).run(plan_update(ctl.desired, observed))
    (failed,) = result.failed
    assert "could not start, and the container just created was removed" in (failed.error or "")
    created = engine.find("m.app")  # this fake's remove only records
    assert created is not None
    assert engine.removed == [created["Id"]]  # by the id it was created with, not by name


def test_help_fits_80_columns_without_cutting_flag_names() -> None:
    for command in ("plan", "apply", "down", "run", "pause"):
        shown = run(command, "--help", env={"COLUMNS": "80"})
        assert shown.returncode == 0, shown.stderr
        assert "…" not in shown.stdout
        assert "<bool>" not in shown.stdout
        assert max(map(len, shown.stdout.splitlines())) <= 80
    assert "--detailed-exitcode" in run("plan", "--help", env={"COLUMNS": "80"}).stdout


def test_compose_habits_get_hints_to_where_they_belong() -> None:
    from reconciler.model import MapError, load_map_text

    text = "name: c\napp:\n  image: x\n  command: [sh]\n  ports: ['80:80']\n  environment: {A: b}\n"
    with pytest.raises(MapError) as caught:
        load_map_text(text, "c.yaml")
    messages = [p.message for p in caught.value.problems]
    assert any("'command'" in m and "create_options: {command:" in m for m in messages), messages
    assert any("'ports'" in m and "exposes:" in m for m in messages), messages
    assert any("'environment'" in m and "create_options: {environment:" in m for m in messages), messages
    assert not any("exec_commands" in m for m in messages)


def test_a_hold_is_logged_once_not_on_every_reconcile() -> None:
    from reconciler.plan.planner import Note, Plan
    from reconciler.plan.resources import Kind, ResourceId

    ctl = controller(APP)
    plan = Plan(notes=(Note(ResourceId(Kind.CONTAINER, "m.app"), "held back: failed", held=True),))
    with capture_logs() as logs:
        ctl.outcomes.report(plan)
        ctl.outcomes.report(plan)
    assert [e["event"] for e in logs] == ["held back"]


def test_what_only_paused_containers_use_is_left_alone_too() -> None:
    from reconciler.daemon.intents import Pause, leave_paused

    text = (
        "name: m\nvolumes: {data: /data}\nnetworks: {back: {}}\n"
        "app: {image: x, attaches: data, user: '1000', networks: back}\n"
        "web: {image: x, networks: back}\n"
    )
    ctl = controller(text)
    observed = synthesize(controller("name: m\nother: {image: x}\n").desired).observed()  # after `down`
    plan = plan_update(ctl.desired, observed)
    kinds = {a.resource.kind.value for a in plan.actions}
    assert {"network", "volume", "container"} <= kinds
    only_app = leave_paused(plan, ctl.desired, {"m.app": Pause("m.app", 0.0)})
    left = {a.resource.name for a in only_app.actions}
    assert "m.app" not in left
    assert "m.data" not in left  # its volume (and the volume's init) wait with it
    assert {"m.web", "m.back"} <= left  # the network is still needed by web
    assert [n.resource.name for n in only_app.notes if n.message.startswith("paused")] == ["m.app"]
    both = leave_paused(plan, ctl.desired, {n: Pause(n, 0.0) for n in ("m.app", "m.web")})
    assert not [a for a in both.actions if a.resource.kind.value != "image"]


def test_a_pause_that_cannot_be_recorded_refuses_to_act(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    refused = run("--state-dir", str(blocker / "state"), "pause", "config/example.yaml")
    assert refused.returncode == 1
    assert "cannot tell the daemon" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_the_status_line_never_sends_a_person_to_apply_for_what_apply_cannot_do() -> None:
    from reconciler.cli import _status_line

    def rows(*actions: str | None) -> list[dict[str, object]]:
        return [{"name": f"m.{i}", "action": a} for i, a in enumerate(actions)]

    assert _status_line(rows(None, None), True) == "in sync"
    assert _status_line(rows(None, "recreate"), False) == "drift: run `reconciler apply` to fix"
    held = _status_line(rows("held", None), False)
    assert held == "not in sync: 1 held back or paused: `reconciler release` / `reconciler resume` when ready"
    blocked = _status_line(rows("blocked"), False)
    assert blocked == "not in sync: 1 blocked: apply cannot fix them (see their rows)"
    both = _status_line(rows("create", "paused"), False)
    assert both.startswith("drift: run `reconciler apply` to fix (1 held back or paused")
