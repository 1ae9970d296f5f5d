"""Container states (`State` of an inspect), the process list `top` shows and exec inspects, for the fake engine."""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Iterable, Sequence

from reconciler.executor.engine import Json


def state_json(status: str = "running", exit_code: int = 0, *, health: str | None = None, oom: bool = False) -> Json:
    running = status in ("running", "restarting", "paused")
    state: Json = {
        "Dead": status == "dead",
        "Error": "",
        "ExitCode": exit_code,
        "FinishedAt": "0001-01-01T00:00:00Z" if running or status == "created" else "2026-11-28T00:30:00Z",
        "OOMKilled": oom,
        "Paused": status == "paused",
        "Pid": 4242 if running else 0,
        "Restarting": status == "restarting",
        "Running": running,
        "StartedAt": "0001-01-01T00:00:00Z" if status == "created" else "2026-11-28T00:29:02Z",
        "Status": status,
    }
    if health is not None:
        state["Health"] = {"FailingStreak": 0, "Log": [], "Status": health}
    return state


def top_lines(cmd: str | Iterable[str]) -> list[str]:
    """The CMD column `GET /containers/{id}/top` shows for an exec'd command: the argv joined by spaces, no
    quotes (a string is split as docker-py splits it); a `sh -c` with one simple command is exec'd by the
    shell, so only that command shows; a shell script shows as `sh -c <script>` plus its running child."""
    argv = shlex.split(cmd) if isinstance(cmd, str) else list(cmd)
    if len(argv) >= 3 and posixpath.basename(argv[0]) == "sh" and argv[1] == "-c":
        script = argv[2]
        if not any(c in script for c in ";&|<>()$`\n"):
            return [" ".join(shlex.split(script))]
        first = script.split(";")[0].strip()
        return [" ".join(argv), *([" ".join(shlex.split(first))] if first else [])]
    return [" ".join(argv)]


def top_json(lines: Iterable[str]) -> Json:
    """`GET /containers/{id}/top` listing these command lines (`ps -ef`'s columns, as the engine answers)."""
    processes = [["root", str(4242 + i), "1", "0", "00:29", "?", "00:00:00", line] for i, line in enumerate(lines)]
    return {"Titles": ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"], "Processes": processes}


def exec_json(exec_id: str, container: str, argv: Sequence[str]) -> Json:
    """`GET /exec/{id}/json` of a running exec instance of `argv` (as sent: docker-py splits a string)."""
    return {
        "ID": exec_id,
        "ContainerID": container,
        "Running": True,
        "ProcessConfig": {"entrypoint": argv[0] if argv else "", "arguments": list(argv[1:])},
    }
