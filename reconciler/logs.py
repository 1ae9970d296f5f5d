"""Structured logging: the command line's, and a library's manners for everyone else.

`reconciler` (the command line and the daemon) calls `configure`: structlog to stderr (stdout is for
command output such as tables and JSON), JSON lines off a terminal, readable console output on one.

Used as a library (`reconciler.api`, `reconciler.testing`), nothing is configured for the host program:
unless structlog was set up by someone already, our loggers go through the standard `logging` module
under their module names (`reconciler.…`), so the host's `logging.basicConfig(level=…)`, handlers and
filters decide what is shown — and Python's default shows only warnings and errors.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

_configured = False


class _CurrentStderr:
    """Writes to whatever `sys.stderr` is at the time of writing (test runners and embedders swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure(level: str = "info", *, json: bool | None = None) -> None:
    """Set up structlog; `json=None` picks JSON unless stderr is a terminal. Idempotent."""
    global _configured  # noqa: PLW0603 - logging is process-wide by nature
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


def _as_a_library() -> None:
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


def get_logger(name: str) -> Any:
    """A logger; the first one sets the library defaults, unless `configure` or the host program set up
    structlog before."""
    if not _configured and not structlog.is_configured():
        _as_a_library()
    return structlog.get_logger(name)
