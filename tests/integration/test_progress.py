"""Live progress of `apply` and `down` as an operator sees it: on a terminal (a real pty, its output replayed
on a small screen model) the lines are updated in place, no info log line tears them, and a warning is
printed whole above them; `--progress json` is one JSON object per state change; `plain` lines off a
terminal."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.engine_helpers import ROOT, map_text, run_cli, unique_map_name

pytestmark = [pytest.mark.engine, pytest.mark.timeout(180)]

SITE = """\
db:
  image: IMAGE
  stop_timeout: 1
  attaches: data
  user: "1000"
  healthcheck: {test: [CMD, "true"], interval: 1s}
  create_options:
    command: [sh, -c, "TRAP"]
app:
  image: IMAGE
  stop_timeout: 1
  links: db
  create_options:
    command: [sh, -c, "TRAP"]
volumes:
  data: /data
"""
CSI = re.compile(rb"\x1b\[([0-9;?]*)([A-Za-z])")


class Screen:
    """Just enough of a terminal for rich's live display: text, CR, LF, erase line, cursor up; styles and
    cursor visibility are ignored."""

    def __init__(self) -> None:
        self.lines: list[str] = [""]
        self.row = 0
        self.col = 0

    def feed(self, data: bytes) -> None:
        pos = 0
        for match in CSI.finditer(data):
            self._text(data[pos : match.start()].decode(errors="replace"))
            self._control(match.group(1).decode(), match.group(2).decode())
            pos = match.end()
        self._text(data[pos:].decode(errors="replace"))

    def _control(self, args: str, command: str) -> None:
        if command == "A":
            self.row = max(0, self.row - int(args or 1))
        elif command == "K" and args == "2":
            self.lines[self.row] = ""

    def _text(self, text: str) -> None:
        for ch in text:
            if ch == "\r":
                self.col = 0
            elif ch == "\n":
                self.row += 1
                self.col = 0
                if self.row == len(self.lines):
                    self.lines.append("")
            else:
                line = self.lines[self.row].ljust(self.col)
                self.lines[self.row] = line[: self.col] + ch + line[self.col + 1 :]
                self.col += 1

    def text(self) -> str:
        return "\n".join(line.rstrip() for line in self.lines).strip("\n")


def on_a_terminal(*args: str, timeout: float = 120) -> tuple[int, bytes]:
    """`reconciler …` with stdin, stdout and stderr on a pty of 160x40, as in an operator's terminal."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "160", "LINES": "40"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler", *args], stdin=slave, stdout=slave, stderr=slave, cwd=ROOT, env=env
    )
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the child closed the pty
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
        return proc.wait(timeout=10), out
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)


@pytest.fixture
def site(tmp_path: Path, docker_client: Any) -> Iterator[tuple[str, Path]]:
    name = unique_map_name("progress")
    path = tmp_path / "site.yaml"
    path.write_text(map_text(name, SITE))
    yield name, path
    run_cli("down", str(path), "--volumes", "--progress", "quiet")
    for container in docker_client.containers.list(all=True, filters={"name": name}):
        if container.name.startswith(f"{name}."):
            container.remove(force=True, v=True)
    for volume in docker_client.volumes.list(filters={"name": name}):
        if volume.name.startswith(f"{name}."):
            volume.remove(force=True)


def test_on_a_terminal_lines_are_updated_in_place_by_wave(site: tuple[str, Path]) -> None:
    name, path = site
    code, raw = on_a_terminal("apply", str(path))  # logs at info, the default
    assert code == 0, raw[-2000:]
    screen = Screen()
    screen.feed(raw)
    final = screen.text().splitlines()
    assert [line for line in final if line.startswith("wave")] == ["wave 1", "wave 2", "wave 3", "wave 4"]
    rows = {line.split()[3]: line.split() for line in final if line.startswith("  ")}
    assert rows[f"{name}.data"][:3] == ["done", "create", "volume"]
    assert rows[f"{name}.data.init"][:3] == ["done", "run", "volume-init"]
    assert rows[f"{name}.db"][:3] == ["healthy", "create", "container"]  # passed its health gate
    assert rows[f"{name}.app"][:3] == ["done", "create", "container"]
    assert all(re.fullmatch(r"\d+\.\ds", row[-1]) for row in rows.values())
    assert final[-1] == "summary: 4 done, 0 failed, 0 skipped"
    assert len(final) == 4 + 4 + 1  # waves, resources, summary: nothing else on the screen
    text = raw.decode(errors="replace")
    assert "action done" not in text  # info log lines were held back while the display ran
    assert "waiting for health" in text  # … and the lines really moved through their states (a display
    # refreshes 8 times a second, so a state shorter than that, such as "creating", may never be drawn)

    code, raw = on_a_terminal("down", str(path), "--volumes")
    assert code == 0
    screen = Screen()
    screen.feed(raw)
    down = screen.text().splitlines()
    assert down[-1] == "summary: 4 done, 0 failed, 0 skipped"
    names = [line.split()[3] for line in down if line.startswith("  ")]
    assert names.index(f"{name}.app") < names.index(f"{name}.db")  # dependents go first
    assert all(line.split()[:2] == ["done", "remove"] for line in down if line.startswith("  "))
    assert len(names) == 4


def test_progress_json_is_one_object_per_state_change(site: tuple[str, Path]) -> None:
    name, path = site
    result = run_cli("apply", str(path), "--progress", "json")
    assert result.returncode == 0, result.stderr
    *lines, summary = result.stdout.strip().splitlines()
    assert summary == "summary: 4 done, 0 failed, 0 skipped"
    records = [json.loads(line) for line in lines]
    states: dict[str, list[str]] = {}
    for record in records:
        states.setdefault(record["name"], []).append(record["state"])
    assert states[f"{name}.db"] == ["waiting", "creating", "starting", "waiting for health", "healthy"]
    assert states[f"{name}.app"] == ["waiting", "creating", "starting", "done"]
    assert states[f"{name}.data.init"] == ["waiting", "preparing", "done"]
    waves = {r["name"]: r["wave"] for r in records}
    assert waves == {f"{name}.data": "1", f"{name}.data.init": "2", f"{name}.db": "3", f"{name}.app": "4"}
    final = [r for r in records if r["state"] in ("done", "healthy")]
    assert all(r["seconds"] >= 0 and r["error"] is None and r["at"].endswith("Z") for r in final)


def test_plain_lines_off_a_terminal_and_json_output_excludes_progress(site: tuple[str, Path]) -> None:
    name, path = site
    result = run_cli("apply", str(path))  # not a terminal: plain
    assert result.returncode == 0, result.stderr
    assert any(
        re.fullmatch(rf"  ok       create    container    {re.escape(name)}\.app \(\d+\.\ds\)", line)
        for line in result.stdout.splitlines()
    ), result.stdout
    clash = run_cli("down", str(path), "--json", "--progress", "tty")
    assert clash.returncode == 2
    assert "--progress cannot be combined with --json" in clash.stderr
    quiet = run_cli("down", str(path), "--progress", "quiet")
    assert quiet.stdout.strip() == "summary: 2 done, 0 failed, 0 skipped"


def test_on_a_terminal_warnings_and_errors_print_above_the_display(tmp_path: Path, docker_client: Any) -> None:
    name = unique_map_name("progress")
    path = tmp_path / "broken.yaml"
    path.write_text(map_text(name, "gone:\n  image: 127.0.0.1:5000/reconciler-no-such/image:1\n"))
    try:
        code, raw = on_a_terminal("apply", str(path))
        assert code == 1
        screen = Screen()
        screen.feed(raw)
        final = screen.text().splitlines()
        warnings = [i for i, line in enumerate(final) if "[warning" in line and "action failed" in line]
        assert len(warnings) == 1, final  # the executor's warning, once, whole …
        assert warnings[0] < final.index("pulls")  # … above the display, not torn into it
        rows = [line.split() for line in final if line.startswith("  ") and line.strip()]
        assert next(r[:3] for r in rows if r[0] == "failed") == ["failed", "pull", "image"]
        assert [r[:4] for r in rows if r[0] == "skipped"] == [["skipped", "create", "container", f"{name}.gone"]]
        assert final[-1] == "summary: 0 done, 1 failed, 1 skipped"
    finally:
        for container in docker_client.containers.list(all=True, filters={"name": name}):
            if container.name.startswith(f"{name}."):
                container.remove(force=True, v=True)
