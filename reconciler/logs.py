"""Structured logging, configured once: JSON lines off a terminal, readable console output on one.

Everything logs through structlog to stderr (stdout is for command output such as tables and JSON).
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


def get_logger(name: str) -> Any:
    if not _configured:
        configure()
    return structlog.get_logger(name)
