"""Map files for the daemon: loading with a last-good fallback, and watching them for changes.

`MapSource` owns the set of map files given on the command line (files, or folders of `*.yml`/`*.yaml`). Each
`reload()` reads every file again: a file that loads replaces its previous version; a broken file is
reported (file, line, key) and its last good version stays in force; a deleted file stops being managed.
`MapWatcher` runs watchfiles in a thread over the folders holding the maps (so editors that save by writing
a temporary file and renaming it over the map are seen) and, debounced, calls back — it produces a signal to
reload, never work.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import watchfiles

from reconciler.logs import get_logger
from reconciler.model import MapError, MapProblem, MapSet, ResolvedMap, combine_maps, load_map_files
from reconciler.model.limits import DEFAULT_LIMITS, Limits

log = get_logger(__name__)
MAP_SUFFIXES = (".yml", ".yaml")


@dataclass
class ReloadResult:
    maps: MapSet
    problems: list[MapProblem] = field(default_factory=list)  # errors of files kept at their last good version
    removed: list[str] = field(default_factory=list)  # files that disappeared: their maps are no longer managed
    changed: bool = False


class MapSource:
    def __init__(self, paths: Iterable[str | Path], limits: Limits = DEFAULT_LIMITS) -> None:
        self.paths = [Path(p) for p in paths]
        self.limits = limits
        self.good: dict[Path, ResolvedMap] = {}
        self._lock = threading.Lock()

    def use(self, paths: Iterable[str | Path]) -> None:
        """Read the maps from these paths from now on (maps from git: the folder of the commit in force)."""
        with self._lock:
            self.paths = [Path(p) for p in paths]

    def files(self) -> list[Path]:
        found: list[Path] = []
        for path in self.paths:
            if path.is_dir():
                found.extend(sorted(p for p in path.iterdir() if p.suffix in MAP_SUFFIXES and p.is_file()))
            elif path.exists():
                found.append(path)
        return found

    def reload(self) -> ReloadResult:
        with self._lock:
            problems: list[MapProblem] = []
            current = self.files()
            before = {p: m.model for p, m in self.good.items()}
            gone = [p for p in self.good if p not in current]
            for old in gone:
                del self.good[old]
            removed = [str(p) for p in gone]
            for path in current:
                try:
                    [loaded] = list(load_map_files([path], limits=self.limits))
                except MapError as exc:
                    problems.extend(exc.problems)
                    continue
                self.good[path] = loaded
            maps = self._combine(problems)
            changed = before != {p: m.model for p, m in self.good.items()}
            return ReloadResult(maps, problems, removed, changed)

    def _combine(self, problems: list[MapProblem]) -> MapSet:
        """All good maps together; a map whose name another file already uses is left out and reported."""
        chosen: dict[str, ResolvedMap] = {}
        for path in sorted(self.good):
            resolved = self.good[path]
            if resolved.name in chosen:
                problems.append(
                    resolved.positions.problem(
                        ("name",), f"map name '{resolved.name}' is already used by {chosen[resolved.name].file}"
                    )
                )
                continue
            chosen[resolved.name] = resolved
        return combine_maps(list(chosen.values()))


class MapWatcher:
    """Watches the maps' folders in a thread; calls `on_change` (debounced) when a map file may have changed,
    and the callback of each file of `also` (the daemon's pause files) when that file changed."""

    def __init__(
        self,
        source: MapSource,
        on_change: Callable[[], None],
        debounce_ms: int = 150,
        *,
        also: Mapping[Path, Callable[[], None]] | None = None,
    ) -> None:
        self.source = source
        self.on_change = on_change
        self.debounce_ms = debounce_ms
        self.also = {p.resolve(): call for p, call in (also or {}).items()}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="map-watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _watched(self) -> list[Path]:
        folders = {p if p.is_dir() else p.parent for p in self.source.paths} | {p.parent for p in self.also}
        return sorted(f for f in folders if f.exists())

    @property
    def watching_also(self) -> bool:
        """Every file of `also` is watched (its folder exists): its changes need no polling."""
        return all(p.parent.is_dir() for p in self.also)

    def _relevant(self, changed: set[tuple[watchfiles.Change, str]]) -> bool:
        files = {p.resolve() for p in self.source.paths if not p.is_dir()}
        folders = {p.resolve() for p in self.source.paths if p.is_dir()}
        for _change, raw in changed:
            path = Path(raw).resolve()
            if path in files or (path.parent in folders and path.suffix in MAP_SUFFIXES):
                return True
        return False

    def _run(self) -> None:
        while not self._stop.is_set():
            folders = self._watched()
            if not folders:
                self._stop.wait(1.0)
                continue
            try:
                for changed in watchfiles.watch(
                    *folders,
                    debounce=self.debounce_ms,
                    # watchfiles' loop wakes every `step` ms to look at `stop_event` and for changes, also
                    # when nothing happens: 30 ms was 33 wake-ups a second of an idle daemon, 250 ms four;
                    # a change still goes out after `debounce`, at most a step (a second) later.
                    step=1000,
                    stop_event=self._stop,
                    rust_timeout=1000,
                    yield_on_timeout=False,
                    recursive=False,
                ):
                    paths = {Path(raw) for _change, raw in changed}
                    calls = [self.on_change] if self._relevant(changed) else []
                    calls += [call for path, call in self.also.items() if path in paths]
                    for call in calls:
                        try:
                            call()
                        except Exception as exc:  # the reaction failed, not the watching: keep watching
                            log.exception("reacting to a file change failed", error=str(exc))
            except Exception as exc:  # a watched folder vanished, inotify limits, …: log and watch again
                log.warning("map watcher restarting", error=str(exc))
                self._stop.wait(1.0)
