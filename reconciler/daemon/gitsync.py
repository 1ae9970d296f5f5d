"""Maps from git in the daemon: fetch on a timer and on a signed webhook; a bad commit keeps the last good.

`GitSync` owns a `GitRepo` (watch/git.py) in `<state_dir>/git`. Every `git_interval` seconds — and at
once when `POST /hooks/git` arrives signed — it fetches; a new commit is checked out into a folder of its
own and loaded there, apart from the maps in force. Only when every map file of it loads (and there is at
least one) does the daemon's `MapSource` switch to that folder and reconcile everything; otherwise the
commit is reported (logged, counted, notified with file:line) and the last good commit stays in force.
The commit in force is kept in `<state_dir>/git/applied`, so a restart starts from it before fetching,
and is shown by /readyz and the metric `reconciler_git_commit{commit}`.

The webhook is authenticated by its signature, not the bearer token: `X-Hub-Signature-256:
sha256=<hex HMAC-SHA256 of the body with the secret of --git-secret-file>`, compared in constant time.
No signature → 401, a wrong one (or no secret configured) → 403; both are counted and change nothing.
The handler only wakes the fetch thread: it never waits for git.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

from reconciler.logs import get_logger
from reconciler.watch.git import GitError, GitRepo
from reconciler.watch.maps import MapSource

from .alerts import Alerts
from .metrics import Metrics

log = get_logger(__name__)
SIGNATURE_HEADER = "x-hub-signature-256"


def signature_status(secret: bytes | None, body: bytes, header: str | None) -> int:
    """200 when `header` is the body's signature with `secret`; 401 when there is none; 403 when wrong."""
    if not header:
        return 401
    if secret is None:
        return 403
    wanted = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    return 200 if hmac.compare_digest(wanted.encode(), header.strip().encode(errors="replace")) else 403


class GitSync:
    def __init__(
        self,
        repo: GitRepo,
        source: MapSource,
        *,
        interval: float,
        secret: bytes | None,
        on_maps: Callable[[], None],
        alerts: Alerts,
        metrics: Metrics,
    ) -> None:
        self.repo = repo
        self.source = source
        self.interval = interval
        self.secret = secret
        self.on_maps = on_maps
        self.alerts = alerts
        self.metrics = metrics
        self.applied: str | None = None
        self.rejected: str | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._record = repo.directory / "applied"

    # --- start-up ------------------------------------------------------------------------------------

    def restore(self) -> None:
        """Start from the commit in force before a restart (its folder is still there), if any."""
        try:
            commit = self._record.read_text().strip()
        except OSError:
            return
        folder = self.repo.commits / commit
        if commit and folder.is_dir():
            self.source.use([folder])
            self._applied(commit)
            log.info("maps from git: starting from the commit in force before", commit=commit[:12])

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="git", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sync()
            except Exception as exc:  # the next interval tries again
                log.exception("git sync failed", error=str(exc))
            self._wake.wait(self.interval)
            self._wake.clear()

    # --- the webhook ---------------------------------------------------------------------------------

    def webhook(self, body: bytes, headers: Mapping[str, str]) -> tuple[int, str]:
        status = signature_status(self.secret, body, headers.get(SIGNATURE_HEADER))
        if status != 200:
            self.metrics.webhooks.labels("unsigned" if status == 401 else "bad_signature").inc()
            log.warning("git webhook refused", status=status)
            return status, "signature missing" if status == 401 else "signature does not match"
        self.metrics.webhooks.labels("accepted").inc()
        self._wake.set()
        return 202, "fetching"

    # --- fetching ------------------------------------------------------------------------------------

    def sync(self) -> str | None:
        """Fetch; apply a new commit whose maps all load. The commit in force afterwards."""
        with self._lock:
            try:
                commit = self.repo.fetch()
            except GitError as exc:
                self.metrics.git_fetches.labels("failed").inc()
                log.warning("git fetch failed; the maps in force stay", error=str(exc))
                return self.applied
            self.metrics.git_fetches.labels("ok").inc()
            if commit not in (self.applied, self.rejected):
                self._try(commit)
            return self.applied

    def _try(self, commit: str) -> None:
        try:
            folder = self.repo.checkout(commit)
        except GitError as exc:
            self._reject(commit, [str(exc)])
            return
        result = MapSource([folder], self.source.limits).reload()
        problems = [str(p) for p in result.problems]
        if not problems and not result.maps.maps:
            problems = [f"no map files (*.yml, *.yaml) in {self.repo.path!r}"]
        if problems:
            self._reject(commit, problems, folder)
            return
        self.source.use([folder])
        previous = self.applied
        self._applied(commit)
        try:
            self._record.write_text(commit + "\n")
        except OSError as exc:
            log.warning("cannot record the commit in force", error=str(exc))
        log.info("maps from git: commit applied", commit=commit[:12], previous=(previous or "")[:12])
        self.on_maps()
        self.repo.keep_only([commit])

    def _applied(self, commit: str) -> None:
        self.metrics.git_commit.clear()
        self.metrics.git_commit.labels(commit).set(1)
        self.applied, self.rejected = commit, None

    def _reject(self, commit: str, problems: list[str], folder: Path | None = None) -> None:
        self.rejected = commit
        self.metrics.git_fetches.labels("rejected").inc()
        shown = [p.replace(f"{folder}/", "") if folder else p for p in problems]
        log.error("maps from git: commit rejected; the last good commit stays", commit=commit[:12], problems=shown)
        kept = (self.applied or "none")[:12]
        for problem in shown[:20]:
            self.alerts.add("map-error", f"git {commit[:12]}", f"{problem} (kept {kept})")
        self.repo.keep_only([c for c in (self.applied,) if c])
