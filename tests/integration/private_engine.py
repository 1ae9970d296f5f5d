"""A private dockerd for tests that stop, kill or restart the engine: never the main one.

The installed `dockerd` is started with paths of its own — its own `-H unix://` socket, `--data-root`,
`--exec-root` (so its own managed containerd, under that root), `--pidfile`, containerd namespaces — a bridge
of its own (`--bridge br-<session>`, created here and deleted afterwards), `--iptables=false`,
`--ip6tables=false`, `--ip-forward=false` (the host's firewall and sysctls are not touched) and the `vfs`
storage driver (no overlay mounts left behind in a test folder). See engine-facts.md, "A second engine beside
the main one".

Never `--bridge none`: a dockerd started without a bridge *deletes the host's `docker0`* (moby's
`removeDefaultBridgeInterface`), which cuts every container of the main engine off its network.
The test image is copied into it with `docker save | docker load`. Stopping the engine stops only what runs
in it; everything it holds goes with its folders at the end.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.conftest import SESSION, TEST_IMAGE

DOCKERD = shutil.which("dockerd") or "/usr/sbin/dockerd"


class PrivateEngine:
    def __init__(self, root: Path, run_dir: Path) -> None:
        self.root = root
        self.run_dir = run_dir
        self.socket = run_dir / "docker.sock"
        self.url = f"unix://{self.socket}"
        self.pidfile = run_dir / "docker.pid"
        self.log = root / "dockerd.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.bridge = f"br-{SESSION}"[:15]  # interface names have at most 15 characters
        self.made_bridge = False

    @property
    def env(self) -> dict[str, str]:
        """The environment a reconciler process needs to use this engine (and only it)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        env["DOCKER_HOST"] = self.url
        return env

    def _make_bridge(self) -> None:
        """A bridge of this engine's own, on a /24 no route of the host uses yet."""
        if Path(f"/sys/class/net/{self.bridge}").exists():
            return
        routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True, check=True).stdout
        base = int(SESSION[2:6], 16) % 200
        for offset in range(200):
            subnet = f"10.{231 + (base + offset) // 200 % 20}.{(base + offset) % 200}"
            if f"{subnet}.0/24" not in routes:
                break
        subprocess.run(["ip", "link", "add", self.bridge, "type", "bridge"], check=True)
        self.made_bridge = True
        subprocess.run(["ip", "addr", "add", f"{subnet}.1/24", "dev", self.bridge], check=True)
        subprocess.run(["ip", "link", "set", self.bridge, "up"], check=True)

    def start(self, timeout: float = 60) -> None:
        self._make_bridge()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                DOCKERD,
                "-H",
                self.url,
                "--data-root",
                str(self.root / "data"),
                "--exec-root",
                str(self.run_dir / "exec"),
                "--pidfile",
                str(self.pidfile),
                "--bridge",
                self.bridge,
                "--iptables=false",
                "--ip6tables=false",
                "--ip-forward=false",
                "--ip-masq=false",
                "--userland-proxy=false",
                "--storage-driver",
                "vfs",
                "--containerd-namespace",
                f"{SESSION}-moby",
                "--containerd-plugins-namespace",
                f"{SESSION}-plugins",
                "--log-level",
                "warn",
            ],
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("ab"),
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the private dockerd exited: {self.log.read_text()[-2000:]}")
            if self.ping():
                return
            time.sleep(0.2)
        raise AssertionError(f"the private dockerd did not answer within {timeout}s: {self.log.read_text()[-2000:]}")

    def ping(self) -> bool:
        result = subprocess.run(
            ["docker", "-H", self.url, "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            timeout=10,
            check=False,
        )
        return result.returncode == 0

    def client(self) -> Any:
        import docker

        return docker.DockerClient(base_url=self.url, timeout=30)

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 60) -> None:
        """Signal the private dockerd (only it: by the pid of the process this object started) and wait."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        self.proc.wait(timeout=timeout)

    def load_image(self, main_client: Any, ref: str = TEST_IMAGE) -> None:
        """Copy an image from the main engine (where the test images are built) into this one."""
        save = subprocess.Popen(["docker", "save", ref], stdout=subprocess.PIPE)
        assert save.stdout is not None
        load = subprocess.run(
            ["docker", "-H", self.url, "load"], stdin=save.stdout, capture_output=True, timeout=120, check=False
        )
        save.stdout.close()
        assert save.wait(timeout=120) == 0
        assert load.returncode == 0, load.stderr.decode()

    def destroy(self) -> None:
        self.stop()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        # Mounts the engine may have left (container netns, shm): unmount before removing its folders.
        with contextlib.suppress(OSError):
            mounts = Path("/proc/mounts").read_text().splitlines()
            for line in reversed(mounts):
                target = line.split()[1]
                if target.startswith((str(self.root), str(self.run_dir))):
                    subprocess.run(["umount", "-l", target], check=False, capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)
        shutil.rmtree(self.run_dir, ignore_errors=True)
        if self.made_bridge:  # only the bridge this object made
            subprocess.run(["ip", "link", "del", self.bridge], check=False, capture_output=True)


@contextlib.contextmanager
def private_engine(main_client: Any) -> Iterator[PrivateEngine]:
    """A private engine holding the test image, removed afterwards with everything in it."""
    root = Path(f"/var/tmp/{SESSION}-engine")
    engine = PrivateEngine(root, Path(f"/run/{SESSION}-engine"))
    main_bridge = Path("/sys/class/net/docker0")
    had_main_bridge = main_bridge.exists()
    try:
        engine.start()
        engine.load_image(main_client)
        yield engine
    finally:
        engine.destroy()
        # Do no harm: the main engine's bridge is still there.
        assert main_bridge.exists() or not had_main_bridge, "the private engine removed the host's docker0"
