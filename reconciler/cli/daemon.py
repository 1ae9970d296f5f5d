"""The commands of the daemon: `run` starts it, `healthcheck` asks a running one (a container HEALTHCHECK).

`run`'s flags are only one source of its settings: `daemon.settings.load_settings` merges them over the
environment (`RECONCILER_*`) and the config file, and validates the result; a flag left out is None, so
it does not override the other sources. Bad settings are a usage error (exit 2) with one readable line,
never pydantic's whole report. The daemon itself (`reconciler.daemon.run`) is imported only by `run`,
through `run_daemon`, which is also the seam where tests put a stand-in.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from reconciler.cli.options import ClientsFile, OnlyClients

if TYPE_CHECKING:
    from reconciler.daemon.settings import Settings

# `run`'s own options (help texts are the contract; the defaults they name are the settings' defaults).
RunPaths = Annotated[list[Path] | None, typer.Argument(help="Map files or folders.", show_default=False, metavar="MAP")]
ConfigFile = Annotated[Path | None, typer.Option(help="YAML file with daemon settings.", exists=True)]
Resync = Annotated[float | None, typer.Option(help="Seconds between full resyncs (default 300).")]
PollImages = Annotated[
    float | None,
    typer.Option(
        help="Ask the registry about the tags of auto/notify containers every this many seconds; pull only"
        " what changed (off by default)."
    ),
]
Http = Annotated[str | None, typer.Option(help="host:port of /healthz, /readyz, /metrics, or 'off'.")]
Workers = Annotated[int | None, typer.Option(help="Keys reconciled at once (default 4).")]
RunParallel = Annotated[int | None, typer.Option("--parallel", "-j", help="Actions at once in a wave.")]
RunHealthGate = Annotated[float | None, typer.Option(help="Seconds for a recreated container to turn healthy.")]
PruneDeletedMaps = Annotated[
    bool | None, typer.Option("--prune-deleted-maps", help="Remove the containers of deleted map files.")
]
StopTimeout = Annotated[float | None, typer.Option(help="Seconds in-flight work may take on SIGTERM.")]
RunPrune = Annotated[
    bool | None, typer.Option("--prune", help="Remove containers of configs removed from a map (orphans).")
]
RunVolumes = Annotated[bool | None, typer.Option("--volumes", help="With --prune: orphaned volumes too.")]
RunUpdatePersistent = Annotated[
    bool | None, typer.Option("--update-persistent", help="Also move persistent containers to newer images.")
]
UpdateWindow = Annotated[
    str | None,
    typer.Option(help="When auto updates may run, unless a map says: 'Sat 02:00-05:00' or '0 2 * * 6 3h'."),
]
Notify = Annotated[
    list[str] | None, typer.Option("--notify", help="An Apprise URL to notify (repeatable).", show_default=False)
]
Git = Annotated[str | None, typer.Option(help="Read the maps from this git repository (URL or path).")]
GitBranch = Annotated[str | None, typer.Option(help="Its branch (default: the remote's HEAD).")]
GitPath = Annotated[str | None, typer.Option(help="The maps' folder in the repository.")]
GitInterval = Annotated[float | None, typer.Option(help="Seconds between fetches (default 60).")]
GitSecretFile = Annotated[
    Path | None, typer.Option(help="The secret that signs POST /hooks/git (X-Hub-Signature-256).")
]

# `run`'s parameters that the settings call otherwise (the rest have the settings' names).
SETTING_OF = {"parallel": "concurrency", "volumes": "prune_volumes"}


def run(
    paths: RunPaths = None,
    config: ConfigFile = None,
    resync: Resync = None,
    poll_images: PollImages = None,
    http: Http = None,
    workers: Workers = None,
    parallel: RunParallel = None,
    health_gate: RunHealthGate = None,
    prune_deleted_maps: PruneDeletedMaps = None,
    stop_timeout: StopTimeout = None,
    prune: RunPrune = None,
    volumes: RunVolumes = None,
    update_persistent: RunUpdatePersistent = None,
    clients_file: ClientsFile = None,
    client: OnlyClients = None,
    update_window: UpdateWindow = None,
    notify: Notify = None,
    git: Git = None,
    git_branch: GitBranch = None,
    git_path: GitPath = None,
    git_interval: GitInterval = None,
    git_secret_file: GitSecretFile = None,
) -> None:
    """Run the daemon: keep the engines matching the maps, now and whenever anything changes."""
    # Every flag by its parameter name: the first statement, so that nothing else is local yet.
    flags: dict[str, Any] = dict(locals())
    settings = _load_settings(flags.pop("config"), **_settings_fields(flags))
    _check_map_source(settings)
    raise typer.Exit(run_daemon(settings))


def _settings_fields(flags: dict[str, Any]) -> dict[str, Any]:
    """`run`'s flags as settings fields: renamed where they differ, and an empty list (a repeatable option
    not given) is None, so that it does not override the environment or the config file."""
    fields = {SETTING_OF.get(name, name): value for name, value in flags.items()}
    fields["paths"] = [str(p) for p in fields["paths"]] if fields["paths"] else None
    fields["client"] = fields["client"] or None
    fields["notify"] = fields["notify"] or None
    return fields


def _load_settings(config: Path | None, **flags: Any) -> Settings:
    """The daemon's settings (flags over environment over config file), or exit 2 with what is wrong."""
    from pydantic import ValidationError

    from reconciler.daemon.settings import load_settings

    try:
        return load_settings(config, **flags)
    except (ValidationError, ValueError) as exc:
        typer.echo(f"error: invalid settings: {_settings_problem(exc)}", err=True)
        raise typer.Exit(2) from None


def _check_map_source(settings: Settings) -> None:
    """Maps come from exactly one place: map files or folders, or a git repository (exit 2 otherwise)."""
    if settings.paths and settings.git:
        typer.echo("error: maps come from map files or folders or from --git, not both", err=True)
        raise typer.Exit(2)
    if not settings.paths and not settings.git:
        typer.echo("error: no map files or folders given (arguments, RECONCILER_PATHS or the config file)", err=True)
        raise typer.Exit(2)


def _settings_problem(exc: Exception) -> str:
    """`workers: Input should be greater than or equal to 1` rather than pydantic's whole report."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc)
    parts = []
    for error in errors():
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("_WithFile",))
        parts.append(f"{where}: {error.get('msg')}" if where else str(error.get("msg")))
    return "; ".join(parts) or str(exc)


def run_daemon(settings: Settings) -> int:
    """The daemon, imported only by the command that runs it (tests replace this function)."""
    from reconciler import _startup
    from reconciler.daemon.run import run as run_daemon

    _startup.done()  # a long-lived process: its collector runs (start-up's objects frozen out of its sight)
    return run_daemon(settings)


def health_url(url: str | None, config: Path | None) -> str:
    """The endpoint to ask: `--url` (a URL, or `host:port`), else the `http` setting `run` would use (flags
    aside: RECONCILER_HTTP, the config file, the default), with a wildcard address asked on loopback."""
    import urllib.parse

    if url is None:
        address = _load_settings(config).http_address
        if address is None:
            typer.echo("error: the status server is off (http: off): nothing to ask", err=True)
            raise typer.Exit(2)
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(address[0], address[0])
        url = f"[{host}]:{address[1]}" if ":" in host else f"{host}:{address[1]}"
    if "://" not in url:
        url = "http://" + url
    return url if urllib.parse.urlsplit(url).path not in ("", "/") else url.rstrip("/") + "/healthz"


def healthcheck(
    url: Annotated[
        str | None,
        typer.Option(help="The daemon's health endpoint, or host:port. Default: the `http` setting of `run`."),
    ] = None,
    config: ConfigFile = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for an answer.")] = 5.0,
) -> None:
    """Ask a running daemon whether it is healthy (exit 0) or not (exit 1): for container HEALTHCHECKs."""
    import urllib.error
    import urllib.request

    url = health_url(url, config)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            typer.echo(response.read().decode(errors="replace").strip())
    except urllib.error.HTTPError as exc:
        typer.echo(f"unhealthy: {exc.read().decode(errors='replace').strip()}", err=True)
        raise typer.Exit(1) from None
    except (urllib.error.URLError, OSError) as exc:
        typer.echo(f"unhealthy: {exc}", err=True)
        raise typer.Exit(1) from None
