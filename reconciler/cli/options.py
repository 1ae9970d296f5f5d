"""The arguments and options several commands share, written once so that they read the same everywhere.

Each is an `Annotated` type (typer's way to carry help, metavar and flag names with the parameter's type);
a command's own options stay in its module, beside the one command that takes them. Changing a help text
here changes it in every command's `--help` — that text is part of the command line's contract.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reconciler.executor.defaults import MAX_PARALLEL

MapsAndTargets = Annotated[
    list[Path],
    typer.Argument(help="Map files or folders, then optional targets.", show_default=False, metavar="MAP|TARGET"),
]
MapPaths = Annotated[
    list[Path],
    typer.Argument(help="Map files, or folders of *.yml / *.yaml map files.", show_default=False, metavar="MAP"),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]
TakePending = Annotated[
    bool,
    typer.Option(
        "--update", help="Also move `update: notify` containers to the newer images their tags point at (pending)."
    ),
]
Targets = Annotated[
    list[str] | None,
    typer.Option(
        "--target",
        "-t",
        help="config, config.instance, map.config or a group (repeatable).",
        show_default=False,
        metavar="TARGET",
    ),
]
ClientsFile = Annotated[
    Path | None,
    typer.Option(
        "--clients",
        help="docker-map client configurations (YAML: name → base_url, tls, interfaces and more); without "
        "it, one engine (__default__).",
        show_default=False,
        metavar="FILE",
    ),
]
OnlyClients = Annotated[
    list[str] | None,
    typer.Option(
        "--client", help="Only this client's share of the maps (repeatable).", show_default=False, metavar="NAME"
    ),
]
Parallel = Annotated[
    int,
    typer.Option(
        "--parallel", "-j", min=1, max=MAX_PARALLEL, help="Actions run at once (each once what it depends on is done)."
    ),
]
ProgressFlag = Annotated[
    str | None,
    typer.Option(
        "--progress",
        help="tty: lines updated in place, by wave (default on a terminal); plain: a line per finished action "
        "(default off one); json: a JSON object per state change; quiet: only the summary.",
        show_default=False,
        metavar="plain|tty|json|quiet",
    ),
]
UpdatePersistent = Annotated[bool, typer.Option(help="Also update persistent containers' images.")]
