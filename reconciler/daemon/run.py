"""`reconciler run`: the process around the controller — start-up order, signals, shutdown.

Start-up: load the maps (a broken file is reported and skipped), open the status server, tell systemd
READY (within a second of starting), then connect to the engine — retrying while it is not there — and
start the event stream, the map watcher and the workers. The event stream's first connect relists and
queues a full reconcile.

Signals: SIGHUP reloads the maps (RELOADING=1 … READY=1). The first SIGTERM or SIGINT stops taking new work:
actions not yet begun are skipped, a health gate in progress gives up and rolls its recreate back (the old
container runs again), other in-flight actions finish — all within `stop_timeout` unless an engine call
itself takes longer (a container's own stop timeout) — then it exits 0; a second one exits at once. The
systemd unit's TimeoutStopSec is `stop_timeout` plus a margin, so systemd never kills the daemon mid-step.

Engine calls retry transient errors for up to `engine_retry` seconds (the one retry loop in
`executor.errors`, bounded by time); only the first ping does not, so that the daemon is ready within a
second even when the engine is not there.

Several engines (`clients_file`, docker-map's clients): one `_ClientRun` per client — its own connect loop
(an engine that is not there is retried with backoff while the others carry on), controller, cache and
event stream with its reconnect loop. The daemon keeps every client the file defines, and `__default__`
when the maps place containers on it; `client` (`--client`, repeatable) restricts that to some, which is
the per-host mode: the same maps everywhere, each host's daemon keeping its own client. /healthz and
/readyz combine the clients and name the one that is not well.

Unattended (DESIGN §7): one `Alerts` sender for the whole daemon, given to every controller (see alerts);
with `git`, a `GitSync` (see gitsync) instead of the map watcher: the maps are read from the folder of the
commit in force, and every client's source switches to a new good commit's folder.

Idle, the daemon sleeps. Its loop (heartbeat file, pauses, systemd's watchdog, the engine-lost alert) wakes
for its nearest deadline, at most every BEAT_EVERY seconds; a pause made or ended by the command line wakes
it through the watcher, which watches every client's pause file beside the map files (also with `git`).
Where a pause file's folder cannot be made, the loop looks every second instead.
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType
from typing import Any

from reconciler.backoff import Backoff
from reconciler.executor.clients import connect_client
from reconciler.executor.defaults import POOL_SIZE
from reconciler.executor.engine import DockerEngine
from reconciler.executor.errors import EngineError
from reconciler.logs import get_logger
from reconciler.model.clients import (
    DEFAULT_CLIENT,
    ClientConfig,
    ClientsError,
    clients_in_use,
    default_clients,
    load_clients_file,
)
from reconciler.plan.resources import DesiredState
from reconciler.watch.events import EventWatcher
from reconciler.watch.git import GitRepo, redact
from reconciler.watch.maps import MapSource, MapWatcher

from .alerts import Alerts
from .board import Board, View, combine, status
from .controller import Controller, holds_dir
from .gitsync import GitSync
from .http_auth import HttpConfigError, required_token, resolve_token
from .intents import BEAT_EVERY, PauseFile, Presence
from .metrics import Metrics
from .notify import Notifier
from .server import HttpLimits, StatusServer
from .settings import Settings

log = get_logger(__name__)
CONNECT_BACKOFF = Backoff(0.5, 10.0)  # an engine that is not there (yet): look again, less and less often
ENGINE_ATTEMPTS = 100  # bounded by `engine_retry` seconds long before this


class _ClientRun:
    """One client of the daemon: connect (retrying), then its controller and event stream."""

    def __init__(self, daemon: Daemon, client: ClientConfig, clients: Mapping[str, ClientConfig] | None) -> None:
        self.daemon, self.client, self.clients = daemon, client, clients
        self.controller: Controller | None = None
        self.engine: DockerEngine | None = None
        self.events: EventWatcher | None = None
        self.log = log.bind(client=client.name) if clients is not None else log
        self.thread = threading.Thread(target=self._run, name=f"client-{client.name}", daemon=True)
        self._told_lost = False

    def _run(self) -> None:
        engine = self._connect()
        if engine is None:
            return  # asked to stop before the engine came
        d = self.daemon
        source = MapSource(d.source.paths, d.settings.map_limits)  # with git: the commit in force
        metrics = d.metrics.client(self.client.name)
        controller = Controller(
            d.settings,
            engine,
            source,
            metrics=metrics,
            notifier=d.notifier,
            client=self.client,
            clients=self.clients,
            alerts=d.alerts,
        )
        controller.load_maps()
        maps, containers = sorted(controller.maps.maps), len(controller.desired.containers)
        if maps:
            self.log.info("ready", maps=maps, containers=containers)
        elif d.git is not None and d.git.applied is None:
            self.log.info("connected; waiting for a good commit of the git repository")
        else:
            self.log.error("no valid map: managing nothing (not ready)", reason=controller.ready()[1])
        self.events = EventWatcher(
            engine.events,
            controller.on_event,
            controller.on_connect,
            controller.on_disconnect,
            client=self.client.name if self.clients is not None else None,
        )
        self.engine, self.controller = engine, controller
        if source.paths != d.source.paths:  # a new git commit came while this client connected
            self.use_maps(d.source.paths)
        d.client_ready(self.client.name, self.status())
        self.events.start()
        controller.start_workers()

    def _connect(self) -> DockerEngine | None:
        failures = 0
        announced = False
        terminate = self.daemon.terminate
        while not terminate.is_set():
            try:
                engine = self._engine()
                engine.ping()
                # Reachable: from now on a hiccup of the engine is retried, not a failed step.
                engine.attempts, engine.retry_for = ENGINE_ATTEMPTS, self.daemon.settings.engine_retry
                if self._told_lost:
                    self.daemon.alerts.add("engine-back", self._engine_name, "reachable")
                return engine
            except EngineError as exc:
                if not announced:
                    # Up, but without an engine: say so (systemd and /healthz), and keep trying.
                    self.daemon.notifier.ready("waiting for the Docker engine")
                    announced = True
                delay = CONNECT_BACKOFF.delay(failures)
                failures += 1
                self.log.warning("engine unreachable, retrying", error=str(exc), retry_in=delay)
                lost = time.monotonic() - self.daemon.started
                if lost > self.daemon.settings.engine_grace and not self._told_lost:
                    self._told_lost = True
                    text = f"unreachable for {lost:.0f}s since the daemon started"
                    self.daemon.alerts.add("engine-lost", self._engine_name, text)
                terminate.wait(delay)
        return None

    @property
    def _engine_name(self) -> str:
        return f"engine {self.client.name}" if self.clients is not None else "engine"

    def use_maps(self, paths: list[Path]) -> None:
        """Maps from git: read this client's maps from the new commit's folder, and reconcile."""
        controller = self.controller
        if controller is not None:
            controller.source.use(paths)
            controller.maps_changed()

    def _engine(self) -> DockerEngine:
        pool = self.daemon.pool_size()
        if self.clients is None:
            return DockerEngine(pool_size=pool, attempts=1)
        engine = connect_client(self.client, pool_size=pool)
        engine.attempts = 1
        return engine

    def stop(self, timeout: float) -> bool:
        controller = self.controller
        if controller is None:
            return True
        finished = controller.stop(timeout)
        if self.events is not None:
            self.events.stop()
        if self.engine is not None:
            self.engine.close()
        if not finished:
            self.log.error(
                "in-flight work did not finish within the stop timeout; the next start converges it",
                in_flight=controller.progress.in_flight(),
                stop_timeout=self.daemon.settings.stop_timeout,
            )
        return finished

    def status(self) -> str:
        """systemd's STATUS= for this client: what is managed, or why nothing is."""
        controller = self.controller
        if controller is None:
            return "waiting for the Docker engine"
        ready, why = controller.ready()
        if not ready and not controller.maps.maps:
            return f"not ready: {why}"
        return f"managing {len(controller.desired.containers)} containers"

    def health(self, grace: float, waited: float) -> tuple[bool, str]:
        if self.controller is None:
            if waited > grace:
                return False, f"engine unreachable for {waited:.0f}s"
            return True, "starting: waiting for the engine"
        healthy, why = self.controller.health()
        if healthy and not self.controller.maps.maps:
            return True, f"ok, but managing nothing: {self.controller.ready()[1]}"  # alive; /readyz fails
        return healthy, why

    def ready(self) -> tuple[bool, str]:
        if self.controller is None:
            return False, "waiting for the engine"
        return self.controller.ready()


class Daemon:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.notifier = Notifier()
        self.metrics = Metrics()
        self.alerts = Alerts(settings.notify, metrics=self.metrics, interval=settings.notify_interval)
        self.source = MapSource([] if settings.git else settings.paths, settings.map_limits)
        self.git = self._git_sync() if settings.git else None
        self.wake = threading.Event()
        self.reload_requested = threading.Event()
        self.terminate = threading.Event()
        self._signals = 0
        self.started = time.monotonic()
        self.runs: list[_ClientRun] = []
        self.grouped = False  # a clients file: health messages name the client
        self.server: StatusServer | None = None

    def _git_sync(self) -> GitSync:
        """Maps from git (see gitsync): the repository lives in the state directory."""
        settings = self.settings
        assert settings.git is not None
        home = holds_dir(settings)
        directory = (home if home is not None else Path(tempfile.mkdtemp(prefix="reconciler-"))) / "git"
        repo = GitRepo(
            settings.git, directory, branch=settings.git_branch, path=settings.git_path, timeout=settings.git_timeout
        )
        secret = settings.git_secret_file.read_bytes().strip() if settings.git_secret_file else None
        sync = GitSync(
            repo,
            self.source,
            interval=settings.git_interval,
            secret=secret or None,
            on_maps=self._git_applied,
            alerts=self.alerts,
            metrics=self.metrics,
        )
        sync.restore()
        return sync

    def _git_applied(self) -> None:
        for one in self.runs:
            try:
                one.use_maps(self.source.paths)
            except Exception as exc:  # one client's trouble must never take the daemon down
                one.log.exception("loading the maps of a new commit failed", error=str(exc))

    @property
    def controller(self) -> Controller | None:
        """The first client's controller (the only one with one engine)."""
        return self.runs[0].controller if self.runs else None

    # --- signals -------------------------------------------------------------------------------------

    def _on_term(self, signum: int, _frame: FrameType | None) -> None:
        self._signals += 1
        if self._signals > 1:
            os._exit(1)  # the second one: at once
        self.terminate.set()
        self.wake.set()

    def _on_hup(self, _signum: int, _frame: FrameType | None) -> None:
        self.reload_requested.set()
        self.wake.set()

    def install_signals(self) -> None:
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, self._on_term)
        signal.signal(signal.SIGHUP, self._on_hup)

    # --- life ----------------------------------------------------------------------------------------

    def run(self) -> int:
        self.install_signals()
        self.started = time.monotonic()
        self.alerts.start()
        try:
            chosen, clients = self._clients()
        except (ClientsError, ValueError) as exc:
            log.error("cannot use the clients file", error=str(exc), clients_file=str(self.settings.clients_file))
            return 2
        try:
            self._serve()
        except (HttpConfigError, OSError) as exc:
            log.error("cannot open the status server", error=str(exc), address=self.settings.http)
            return 2
        self.grouped = clients is not None
        self.runs = [_ClientRun(self, client, clients) for client in chosen]
        if self.git is not None:
            self.git.start()  # fetching while the engines are looked for
        for one in self.runs:
            one.thread.start()
        watcher = self._watcher()
        watcher.start()
        git = self.git
        presence = Presence(
            holds_dir(self.settings),
            self.settings.paths,
            git=(lambda: {"url": redact(self.settings.git or ""), "commit": git.applied}) if git is not None else None,
        )
        self._loop(presence, pauses_watched=watcher.watching_also)
        log.info("stopping")
        presence.withdraw()
        self.notifier.stopping()
        finished = self._stop_all()
        watcher.stop()
        if self.git is not None:
            self.git.stop()
        if self.server is not None:
            self.server.stop()
        self.alerts.stop()
        log.info("stopped", finished_in_flight=finished)
        if not finished:
            # Actions still running past --stop-timeout: their threads would keep the interpreter alive.
            os._exit(0)
        return 0

    def _watcher(self) -> MapWatcher:
        """The map files (read from git instead, they have none) and every client's pause file: a pause made
        or ended by the command line wakes the loop, which needs no timer for it then."""
        paths = [PauseFile(holds_dir(self.settings, one.client.name)).path for one in self.runs]
        pause_files = [path for path in paths if path is not None]
        for path in pause_files:
            with contextlib.suppress(OSError):  # not writable: the loop looks every second instead
                path.parent.mkdir(parents=True, exist_ok=True)
        return MapWatcher(
            self.source, self._each_controller(Controller.maps_changed), also=dict.fromkeys(pause_files, self.wake.set)
        )

    def _loop(self, presence: Presence, *, pauses_watched: bool) -> None:
        while not self.terminate.is_set():
            presence.beat()
            self._each_controller(Controller.watch_pauses)()
            self.wake.wait(self._idle_wait(pauses_watched))
            self.wake.clear()
            self._each_controller(Controller.heartbeat)()
            if self.reload_requested.is_set():
                self.reload_requested.clear()
                self.notifier.reloading()
                log.info("reloading maps (SIGHUP)")
                self._each_controller(Controller.maps_changed)()
                self._each_controller(_say_reloaded)()
                self.notifier.ready(self._status())

    def _idle_wait(self, pauses_watched: bool) -> float:
        """How long the loop sleeps: until its nearest deadline (a pause's end, the watchdog's ping, the
        engine-lost alert: each controller's `due_in`), at most the heartbeat's BEAT_EVERY; a second while a
        client is still connecting (it has no controller to ask yet) or the pause files go unwatched."""
        if not pauses_watched or any(one.controller is None for one in self.runs):
            return 1.0
        dues = [one.controller.due_in() for one in self.runs if one.controller is not None]
        return max(0.05, min([BEAT_EVERY, *(d for d in dues if d is not None)]))

    def _each_controller(self, method: Callable[[Controller], None]) -> Callable[[], None]:
        def call() -> None:
            for one in self.runs:
                if one.controller is not None:
                    try:
                        method(one.controller)
                    except Exception as exc:  # one client's trouble must never take the daemon down
                        one.log.exception("handling the maps failed", error=str(exc))

        return call

    def _stop_all(self) -> bool:
        """Stop every client within one `stop_timeout` (they stop in parallel)."""
        results: dict[str, bool] = {}
        threads = [
            threading.Thread(target=lambda o=one: results.update({o.client.name: o.stop(self.settings.stop_timeout)}))
            for one in self.runs
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(self.settings.stop_timeout + 5)
        return len(results) == len(self.runs) and all(results.values())

    def _clients(self) -> tuple[list[ClientConfig], dict[str, ClientConfig] | None]:
        """The clients this daemon keeps (see the module docstring), and the clients file (None: none)."""
        only = self.settings.client
        if self.settings.clients_file is None:
            if any(name != DEFAULT_CLIENT for name in only):
                raise ValueError(f"--client {', '.join(only)}: no clients file (clients_file) defines it")
            return list(default_clients().values()), None
        clients = load_clients_file(self.settings.clients_file)
        names = [n for n in clients if n != DEFAULT_CLIENT]
        if DEFAULT_CLIENT in clients_in_use(self.source.reload().maps, clients) or not names:
            names.append(DEFAULT_CLIENT)
        for name in only:
            if name not in clients:
                raise ValueError(f"--client {name}: not defined in {self.settings.clients_file}")
        return [clients[n] for n in sorted(names) if not only or n in only], clients

    def client_ready(self, name: str, status: str) -> None:
        where = f" on client {name}" if self.grouped else ""
        self.notifier.ready(f"{status}{where}")

    def _status(self) -> str:
        """systemd's STATUS= after a reload: each client's."""
        if not self.grouped:
            return self.runs[0].status() if self.runs else "waiting for the Docker engine"
        return "; ".join(f"client {o.client.name}: {o.status()}" for o in self.runs)

    def pool_size(self) -> int:
        """One connection per action that may run at once (every worker runs a wave), plus events and reads."""
        return max(POOL_SIZE, self.settings.workers * self.settings.concurrency + 2)

    def health(self) -> tuple[bool, str]:
        waited = time.monotonic() - self.started
        return self._combined([(o.client.name, o.health(self.settings.engine_grace, waited)) for o in self.runs])

    def ready(self) -> tuple[bool, str]:
        if self.git is not None and self.git.applied is None:
            return False, "waiting for a good commit of the git repository"
        if not self.runs:
            return False, "waiting for the engine"
        ok, text = self._combined([(o.client.name, o.ready()) for o in self.runs])
        return ok, text + (f" (git {self.git.applied})" if self.git is not None else "")

    def _combined(self, answers: list[tuple[str, tuple[bool, str]]]) -> tuple[bool, str]:
        """All well: the first answer (one engine: as it always was); else which client is not, and why."""
        if not self.grouped:
            return answers[0][1] if answers else (True, "starting")
        bad = [f"client {name}: {message}" for name, (ok, message) in answers if not ok]
        if bad:
            return False, "; ".join(bad)
        return True, "; ".join(f"client {name}: {message}" for name, (_ok, message) in answers)

    def status(self) -> dict[str, Any]:
        """The status page's JSON: each client's (a client whose engine has not answered yet says only
        that), combined."""
        documents = []
        for one in self.runs:
            if one.controller is not None:
                documents.append(one.controller.status())
                continue
            down = [{"name": one.client.name, "up": False}]
            waiting = f"client {one.client.name}: waiting for the engine" if self.grouped else "waiting for the engine"
            documents.append(
                status(View(DesiredState(), None, None, waiting, {}, (True, ""), (False, ""), down), Board())
            )
        return combine(documents, self.health(), self.ready())

    def _serve(self) -> None:
        address = self.settings.http_address
        if address is None:
            return
        settings = self.settings
        # Before binding: a non-loopback address without a token is refused (DESIGN §7).
        token = required_token(address[0], resolve_token(settings.http_token, settings.http_token_file))
        limits = HttpLimits(
            max_connections=settings.http_max_connections,
            header_timeout=settings.http_header_timeout,
            idle_timeout=settings.http_idle_timeout,
            body_timeout=settings.http_body_timeout,
            body_limit=settings.http_body_limit,
        )
        self.server = StatusServer(
            *address,
            self.metrics,
            self.health,
            self.ready,
            token=token,
            limits=limits,
            status=self.status,
            hooks={"/hooks/git": self.git.webhook} if self.git is not None else None,
        )
        self.server.start()
        host, port = self.server.address[0], self.server.address[1]
        log.info("status server listening", address=f"{host!s}:{port}", token_required=token is not None)


def run(settings: Settings) -> int:
    started = time.monotonic()
    daemon = Daemon(settings)
    code = daemon.run()
    log.debug("daemon exited", seconds=round(time.monotonic() - started, 1))
    return code


def _say_reloaded(controller: Controller) -> None:
    controller.log.info("maps reloaded", maps=sorted(controller.maps.maps), broken=controller.broken_maps)
