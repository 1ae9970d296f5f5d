"""Start-up cost is part of the interface: each command imports what it uses (issue 17).

Pinned in a fresh interpreter (this one has imported everything already): after the command has run, the
modules it must not have paid for are still absent from `sys.modules`. Times are measured by bench/, never
here.
"""

from __future__ import annotations

import json
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


def loaded_after(*args: str) -> set[str]:
    result = run_probe(PROBE, *args)
    assert result.returncode == 0, result.stderr
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
    result = run_probe(probe)
    assert result.returncode == 0, result.stderr
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
    result = run_probe(probe)
    assert result.returncode == 0, result.stderr
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
    result = run_probe(probe)
    assert result.returncode == 0, result.stderr
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
    result = run_probe(probe)
    assert result.returncode == 0, result.stderr
