"""The options of `reconciler` itself — `--log-level`, `--log-json/--log-console`, `--state-dir`,
`--version` — and `hoist_globals`, which lets them be written after the command too.

They act before any command runs: logging is configured for its first use (structlog is imported only
when something logs), and `--state-dir` becomes RECONCILER_STATE_DIR, the one place every command and the
daemon's settings read it from.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from reconciler import __version__, logs


def _version(value: bool) -> None:
    if value:
        typer.echo(f"reconciler {__version__}")
        raise typer.Exit


def root_options(
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    log_json: Annotated[
        bool | None,
        typer.Option(
            "--log-json/--log-console",
            help="Log format (default: JSON unless stderr is a terminal).",
            show_default=False,
        ),
    ] = None,
    state_dir_option: Annotated[
        str | None,
        typer.Option(
            "--state-dir",
            help="The daemon's state directory (holds, pauses); 'off' for none. Default: as `run` finds it.",
            show_default=False,
        ),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    if log_level.lower() not in ("debug", "info", "warning", "error"):
        raise typer.BadParameter(f"unknown log level {log_level!r}", param_hint="--log-level")
    logs.configure_on_first_use(log_level.lower(), json=log_json)
    if state_dir_option is not None:
        # One place for every command, `run` included (its settings read RECONCILER_STATE_DIR too).
        os.environ["RECONCILER_STATE_DIR"] = state_dir_option


GLOBAL_VALUES = ("--log-level", "--state-dir")
GLOBAL_FLAGS = ("--log-json", "--log-console")


def hoist_globals(argv: list[str]) -> list[str]:
    """`reconciler plan x.yaml --log-level debug` means `reconciler --log-level debug plan x.yaml`: the
    options of `reconciler` itself are moved before the command wherever they were written (up to `--`)."""
    front, rest = split_globals(argv)
    return front + rest


def split_globals(argv: list[str]) -> tuple[list[str], list[str]]:
    """The options of `reconciler` itself (with their values), and the rest: the command and its arguments."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest.extend(argv[i:])
            break
        if arg in GLOBAL_FLAGS or (arg.split("=", 1)[0] in GLOBAL_VALUES and "=" in arg):
            front.append(arg)
        elif arg in GLOBAL_VALUES and i + 1 < len(argv):
            front.extend(argv[i : i + 2])
            i += 1
        else:
            rest.append(arg)
        i += 1
    return front, rest
