"""Structured logging, configured once: JSON lines off a terminal, readable console output on one.

Everything logs through structlog to stderr (stdout is for command output such as tables and JSON).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog

_configured = False
_settings: tuple[str, bool] = ("info", True)  # the level and format configured last


class _CurrentStderr:
    """Writes to whatever `sys.stderr` is at the time of writing (test runners and embedders swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure(level: str = "info", *, json: bool | None = None) -> None:
    """Set up structlog; `json=None` picks JSON unless stderr is a terminal. Idempotent."""
    global _configured, _settings  # noqa: PLW0603 - logging is process-wide by nature
    if json is None:
        json = not sys.stderr.isatty()
    _settings = (level, json)
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


@contextmanager
def at_least(level: str) -> Iterator[None]:
    """Only `level` and above for a while (a live display owns the terminal: below-warning lines would
    tear it); the configuration before is restored afterwards."""
    before, json = _settings
    names = logging.getLevelNamesMapping()
    raise_it = names[level.upper()] > names[before.upper()]
    if raise_it:
        configure(level, json=json)
    try:
        yield
    finally:
        if raise_it:
            configure(before, json=json)


def get_logger(name: str) -> Any:
    if not _configured:
        configure()
    return structlog.get_logger(name)
