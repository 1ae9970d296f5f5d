"""Benchmark: cold `apply` of N containers on one engine against the same N split over two engines, and the
heal latency of one daemon over two engines.

- one engine: N independent containers, all placed on the client `main` (the main engine);
- two engines: the same N, half on `main`, half on `second` (scripts/engine2.sh's 20.10.24) — the command
  line's path: `deployments` → `converge_each`, one thread per engine;
- heal: a daemon over both engines; a container killed on each engine → running again (median of 3).
The ratio (two / one) shows the parallelism across engines; the engines share this machine's 2 cores, so it
stays well above 0.5. Each measurement cleans up before the next.

    .venv/bin/python bench/engines_bench.py [N]        (default: 20; needs scripts/engine.sh and engine2.sh)
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from functools import partial
from pathlib import Path
from typing import Any

import docker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reconciler.executor.clients import connected, deployments
from reconciler.executor.converge import converge, converge_each
from reconciler.model import combine_maps, load_map_dict
from reconciler.model.clients import load_clients

IMAGE = "reconciler-test/busybox:latest"
COMMAND = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]
MAIN = "unix:///var/run/docker.sock"
SECOND = os.environ.get("ENGINE2_HOST", "unix:///run/reconciler-engine2/docker.sock")
CLIENTS = {"main": {"base_url": MAIN}, "second": {"base_url": SECOND, "timeout": 30}}


def fleet(name: str, n: int, split: bool) -> dict[str, Any]:
    containers: dict[str, Any] = {}
    for i in range(n):
        where = ["second"] if split and i % 2 else ["main"]
        containers[f"c{i}"] = {
            "image": IMAGE,
            "clients": where,
            "stop_timeout": 1,
            "create_options": {"command": COMMAND},
        }
    return {"name": name, **containers}


def cold_apply(n: int, split: bool) -> float:
    name = f"eb{uuid.uuid4().hex[:6]}"
    maps = combine_maps([load_map_dict(fleet(name, n, split))])
    clients = load_clients(CLIENTS)
    work = {
        d.name: partial(connected, d.client, partial(lambda d, e: converge(e, d.desired), d))
        for d in deployments(maps, clients)
    }
    started = time.perf_counter()
    outcomes = converge_each(work)
    seconds = time.perf_counter() - started
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    cleanup(name)
    return seconds


def cleanup(name: str) -> None:
    for url in (MAIN, SECOND):
        client = docker.DockerClient(base_url=url, version="auto", timeout=60)
        for c in client.containers.list(all=True, filters={"label": f"io.reconciler.map={name}"}):
            c.remove(v=True, force=True)
        client.close()


def heal_latency() -> list[float]:
    """A daemon over both engines; kill `app` on each engine, time until it runs again."""
    name = f"eb{uuid.uuid4().hex[:6]}"
    folder = Path(tempfile.mkdtemp())
    (folder / "maps").mkdir()
    (folder / "maps" / "m.yaml").write_text(
        f"name: {name}\nclients: [main, second]\napp: {{image: {IMAGE}, stop_timeout: 1, "
        f"create_options: {{command: [sh, -c, \"trap 'exit 0' TERM; while :; do sleep 1; done\"]}}}}\n"
    )
    (folder / "clients.yaml").write_text(f"main: {{base_url: '{MAIN}'}}\nsecond: {{base_url: '{SECOND}'}}\n")
    port = 19000 + os.getpid() % 1000
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "reconciler",
            "--log-level",
            "warning",
            "run",
            str(folder / "maps"),
            "--clients",
            str(folder / "clients.yaml"),
            "--http",
            f"127.0.0.1:{port}",
        ],
        stderr=subprocess.DEVNULL,
        env={**os.environ, "RECONCILER_STATE_DIR": str(folder / "state")},
    )
    engines = [docker.DockerClient(base_url=u, version="auto", timeout=30) for u in (MAIN, SECOND)]
    out: list[float] = []
    try:
        wait(lambda: ready(port), 60)
        for _ in range(3):
            for client in engines:
                wait(lambda c=client: running(c, f"{name}.app"), 30)
                started = time.perf_counter()
                client.api.kill(f"{name}.app")
                wait(lambda c=client: running(c, f"{name}.app"), 30)
                out.append(time.perf_counter() - started)
    finally:
        proc.terminate()
        proc.wait(60)
        cleanup(name)
    return out


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def running(client: Any, name: str) -> bool:
    try:
        return bool(client.api.inspect_container(name)["State"]["Running"])
    except docker.errors.NotFound:
        return False


def wait(condition: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError
        time.sleep(0.01)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    one = cold_apply(n, split=False)
    two = cold_apply(n, split=True)
    print(f"cold apply of {n} containers: one engine {one:.2f} s, two engines {two:.2f} s, ratio {two / one:.2f}")
    heals = heal_latency()
    print(
        f"heal with two engines (kill → running, 3 per engine): median {statistics.median(heals) * 1000:.0f} ms, "
        f"max {max(heals) * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
