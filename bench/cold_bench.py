"""Benchmark: a cold `apply` against the engine's floor and against `docker compose up -d`, in the same run.

The map is the issue's 40 containers: 8 volume owners (each attaches a volume) and 32 dependents that link
to one owner and use its volume — three waves (8 volumes, 8 owners, 32 dependents). Every figure is a whole
process, started cold, timed round-robin (ours, floor, compose, ours, …) and reported as medians:
- ours: `reconciler apply MAP --progress quiet` with `-j` 4, 8 (the default) and 16;
- the floor: a process that imports the docker SDK (without paramiko, as reconciler runs it) and makes the
  same engine calls in the same waves (create the volumes; create and start the owners; create and start
  the dependents) on a thread pool of 4, 8 or 16 — the best of the three is the limit;
- compose: `docker compose up -d` of the equivalent compose file (volumes, links, depends_on), when the
  compose plugin is there (compose's own choice of parallelism).
Each run is removed before the next (containers and volumes; not timed).

    .venv/bin/python bench/cold_bench.py [REPEATS]     (default 3; needs scripts/engine.sh)
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from startup_bench import IMAGE, NO_SSH, compiled, map_text  # noqa: E402 -- the same map as the no-op row

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
N, OWNERS = 40, 8
COMMAND = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]
WORKERS = (4, 8, 16)

FLOOR = (
    NO_SSH
    + """
from concurrent.futures import ThreadPoolExecutor
import docker
name, owners, n, workers, image = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
command = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]
api = docker.APIClient()
def run(container, volume, link):
    host = api.create_host_config(binds={volume: {"bind": "/data", "mode": "rw"}}, links=link)
    api.start(api.create_container(image, command, name=container, host_config=host, stop_timeout=1)["Id"])
with ThreadPoolExecutor(workers) as pool:
    list(pool.map(lambda b: api.create_volume(f"{name}.data{b}"), range(owners)))
    list(pool.map(lambda b: run(f"{name}.base{b}", f"{name}.data{b}", None), range(owners)))
    def app(a):
        return run(f"{name}.app{a}", f"{name}.data{a % owners}", {f"{name}.base{a % owners}": "db"})
    list(pool.map(app, range(n - owners)))
"""
)


def compose_file(name: str) -> dict[str, object]:
    services: dict[str, object] = {}
    for b in range(OWNERS):
        services[f"base{b}"] = {
            "image": IMAGE,
            "command": COMMAND,
            "stop_grace_period": "1s",
            "volumes": [f"data{b}:/data"],
        }
    for a in range(N - OWNERS):
        b = a % OWNERS
        services[f"app{a}"] = {
            "image": IMAGE,
            "command": COMMAND,
            "stop_grace_period": "1s",
            "links": [f"base{b}:db"],
            "depends_on": [f"base{b}"],
            "volumes": [f"data{b}:/data"],
        }
    return {"name": name, "services": services, "volumes": {f"data{b}": {} for b in range(OWNERS)}}


def timed(argv: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=ROOT, env=ENV)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:4])} … failed: {done.stderr[-2000:]}")
    return seconds


def remove(name: str) -> None:
    """Every container and volume whose name starts with `name` (what one run made)."""
    ids = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"name={name}"], capture_output=True, text=True, check=False
    ).stdout.split()
    if ids:
        subprocess.run(["docker", "rm", "-fv", *ids], capture_output=True, check=False)
    volumes = subprocess.run(
        ["docker", "volume", "ls", "-q", "--filter", f"name={name}"], capture_output=True, text=True, check=False
    ).stdout.split()
    if volumes:
        subprocess.run(["docker", "volume", "rm", "-f", *volumes], capture_output=True, check=False)


def ours(tmp: Path, workers: int) -> Callable[[], float]:
    def run() -> float:
        name = f"cb{uuid.uuid4().hex[:6]}"
        path = tmp / f"{name}.yaml"
        path.write_text(map_text(name, N, runnable=True))
        try:
            return timed(
                [sys.executable, "-m", "reconciler", "apply", str(path), "-j", str(workers), "--progress", "quiet"]
            )
        finally:
            remove(name)

    return run


def floor(workers: int) -> Callable[[], float]:
    def run() -> float:
        name = f"cf{uuid.uuid4().hex[:6]}"
        try:
            return timed([sys.executable, "-c", FLOOR, name, str(OWNERS), str(N), str(workers), IMAGE])
        finally:
            remove(name)

    return run


def compose(tmp: Path) -> Callable[[], float]:
    def run() -> float:
        name = f"cc{uuid.uuid4().hex[:6]}"
        path = tmp / f"{name}.json"
        path.write_text(json.dumps(compose_file(name)))
        try:
            return timed(["docker", "compose", "-f", str(path), "up", "-d", "--quiet-pull"])
        finally:
            subprocess.run(
                ["docker", "compose", "-f", str(path), "down", "-v", "-t", "1"], capture_output=True, check=False
            )
            remove(name)

    return run


def has_compose() -> bool:
    return (
        shutil.which("docker") is not None
        and subprocess.run(["docker", "compose", "version"], capture_output=True, check=False).returncode == 0
    )


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    compiled()
    with tempfile.TemporaryDirectory(prefix="cold-bench-") as folder:
        tmp = Path(folder)
        subjects: dict[str, Callable[[], float]] = {f"reconciler apply -j {w}": ours(tmp, w) for w in WORKERS}
        subjects |= {f"SDK floor, {w} workers": floor(w) for w in WORKERS}
        if has_compose():
            subjects["docker compose up -d"] = compose(tmp)
        for run in subjects.values():  # warm-up: the engine's caches, the file system's
            run()
        times: dict[str, list[float]] = {label: [] for label in subjects}
        for _ in range(repeats):
            for label, run in subjects.items():
                times[label].append(run())
    medians = {label: statistics.median(t) for label, t in times.items()}
    limit_label = min((k for k in medians if k.startswith("SDK floor")), key=lambda k: medians[k])
    limit = medians[limit_label]
    print(
        f"cold apply of {N} containers ({OWNERS} volume owners, {N - OWNERS} dependents with links), "
        f"median of {repeats} round-robin runs; the limit is the best floor ({limit_label}: {limit:.2f} s)"
    )
    print(f"{'figure':<28} {'seconds':>8} {'/ limit':>8} {'/ compose':>10}")
    compose_s = medians.get("docker compose up -d")
    for label, seconds in medians.items():
        versus = f"{seconds / compose_s:>10.2f}" if compose_s else f"{'—':>10}"
        print(f"{label:<28} {seconds:>8.2f} {seconds / limit:>8.2f} {versus}")


if __name__ == "__main__":
    main()
