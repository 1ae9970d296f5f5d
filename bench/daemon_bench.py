"""Benchmark: the `run` daemon managing N containers — reaction times and idle cost.

Measured in one run, against baselines from the same engine:
- kill → running again: median and p95 over trials, next to the engine's own `start` time for the same
  containers (the reaction beyond that is what the daemon adds; target: median under 1 s beyond it);
- tag move → the updated container running: median and p95 (the image build is not counted);
- idle: CPU share of the daemon process, its resident memory, and engine API requests per minute while
  nothing happens (targets: < 1 % CPU, < 80 MB RSS, no requests apart from the resync).

    .venv/bin/python bench/daemon_bench.py [N] [IDLE_SECONDS]    (default: 50 30; needs scripts/engine.sh)
"""

from __future__ import annotations

import io
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import docker

ROOT = Path(__file__).resolve().parents[1]
IMAGE = "reconciler-test/busybox:latest"
TRAP = "trap 'exit 0' TERM; while :; do sleep 1; done"
TRIALS = 10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith((name + " ", name + "{")):  # labelled `client` since several engines
                return float(line.split()[-1])
    raise KeyError(name)


def wait(condition: Any, timeout: float, interval: float = 0.005) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if condition():
            return time.perf_counter() - started
        time.sleep(interval)
    raise TimeoutError("condition not met")


def running(api: Any, name: str, image: str | None = None) -> bool:
    try:
        data = api.inspect_container(name)
    except docker.errors.NotFound:
        return False
    return bool(data["State"]["Running"]) and (image is None or data["Image"] == image)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    idle_seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 30.0
    client = docker.from_env(timeout=120)
    api = client.api
    name = f"dbench{uuid.uuid4().hex[:6]}"
    tag = f"{name}-img:live"
    client.images.build(fileobj=io.BytesIO(f"FROM {IMAGE}\nLABEL gen=0\n".encode()), tag=tag, rm=True)
    lines = [f"name: {name}", "set_hostname: false"]
    for i in range(n - 1):
        lines += [
            f"c{i}:",
            f"  image: {IMAGE}",
            "  stop_timeout: 1",
            f'  create_options: {{command: [sh, -c, "{TRAP}"]}}',
        ]
    lines += ["updated:", f"  image: {tag}", "  stop_timeout: 1", f'  create_options: {{command: [sh, -c, "{TRAP}"]}}']
    folder = Path(tempfile.mkdtemp())
    (folder / "bench.yaml").write_text("\n".join(lines) + "\n")
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "reconciler",
            "--log-level",
            "warning",
            "run",
            str(folder),
            "--http",
            f"127.0.0.1:{port}",
            "--resync",
            "3600",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait(
            lambda: running(api, f"{name}.updated") and all(running(api, f"{name}.c{i}") for i in range(n - 1)),
            300,
            0.2,
        )
        time.sleep(2)  # let the start-up events settle before measuring idle

        # Idle cost.
        requests0, cpu0, t0 = metric(port, "reconciler_engine_requests"), cpu_seconds(proc.pid), time.monotonic()
        time.sleep(idle_seconds)
        requests1, cpu1, t1 = metric(port, "reconciler_engine_requests"), cpu_seconds(proc.pid), time.monotonic()
        idle_cpu = 100 * (cpu1 - cpu0) / (t1 - t0)
        idle_requests = (requests1 - requests0) * 60 / (t1 - t0)
        rss = rss_mb(proc.pid)

        # The engine's own start time (baseline), then kill → running again through the daemon.
        engine_start, reaction = [], []
        for trial in range(TRIALS):
            target = f"{name}.c{trial % (n - 1)}"
            api.kill(target)
            wait(lambda t=target: running(api, t), 30)  # the daemon brings it back
            time.sleep(0.3)
        for trial in range(TRIALS):
            target = f"{name}.c{(trial + 3) % (n - 1)}"
            # Baseline: stop the daemon's view out of the way by measuring a plain restart of a stopped copy.
            probe = api.create_container(IMAGE, ["sh", "-c", TRAP], name=f"{name}-probe{trial}", stop_timeout=1)
            started = time.perf_counter()
            api.start(probe)
            wait(lambda p=probe: api.inspect_container(p)["State"]["Running"], 30)
            engine_start.append(time.perf_counter() - started)
            api.remove_container(probe, force=True, v=True)
            started = time.perf_counter()
            api.kill(target)
            wait(lambda t=target: not running(api, t), 10, 0.001)
            wait(lambda t=target: running(api, t), 30, 0.002)
            reaction.append(time.perf_counter() - started)
            time.sleep(0.3)

        # Tag move → updated container running the new image.
        update = []
        for trial in range(5):
            image, _ = client.images.build(
                fileobj=io.BytesIO(f"FROM {IMAGE}\nLABEL gen={trial + 1}\n".encode()), tag=tag, rm=True
            )
            started = time.perf_counter()
            wait(lambda i=image.id: running(api, f"{name}.updated", i), 60, 0.01)
            update.append(time.perf_counter() - started)
            time.sleep(0.5)

        base = statistics.median(engine_start)
        print(f"daemon managing {n} containers; {TRIALS} kill trials, 5 tag-move trials, {idle_seconds:.0f}s idle")
        print(
            f"  engine start (baseline)    median {base * 1000:7.0f} ms   p95 {pct(engine_start, 0.95) * 1000:7.0f} ms"
        )
        print(
            f"  kill → running again       median {statistics.median(reaction) * 1000:7.0f} ms   "
            f"p95 {pct(reaction, 0.95) * 1000:7.0f} ms   beyond the engine: "
            f"{(statistics.median(reaction) - base) * 1000:.0f} ms (target < 1000)"
        )
        print(
            f"  tag move → updated running median {statistics.median(update) * 1000:7.0f} ms   "
            f"p95 {pct(update, 0.95) * 1000:7.0f} ms"
        )
        print(
            f"  idle: CPU {idle_cpu:.2f} % (target < 1), RSS {rss:.1f} MB (target < 80), "
            f"engine requests {idle_requests:.1f}/min (target 0 apart from the resync)"
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        ids = [c["Id"] for c in api.containers(all=True, filters={"name": name})]
        for ident in ids:
            api.remove_container(ident, force=True, v=True)
        client.images.remove(tag, force=True)


if __name__ == "__main__":
    main()
