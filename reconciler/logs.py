"""Structured logging, configured once: JSON lines off a terminal, readable console output on one.

Everything logs through structlog to stderr (stdout is for command output such as tables and JSON).
structlog (and, through its console renderer, rich: together ~50 ms) is imported only once something logs:
`get_logger` hands out a stand-in that becomes structlog's logger at its first call, and the command line
passes its options to `configure_on_first_use`, so a command that never logs (`validate`, a no-op `apply`)
does not pay for it.
"""

from __future__ import annotations

import sys
from typing import Any

_configured = False
_wanted: tuple[str, bool | None] = ("info", None)


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

    import structlog  # noqa: PLC0415

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
    return _Deferred(name)


def _structlog_logger(name: str) -> Any:
    if not _configured:
        configure(_wanted[0], json=_wanted[1])
    import structlog  # noqa: PLC0415 - see the module docstring

    return structlog.get_logger(name)
