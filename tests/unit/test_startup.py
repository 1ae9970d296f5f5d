"""Start-up cost is part of the interface: each command imports what it uses (issue 17).

Pinned in a fresh interpreter (this one has imported everything already): after the command has run, the
modules it must not have paid for are still absent from `sys.modules`. Times are measured by bench/, never
here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = (
    "docker",
    "requests",
    "urllib3",
    "prometheus_client",
    "uvicorn",
    "watchfiles",
    "structlog",
    "rich",
    "croniter",
    "apprise",
)
PROBE = """
import json, runpy, sys
sys.argv = ["reconciler", *sys.argv[1:]]
try:
    runpy.run_module("reconciler", run_name="__main__")
except SystemExit:
    pass
sys.stdout = sys.__stdout__
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""


def run_probe(probe: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`probe` in a fresh interpreter (this one has imported everything already)."""
    return subprocess.run(
        [sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=60, check=False, cwd=ROOT
    )


def probe_ok(probe: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`run_probe`, which must succeed (its stderr is the message when it does not)."""
    result = run_probe(probe, *args)
    assert result.returncode == 0, result.stderr
    return result


def loaded_after(*args: str) -> set[str]:
    result = probe_ok(PROBE, *args)
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    "args",
    [["--help"], ["validate", "config/example.yaml"], ["validate", "--json", "config/example.yaml"], ["schema"]],
)
def test_commands_without_the_engine_import_none_of_its_packages(args: list[str]) -> None:
    loaded = loaded_after(*args)
    assert "reconciler" in loaded
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))


def test_help_does_not_import_the_model() -> None:
    loaded = loaded_after("--help")
    assert "yaml" not in loaded


def test_loggers_cost_nothing_until_used() -> None:
    probe = (
        "import sys, reconciler.executor.apply, reconciler.daemon.controller\n"
        "assert 'structlog' not in sys.modules, 'imported before anything logged'\n"
        "from reconciler import logs\n"
        "logs.configure_on_first_use('info', json=True)\n"
        "reconciler.executor.apply.log.info('first', n=1)\n"
        "assert 'structlog' in sys.modules\n"
    )
    result = probe_ok(probe)
    assert json.loads(result.stderr.strip().splitlines()[-1])["event"] == "first"


def test_the_engine_commands_leave_dockers_ssh_transport_out_until_an_ssh_engine_is_made() -> None:
    """docker-py imports paramiko (and invoke, asyncio, …: ~110 ms) at `import docker`; the command line
    defers it to the first ssh:// engine, which still gets docker-py's ssh adapter."""
    probe = (
        "import sys, runpy\n"
        "sys.argv = ['reconciler', '--help']\n"
        "try:\n"
        "    runpy.run_module('reconciler', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "import reconciler.executor.clients, reconciler.executor.engine, docker.api.client\n"
        "assert 'paramiko' not in sys.modules, 'paramiko imported with docker'\n"
        "assert not hasattr(docker.api.client, 'SSHHTTPAdapter')\n"
        "from reconciler.executor.clients import connect_client\n"
        "from reconciler.model.clients import ClientConfig\n"
        "try:\n"
        "    connect_client(ClientConfig(name='far', base_url='ssh://nobody@127.0.0.1:1'), retry_for=0)\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)\n"
        "assert 'paramiko' in sys.modules and hasattr(docker.api.client, 'SSHHTTPAdapter')\n"
    )
    result = probe_ok(probe)
    assert "Install paramiko" not in result.stdout  # the ssh:// engine had its adapter


def test_the_command_lines_logging_leaves_rich_out_and_still_shows_tracebacks() -> None:
    """structlog imports rich (and attrs) for its console tracebacks; the command line's logging does without:
    the daemon and `apply` log, and rich costs them ~40 ms and 5 MB. rich stays importable for the terminal."""
    probe = (
        "import sys\n"
        "from reconciler import logs\n"
        "logs.configure_on_first_use('info', json=False)\n"
        "log = logs.get_logger('probe')\n"
        "try:\n"
        "    raise ValueError('boom')\n"
        "except ValueError:\n"
        "    log.exception('it failed')\n"
        "assert 'structlog' in sys.modules\n"
        "assert 'rich' not in sys.modules and 'attr' not in sys.modules, 'rich came with structlog'\n"
        "import rich.console\n"
        "print('rich importable')\n"
    )
    result = probe_ok(probe)
    assert "rich importable" in result.stdout
    assert "it failed" in result.stderr
    assert "ValueError: boom" in result.stderr  # the traceback, plainly


def test_a_library_user_gets_structlog_as_installed() -> None:
    """Used as a library, reconciler leaves the host's structlog alone: rich, when installed, is its to use."""
    probe = (
        "import sys\n"
        "from reconciler import logs\n"
        "logs.get_logger('probe').warning('hello')\n"
        "assert 'structlog' in sys.modules and 'rich' in sys.modules\n"
    )
    probe_ok(probe)


PLUGIN = """
import sys
print("probe plugin loaded", file=sys.stderr)


class _Plugin:
    def new_schema_validator(self, *args, **kwargs):
        return None, None, None


plugin = _Plugin()
"""


def with_pydantic_plugin(tmp_path: Path) -> dict[str, str]:
    """An environment where an installed package offers pydantic a plugin (the `pydantic` entry-point group)
    that says so on stderr when pydantic loads it."""
    (tmp_path / "probe_plugin.py").write_text(PLUGIN)
    info = tmp_path / "probe_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: probe-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[pydantic]\nprobe = probe_plugin:plugin\n")
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    return {**env, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}


def validate_example(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    probe = PROBE + "print('importlib.metadata' in sys.modules, file=sys.stderr)\n"
    return subprocess.run(
        [sys.executable, "-c", probe, "validate", "config/example.yaml"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
        env=env,
    )


def test_the_command_line_builds_its_models_without_looking_for_pydantic_plugins(tmp_path: Path) -> None:
    """pydantic's search for plugins imports importlib.metadata and reads every installed package's entry
    points (~20 ms of every command): the command line does without, unless PYDANTIC_DISABLE_PLUGINS is set."""
    env = with_pydantic_plugin(tmp_path)
    result = validate_example(env)
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout
    assert "probe plugin loaded" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "False", "importlib.metadata was imported"

    # Set (to disable some other plugin only), the variable is pydantic's to handle: the probe's plugin loads.
    result = validate_example({**env, "PYDANTIC_DISABLE_PLUGINS": "some-other-plugin"})
    assert result.returncode == 0, result.stderr
    assert "probe plugin loaded" in result.stderr


def test_a_library_user_gets_pydantics_plugins(tmp_path: Path) -> None:
    probe = (
        "from pathlib import Path\n"
        "from reconciler.model import load_map_files\n"
        "load_map_files([Path('config/example.yaml')])\n"
    )
    env = with_pydantic_plugin(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False, cwd=ROOT, env=env
    )
    assert result.returncode == 0, result.stderr
    assert "probe plugin loaded" in result.stderr


def test_whatever_else_pydantic_asks_of_its_plugin_loader_comes_from_the_real_one() -> None:
    probe = (
        "import sys\n"
        "from reconciler._lazy import pydantic_without_plugins\n"
        "pydantic_without_plugins()\n"
        "from pydantic.plugin._loader import get_plugins\n"
        "assert tuple(get_plugins()) == ()\n"
        "from pydantic.plugin._loader import PYDANTIC_ENTRY_POINT_GROUP\n"
        "assert PYDANTIC_ENTRY_POINT_GROUP == 'pydantic'\n"
        "assert sys.modules['pydantic.plugin._loader'].__file__.endswith('_loader.py')\n"
        "print('real loader')\n"
    )
    result = probe_ok(probe)
    assert "real loader" in result.stdout


@pytest.mark.parametrize(
    ("args", "code", "shown"),
    [
        (["--log-level", "debug", "validate", "config/example.yaml"], 0, "valid"),
        (["validate", "config/example.yaml", "--log-json"], 0, "valid"),
        (["import", "compose", "--help"], 0, "Usage: reconciler import compose"),
        (["valdate", "config/example.yaml"], 2, "No such command 'valdate'. Did you mean 'validate'?"),
        (["--help"], 0, "healthcheck"),
    ],
)
def test_a_run_that_names_its_command_gets_it_and_any_other_run_all_of_them(
    args: list[str], code: int, shown: str
) -> None:
    """Each run builds only the command it names (typer makes a click command of each registered one): the
    options of `reconciler` itself still go anywhere, and the help and the mistyped command still see all."""
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.argv[0] = 'reconciler'; from reconciler.cli import main; main()",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == code, result.stderr
    assert shown in result.stdout + result.stderr


COLLECTOR = """
import gc, sys
import reconciler.daemon.run as daemon
daemon.run = lambda settings: print("daemon starts with the collector", gc.isenabled(), gc.get_freeze_count() > 0) or 0
sys.argv = ["reconciler", *sys.argv[1:]]
try:
    from reconciler.__main__ import main
    main()
except SystemExit:
    pass
sys.stdout = sys.__stdout__
print("at exit the collector", gc.isenabled(), gc.get_freeze_count() > 0)
"""


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (["validate", "config/example.yaml"], "at exit the collector True True"),  # on again once maps are loaded
        (["--help"], "at exit the collector False False"),  # a short command: never needed
        (
            ["run", "--state-dir", "off", "--http", "off", "config/example.yaml"],
            "daemon starts with the collector True True",
        ),
    ],
)
def test_the_command_lines_start_up_runs_without_the_garbage_collector(args: list[str], shown: str) -> None:
    """Start-up builds objects that all live on, and the collector only scanned them (11 to 16 ms of a
    `validate`): the entry pauses it, and a command turns it back on (start-up's objects frozen) once its
    maps are loaded, the daemon before it starts."""
    result = probe_ok(COLLECTOR, *args)
    assert shown in result.stdout, result.stdout + result.stderr


def test_a_library_user_keeps_the_garbage_collector() -> None:
    probe = (
        "import gc, sys\n"
        "from reconciler.cli import main\n"
        "sys.argv = ['reconciler', 'validate', 'config/example.yaml']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('collector', gc.isenabled(), gc.get_freeze_count())\n"
    )
    result = probe_ok(probe)
    assert "collector True 0" in result.stdout
