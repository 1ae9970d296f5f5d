"""Benchmark: cold `apply` against the engine's own floor, measured in the same run.

For N containers in two dependency levels (a fifth are bases, the rest link to one base each):
- baseline: the same containers created and started straight through the docker SDK, in the same two waves
  with the same thread-pool concurrency — what the engine itself needs;
- reconciler: a cold `converge` of the equivalent map (observe, plan, execute);
- the no-op `apply` right after: its time and the number of engine API requests it makes.
Each measurement cleans up before the next. Prints a table; the target is ratio ≤ 1.15 at N = 100.

    .venv/bin/python bench/apply_bench.py [N …]        (default: 20 100; needs scripts/engine.sh)
"""

from __future__ import annotations

import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import docker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reconciler.executor.converge import converge
from reconciler.executor.defaults import DEFAULT_CONCURRENCY
from reconciler.executor.engine import DockerEngine
from reconciler.model import combine_maps, load_map_dict
from reconciler.plan.desired import desired_state

IMAGE = "reconciler-test/busybox:latest"
COMMAND = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]
REPEATS = 3


def layout(n: int) -> tuple[list[str], dict[str, str]]:
    bases = [f"base{i}" for i in range(max(1, n // 5))]
    apps = {f"app{i}": bases[i % len(bases)] for i in range(n - len(bases))}
    return bases, apps


def map_dict(name: str, n: int) -> dict[str, Any]:
    bases, apps = layout(n)
    data: dict[str, Any] = {"name": name, "set_hostname": False}
    for base in bases:
        data[base] = {"image": IMAGE, "stop_timeout": 1, "create_options": {"command": COMMAND}}
    for app, base in apps.items():
        data[app] = {"image": IMAGE, "links": [[base, "db"]], "stop_timeout": 1, "create_options": {"command": COMMAND}}
    return data


def cleanup(client: docker.DockerClient, prefix: str) -> None:
    api = client.api
    ids = [c["Id"] for c in api.containers(all=True, filters={"name": prefix})]
    with ThreadPoolExecutor(DEFAULT_CONCURRENCY) as pool:
        list(pool.map(lambda i: api.remove_container(i, force=True, v=True), ids))


def baseline(client: docker.DockerClient, prefix: str, n: int) -> float:
    api = client.api
    bases, apps = layout(n)

    def create_start(name: str, links: dict[str, str] | None) -> None:
        host = api.create_host_config(links=links or None)
        cid = api.create_container(
            IMAGE, COMMAND, name=name, host_config=host, stop_timeout=1, labels={"bench": prefix}
        )["Id"]
        api.start(cid)

    started = time.perf_counter()
    with ThreadPoolExecutor(DEFAULT_CONCURRENCY) as pool:
        list(pool.map(lambda b: create_start(f"{prefix}.{b}", None), bases))
        list(pool.map(lambda a: create_start(f"{prefix}.{a[0]}", {f"{prefix}.{a[1]}": "db"}), apps.items()))
    return time.perf_counter() - started


def reconciler_run(prefix: str, n: int) -> tuple[float, float, int]:
    maps = combine_maps([load_map_dict(map_dict(prefix, n))])
    desired = desired_state(maps)
    engine = DockerEngine(pool_size=DEFAULT_CONCURRENCY * 2)
    started = time.perf_counter()
    done = converge(engine, desired)
    cold = time.perf_counter() - started
    assert done.ok, [r.error for r in done.result.failed]
    before = engine.request_count
    started = time.perf_counter()
    noop = converge(engine, desired)
    noop_time = time.perf_counter() - started
    assert noop.plan.in_sync, noop.plan.as_dict()
    requests = engine.request_count - before
    engine.close()
    return cold, noop_time, requests


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [20, 100]
    client = docker.from_env(timeout=120)
    client.images.get(IMAGE)
    print(f"engine {client.version()['Version']}, concurrency {DEFAULT_CONCURRENCY}, median of {REPEATS} runs")
    print(f"{'N':>5} {'baseline s':>11} {'reconciler s':>13} {'ratio':>7} {'no-op s':>8} {'no-op requests':>15}")
    for n in sizes:
        base_times, our_times, noop_times, requests = [], [], [], []
        for _ in range(REPEATS):
            prefix = f"bench{uuid.uuid4().hex[:6]}"
            try:
                base_times.append(baseline(client, prefix + "b", n))
            finally:
                cleanup(client, prefix + "b")
            try:
                cold, noop, count = reconciler_run(prefix + "r", n)
                our_times.append(cold)
                noop_times.append(noop)
                requests.append(count)
            finally:
                cleanup(client, prefix + "r")
        base, ours = statistics.median(base_times), statistics.median(our_times)
        print(
            f"{n:>5} {base:>11.2f} {ours:>13.2f} {ours / base:>7.2f} {statistics.median(noop_times):>8.3f} "
            f"{max(requests):>15}"
        )
        print(f"      (no-op request budget: 4 lists + {n} container inspects + image inspects = {4 + n + 1})")


if __name__ == "__main__":
    main()
