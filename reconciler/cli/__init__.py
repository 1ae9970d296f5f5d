"""The command line (DESIGN §6): `validate`, `schema`, and the commands built on the engine.

Exit codes are a contract: 0 success, 1 failure or invalid map, 2 usage error (click's own code for bad
arguments). Command output goes to stdout; problems and logs go to stderr. No input ever produces a Python
traceback: map problems are `MapError`s, printed one line each.

Start-up is part of the interface: each command imports what it uses inside its own body (the model for
`validate`, the engine for `plan`/`apply`, the daemon for `run`), so `--help` and `validate` never load the
docker SDK, the daemon or its HTTP server (tests/unit/test_startup.py). Every module of this package
imports only typer, the standard library and its sibling modules at the top; types for annotations come
in under `TYPE_CHECKING`.

The package, by what each module is about:
- `options`: the arguments and options several commands share (`MAP… [TARGET…]`, `--clients`, …);
- `common`: reading maps, targets and clients (`prepare`), one converge per engine, output helpers;
- `state`: the daemon's state directory as the command line uses it (holds, pauses, the daemon's presence);
- `maps`: `validate`, `schema`, `graph` · `compose`: `import compose`;
- `converge`: `plan`, `apply`, `down`, `adopt` (and `report`: how their runs are printed) · `status`;
- `daytwo`: `pause`, `resume`, `release`, `stop`, `start`, `restart`, `logs`;
- `daemon`: `run`, `healthcheck` · `root`: the options of `reconciler` itself.

The modules define plain functions; they become commands here, in one list, because the order in which
they are registered is the order `reconciler --help` lists them in. `build_app` registers them all for
`app`, or only the one a run names (`main`): typer makes a click command of every registered one on each
run, and a run uses one.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import typer

from reconciler.cli.compose import import_compose
from reconciler.cli.converge import adopt, apply, down, plan
from reconciler.cli.daemon import health_url, healthcheck, run
from reconciler.cli.daytwo import parse_duration, pause, release, restart, resume, show_logs, start, stop
from reconciler.cli.maps import deploy_problems, graph, schema, validate
from reconciler.cli.root import hoist_globals, root_options, split_globals
from reconciler.cli.status import _status_line, status

__all__ = ["_status_line", "app", "deploy_problems", "health_url", "hoist_globals", "main", "parse_duration"]

# Every command, in the order `reconciler --help` lists them (the order they are registered in).
COMMANDS: dict[str, Callable[..., None]] = {
    "validate": validate,
    "plan": plan,
    "apply": apply,
    "down": down,
    "pause": pause,
    "resume": resume,
    "release": release,
    "stop": stop,
    "start": start,
    "restart": restart,
    "logs": show_logs,
    "adopt": adopt,
    "status": status,
    "graph": graph,
    "run": run,
    "healthcheck": healthcheck,
    "schema": schema,
}
IMPORT = "import"  # the group of `import compose`


def build_app(only: str | None = None) -> typer.Typer:
    """The command line: every command, or only the one named `only` (see `main`)."""
    app = typer.Typer(
        name="reconciler",
        help="Keep the containers on a Docker host exactly as container map files describe them.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        # Plain click help: it wraps to the terminal (80 columns too) without cutting flag names, and shows
        # no `<bool>` types.
        rich_markup_mode=None,  # and rendering it with rich costs more than the rest of start-up
    )
    app.callback()(root_options)
    for name, command in COMMANDS.items():
        if only in (None, name):
            app.command(name)(command)
    if only in (None, IMPORT):
        import_app = typer.Typer(
            help="Write a map from another tool's description of the containers.", no_args_is_help=True
        )
        import_app.command("compose")(import_compose)
        app.add_typer(import_app, name=IMPORT)
    return app


app = build_app()


def main() -> None:
    from reconciler._lazy import defer_docker_ssh, pydantic_without_plugins

    defer_docker_ssh()  # docker-py's ssh transport costs ~110 ms of every command; only ssh:// clients need it
    pydantic_without_plugins()  # and pydantic's search for plugins ~20 ms
    front, rest = split_globals(sys.argv[1:])
    # typer turns every registered command into a click command on each run (~10 ms for all of them); a
    # run that names its command gets an app of that one. `reconciler --help`, no command or a mistyped
    # one get them all, so the help and the "No such command" error list every command as before.
    named = rest[0] if rest and (rest[0] in COMMANDS or rest[0] == IMPORT) else None
    try:
        (build_app(named) if named else app)(args=front + rest)
    except KeyboardInterrupt:  # pragma: no cover - interactive
        sys.exit(130)
