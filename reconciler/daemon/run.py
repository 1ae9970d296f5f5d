"""`reconciler run`: the process around the controller — start-up order, signals, shutdown.

Start-up: load the maps (a broken file is reported and skipped), open the status server, tell systemd
READY (within a second of starting), then connect to the engine — retrying while it is not there — and
start the event stream, the map watcher and the workers. The event stream's first connect relists and
queues a full reconcile.

Signals: SIGHUP reloads the maps (RELOADING=1 … READY=1). The first SIGTERM or SIGINT stops taking new work:
waves not yet begun are skipped, a health gate in progress gives up and rolls its recreate back (the old
container runs again), other in-flight actions finish — all within `stop_timeout` unless an engine call
itself takes longer (a container's own stop timeout) — then it exits 0; a second one exits at once. The
systemd unit's TimeoutStopSec is `stop_timeout` plus a margin, so systemd never kills the daemon mid-step.

Engine calls retry transient errors for up to `engine_retry` seconds (the one retry loop in
`executor.errors`, bounded by time); only the first ping does not, so that the daemon is ready within a
second even when the engine is not there.
"""

from __future__ import annotations

import os
import signal
import tempfile
import threading
import time
from pathlib import Path
from types import FrameType

from reconciler.executor.engine import DockerEngine
from reconciler.executor.errors import EngineError
from reconciler.logs import get_logger
from reconciler.watch.events import EventWatcher
from reconciler.watch.git import GitRepo
from reconciler.watch.maps import MapSource, MapWatcher

from .alerts import Alerts
from .controller import Controller, holds_dir
from .gitsync import GitSync
from .http_auth import HttpConfigError, required_token, resolve_token
from .metrics import Metrics
from .notify import Notifier
from .server import HttpLimits, StatusServer
from .settings import Settings

log = get_logger(__name__)
ENGINE_ATTEMPTS = 100  # bounded by `engine_retry` seconds long before this


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
        self._told_lost = False
        self.started = time.monotonic()
        self.controller: Controller | None = None
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
            on_maps=lambda: self.controller.maps_changed() if self.controller is not None else None,
            alerts=self.alerts,
            metrics=self.metrics,
        )
        sync.restore()
        return sync

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
            self._serve()
        except (HttpConfigError, OSError) as exc:
            log.error("cannot open the status server", error=str(exc), address=self.settings.http)
            return 2
        if self.git is not None:
            self.git.start()  # fetching while the engine is looked for
        engine = self._connect()
        if engine is None:
            return 0  # asked to stop before the engine came
        controller = Controller(
            self.settings, engine, self.source, metrics=self.metrics, notifier=self.notifier, alerts=self.alerts
        )
        self.controller = controller
        controller.load_maps()
        self.notifier.ready(f"managing {len(controller.desired.containers)} containers")
        log.info("ready", maps=sorted(controller.maps.maps), containers=len(controller.desired.containers))
        events = EventWatcher(engine.events, controller.on_event, controller.on_connect, controller.on_disconnect)
        watcher = MapWatcher(self.source, controller.maps_changed) if self.git is None else None
        events.start()
        if watcher is not None:
            watcher.start()
        controller.start_workers()
        while not self.terminate.is_set():
            self.wake.wait(1.0)
            self.wake.clear()
            controller.heartbeat()
            if self.reload_requested.is_set():
                self.reload_requested.clear()
                self.notifier.reloading()
                log.info("reloading maps (SIGHUP)")
                try:
                    controller.maps_changed()
                except Exception as exc:  # a reload must never take the daemon down
                    log.exception("reloading the maps failed", error=str(exc))
                self.notifier.ready("reloaded")
        log.info("stopping")
        self.notifier.stopping()
        finished = controller.stop(self.settings.stop_timeout)
        if watcher is not None:
            watcher.stop()
        if self.git is not None:
            self.git.stop()
        events.stop()
        if self.server is not None:
            self.server.stop()
        engine.close()
        self.alerts.stop()
        log.info("stopped", finished_in_flight=finished)
        if not finished:
            log.error(
                "in-flight work did not finish within the stop timeout; the next start converges it",
                in_flight=controller.progress.in_flight(),
                stop_timeout=self.settings.stop_timeout,
            )
            # Actions still running past --stop-timeout: their threads would keep the interpreter alive.
            os._exit(0)
        return 0

    def _connect(self) -> DockerEngine | None:
        delay = 0.5
        announced = False
        while not self.terminate.is_set():
            try:
                engine = DockerEngine(pool_size=self._pool_size(), attempts=1)
                engine.ping()
                # Reachable: from now on a hiccup of the engine is retried, not a failed step.
                engine.attempts, engine.retry_for = ENGINE_ATTEMPTS, self.settings.engine_retry
                if self._told_lost:
                    self.alerts.add("engine-back", "engine", "reachable")
                return engine
            except EngineError as exc:
                if not announced:
                    # Up, but without an engine: say so (systemd and /healthz), and keep trying.
                    self.notifier.ready("waiting for the Docker engine")
                    announced = True
                log.warning("engine unreachable, retrying", error=str(exc), retry_in=delay)
                lost = time.monotonic() - self.started
                if lost > self.settings.engine_grace and not self._told_lost:
                    self._told_lost = True
                    self.alerts.add("engine-lost", "engine", f"unreachable for {lost:.0f}s since the daemon started")
                self.terminate.wait(delay)
                delay = min(delay * 2, 10.0)
        return None

    def _pool_size(self) -> int:
        """One connection per action that may run at once (every worker runs a wave), plus events and reads."""
        return max(10, self.settings.workers * self.settings.concurrency + 2)

    def health(self) -> tuple[bool, str]:
        if self.controller is None:
            waited = time.monotonic() - self.started
            if waited > self.settings.engine_grace:
                return False, f"engine unreachable for {waited:.0f}s"
            return True, "starting: waiting for the engine"
        return self.controller.health()

    def ready(self) -> tuple[bool, str]:
        if self.git is not None and self.git.applied is None:
            return False, "waiting for a good commit of the git repository"
        if self.controller is None:
            return False, "waiting for the engine"
        ok, text = self.controller.ready()
        return ok, text + (f" (git {self.git.applied})" if self.git is not None else "")

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
            address[0],
            address[1],
            self.metrics,
            self.health,
            self.ready,
            token=token,
            limits=limits,
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
