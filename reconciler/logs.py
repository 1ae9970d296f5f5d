"""Structured logging, configured once: JSON lines off a terminal, readable console output on one.

Everything logs through structlog to stderr (stdout is for command output such as tables and JSON).
structlog (and, through its console renderer, rich) is imported only once something logs: the command line
hands its options to `configure_on_first_use`, so commands that never log (`validate`, `schema`, `--help`)
do not pay for it at start-up.
"""

from __future__ import annotations

import logging
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
    import structlog  # noqa: PLC0415 - see the module docstring

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


def get_logger(name: str) -> Any:
    if not _configured:
        configure(_wanted[0], json=_wanted[1])
    import structlog  # noqa: PLC0415 - see the module docstring

    return structlog.get_logger(name)
