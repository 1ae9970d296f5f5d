"""Libraries without the parts a command never uses: docker-py without its ssh:// transport until an ssh://
engine is used, structlog without rich, and pydantic without its plugins.

docker-py imports paramiko at `import docker`, for its ssh:// transport, whether or not an ssh:// engine is
ever used — and paramiko brings invoke, asyncio and unittest.mock with it: about 110 ms of every command
that talks to an engine, and megabytes of a daemon that never uses ssh (measured with `python -X importtime`:
`import docker` 121 ms, of it paramiko and what it imports about 110). The command line (`cli.main`) calls
`defer_docker_ssh()` first: docker-py's `docker.transport.sshconn` then fails to import, which docker-py
handles as "paramiko is not installed" (no ssh adapter). `docker_ssh()` — called wherever an engine is made
for an `ssh://` URL — imports it for real and gives docker-py its adapter back. A program that imports
reconciler as a library is not touched (it never calls `defer_docker_ssh`).

structlog imports rich, when it is installed, for the tracebacks of its console renderer (and rich brings
attrs): about 40 ms and 5 MB of every command that logs and of the daemon, which logs JSON lines and never
shows such a traceback. `structlog_without_rich()` — used where the command line configures its logging —
imports structlog with rich out of its sight (structlog then formats tracebacks plainly); rich itself stays
importable for the terminal's live display, which imports it before anything logs.

pydantic looks for plugins (the `pydantic` entry-point group) when it builds its first model, and its plugin
loader imports `importlib.metadata` (and `email` with it) to do so: about 20 ms of every command, for
instrumentation no one points at a map's model. `pydantic_without_plugins()` — called by the command line,
unless `PYDANTIC_DISABLE_PLUGINS` is set, in which case pydantic's own handling of it applies — gives pydantic a
loader that finds none, as `PYDANTIC_DISABLE_PLUGINS=__all__` would, without that import. Anything else
pydantic asks of its loader is answered by the real one.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import os
import sys
from collections.abc import Sequence
from types import ModuleType

SSHCONN = "docker.transport.sshconn"


class _DeferSSH(importlib.abc.MetaPathFinder):
    enabled = False

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname == SSHCONN and not self.enabled:
            raise ImportError(f"{SSHCONN} is imported once an ssh:// engine is used (reconciler._lazy)")
        return None  # every other import: the usual finders


_FINDER = _DeferSSH()


def defer_docker_ssh() -> None:
    """Leave docker-py's ssh transport (and paramiko) out of `import docker`, until `docker_ssh()`."""
    if SSHCONN not in sys.modules and _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


def docker_ssh() -> None:
    """Give docker-py its ssh:// adapter (importing paramiko), if `defer_docker_ssh` left it out."""
    _FINDER.enabled = True
    import docker.api.client  # noqa: PLC0415 -- the point is to import it only here
    import docker.transport  # noqa: PLC0415

    if not hasattr(docker.api.client, "SSHHTTPAdapter"):
        from docker.transport.sshconn import SSHHTTPAdapter  # noqa: PLC0415

        docker.transport.SSHHTTPAdapter = SSHHTTPAdapter
        docker.api.client.SSHHTTPAdapter = SSHHTTPAdapter


def ssh_errors() -> tuple[type[Exception], ...]:
    """paramiko's error class, once it is imported (to catch what an ssh:// handshake raises)."""
    paramiko = sys.modules.get("paramiko")
    return (paramiko.SSHException,) if paramiko is not None else ()


def structlog_without_rich() -> ModuleType:
    """structlog, imported (if it is not yet) while rich looks absent to it."""
    if "structlog" in sys.modules:
        return sys.modules["structlog"]
    hide = "rich" not in sys.modules
    if hide:
        sys.modules["rich"] = None  # type: ignore[assignment]  # `import rich` raises ImportError meanwhile
    try:
        import structlog  # noqa: PLC0415 -- the point is to import it only here

        return structlog
    finally:
        if hide and sys.modules.get("rich", False) is None:
            del sys.modules["rich"]


PLUGIN_LOADER = "pydantic.plugin._loader"


def pydantic_without_plugins() -> None:
    """pydantic's models built without looking for plugins (see the module's docstring)."""
    if PLUGIN_LOADER in sys.modules or "PYDANTIC_DISABLE_PLUGINS" in os.environ:
        return
    loader = ModuleType(PLUGIN_LOADER, "pydantic's plugin loader, finding none (reconciler._lazy)")
    loader.get_plugins = _no_plugins  # type: ignore[attr-defined]
    loader.__getattr__ = _real_loader  # type: ignore[method-assign]  # PEP 562: what this one lacks
    sys.modules[PLUGIN_LOADER] = loader


def _no_plugins() -> tuple[()]:
    return ()


def _real_loader(name: str) -> object:
    """An attribute of pydantic's real plugin loader, which then takes this one's place (not for the import
    system's own questions, such as whether the module is a package: `__path__`, `__spec__`)."""
    if name.startswith("__"):
        raise AttributeError(name)
    del sys.modules[PLUGIN_LOADER]
    return getattr(importlib.import_module(PLUGIN_LOADER), name)
