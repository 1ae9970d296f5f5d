"""The health of the map files after each reload: what is said, counted and told about them.

A broken file keeps its last good version (see `watch.maps`); each problem is logged saying which of the
two it means — the last good version stays, or nothing of that file is managed yet — and counted
(`reconciler_map_errors_total`); `reconciler_maps_broken{file}` is 1 while a file is broken and 0 once it
loads again ("map OK again"). Each error is one alert, daemon-wide, until it is fixed (made again later,
it is news again). The status page lists the problems (`board.map_errors`).
"""

from __future__ import annotations

from typing import Any

from reconciler.model import Severity
from reconciler.watch.maps import MapSource, ReloadResult

from .alerts import Alerts
from .board import Board
from .metrics import ClientMetrics


class MapHealth:
    def __init__(self, log: Any, metrics: ClientMetrics, alerts: Alerts, board: Board) -> None:
        self.log = log
        self.metrics = metrics
        self.alerts = alerts
        self.board = board
        self.files: list[str] = []  # the map files found at the last reload
        self.broken: set[str] = set()  # the files that fail to load now

    def update(self, result: ReloadResult, source: MapSource) -> None:
        self.files = [str(p) for p in source.files()]
        self.board.map_errors(result.problems)
        self._log_and_count(result, {str(p) for p in source.good})
        self._tell(result)

    def _log_and_count(self, result: ReloadResult, kept: set[str]) -> None:
        broken = {p.file for p in result.problems if p.severity is Severity.ERROR}
        for problem in result.problems:
            self.metrics.map_errors.inc()
            if problem.file in kept:
                self.log.error("map error: keeping the last good version", problem=str(problem))
            else:
                self.log.error("map error: not managed (no good version of this file yet)", problem=str(problem))
        for file in sorted(self.broken - broken):
            self.metrics.maps_broken.labels(file).set(0)
            self.log.info("map OK again", file=file)
        for file in broken:
            self.metrics.maps_broken.labels(file).set(1)
        self.broken = broken

    def _tell(self, result: ReloadResult) -> None:
        problems = {str(p) for p in result.problems if p.severity is Severity.ERROR}
        for problem in sorted(problems):
            where, _, what = problem.partition(": ")
            self.alerts.tell_once("map-error", where, what, detail=problem)
        self.alerts.forget("map-error", lambda told: told in problems)  # fixed and made again: news again
