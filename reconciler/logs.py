"""Structured logging: the command line's, and a library's manners for everyone else.

`reconciler` (the command line and the daemon) calls `configure`: structlog to stderr (stdout is for
command output such as tables and JSON), JSON lines off a terminal, readable console output on one.

Used as a library (`reconciler.api`, `reconciler.testing`), nothing is configured for the host program:
unless structlog was set up by someone already, our loggers go through the standard `logging` module
under their module names (`reconciler.…`), so the host's `logging.basicConfig(level=…)`, handlers and
filters decide what is shown — and Python's default shows only warnings and errors.

structlog (~60 ms; the command line's without rich, see `reconciler._lazy`) is imported only once something logs:
`get_logger` hands out a stand-in that becomes structlog's logger at its first call, and the command line
passes its options to `configure_on_first_use`, so a command that never logs (`validate`, a no-op `apply`)
does not pay for it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_configured = False
_wanted: tuple[str, bool | None] | None = None  # what the command line asked for


class _CurrentStderr:
    """Writes to whatever `sys.stderr` is at the time of writing (test runners and embedders swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure(level: str = "info", *, json: bool | None = None) -> None:
    """Set up structlog; `json=None` picks JSON unless stderr is a terminal. Idempotent."""
    global _configured  # noqa: PLW0603 - logging is process-wide by nature
    import logging  # noqa: PLC0415 - see the module docstring

    from reconciler._lazy import structlog_without_rich  # noqa: PLC0415

    structlog_without_rich()  # the command line's: rich's tracebacks are not worth its 40 ms
    import structlog  # noqa: PLC0415 - imported just now

    if json is None:
        json = not sys.stderr.isatty()
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
    _configured = True


def configure_on_first_use(level: str = "info", *, json: bool | None = None) -> None:
    """What `configure` will be called with when the first logger is asked for (at once if one was)."""
    global _wanted  # noqa: PLW0603 - logging is process-wide by nature
    _wanted = (level, json)
    if _configured:
        configure(level, json=json)


@contextmanager
def at_least(level: str) -> Iterator[None]:
    """Only `level` and above for a while (a live display owns the terminal: below-warning lines would
    tear it); what the command line asked for is restored afterwards. Nothing changes for a library."""
    import logging  # noqa: PLC0415 - see the module docstring

    before = _wanted
    names = logging.getLevelNamesMapping()
    raise_it = before is not None and names[level.upper()] > names[before[0].upper()]
    if before is None or not raise_it:
        yield
        return
    configure_on_first_use(level, json=before[1])
    try:
        yield
    finally:
        configure_on_first_use(before[0], json=before[1])


class _Deferred:
    """A module-level logger that is structlog's once used (`log.info(...)`, `log.bind(...)`)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._logger: Any = None

    def __getattr__(self, attr: str) -> Any:
        if self._logger is None:
            self._logger = _structlog_logger(self._name)
        return getattr(self._logger, attr)


def get_logger(name: str) -> Any:
    """A logger; at first use it sets up what the command line asked for, else the library defaults
    (unless the host program set up structlog before)."""
    return _Deferred(name)


def _structlog_logger(name: str) -> Any:
    if not _configured and _wanted is not None:
        configure(_wanted[0], json=_wanted[1])
    import structlog  # noqa: PLC0415 - see the module docstring

    if not _configured and not structlog.is_configured():
        _as_a_library(structlog)
    return structlog.get_logger(name)


def _as_a_library(structlog: Any) -> None:
    """Route structlog through stdlib logging (the host program's levels and handlers apply)."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.format_exc_info,
            structlog.processors.KeyValueRenderer(key_order=["event"], drop_missing=True),
        ],
        wrapper_class=structlog.stdlib.BoundLogger,
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
