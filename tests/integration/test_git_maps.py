"""Maps from git (`run --git`) against the real engine: a local bare repository made with the git CLI.

A push is deployed within the fetch interval, and at once on a signed `POST /hooks/git`; unsigned and
wrongly signed hooks get 401/403 and change nothing; a bad commit is reported and the last good one stays.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.integration import test_daemon
from tests.integration.engine_helpers import map_text, unique_map_name, wait_for
from tests.integration.notify_receiver import Receiver
from tests.integration.test_daemon import running, state

maps_dir = test_daemon.maps_dir
daemon_factory = test_daemon.daemon_factory
SITE = """\
app:
  image: IMAGE
  stop_timeout: 1
  create_options:
    command: [sh, -c, "TRAP"]
    environment: {MODE: VALUE}
"""


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout.strip()


class Repo:
    """A bare repository and a work tree that pushes to it."""

    def __init__(self, root: Path) -> None:
        self.bare = root / "origin.git"
        self.work = root / "work"
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(self.bare)], check=True, timeout=30)
        subprocess.run(["git", "init", "-q", "-b", "main", str(self.work)], check=True, timeout=30)
        (self.work / "maps").mkdir()

    def push(self, files: dict[str, str], message: str) -> str:
        for name, text in files.items():
            (self.work / "maps" / name).write_text(text)
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "-m", message)
        git(self.work, "push", "-q", str(self.bare), "HEAD:main")
        return git(self.work, "rev-parse", "HEAD")


def post(port: int, body: bytes, signature: str | None) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/hooks/git", data=body, method="POST")
    if signature is not None:
        request.add_header("X-Hub-Signature-256", signature)
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def mode(client: Any, name: str) -> str | None:
    env = (state(client, name).get("Config") or {}).get("Env") or []
    return next((e.split("=", 1)[1] for e in env if e.startswith("MODE=")), None)


@pytest.mark.timeout(240)
def test_maps_from_git_follow_pushes_and_signed_webhooks_and_keep_the_last_good_commit(
    docker_client: Any, maps_dir: Path, daemon_factory: Any, tmp_path: Path
) -> None:
    repo = Repo(tmp_path)
    name = unique_map_name("git")
    app = f"{name}.app"

    def site(value: str) -> str:
        return map_text(name, SITE.replace("VALUE", value))

    first = repo.push({"site.yaml": site("one")}, "one")
    secret = b"webhook-secret-for-tests"
    (tmp_path / "secret").write_bytes(secret + b"\n")
    common = ["--git", str(repo.bare), "--git-branch", "main", "--git-path", "maps"]
    try:
        # Fetched every 2 s: a push is deployed within the interval (and a deadline for a loaded machine).
        daemon = daemon_factory(*common, "--git-interval", "2", paths=[])
        daemon.wait_ready(60)
        assert first in daemon.get("/readyz")[1]
        wait_for(lambda: running(docker_client, app) and mode(docker_client, app) == "one", 30)
        second = repo.push({"site.yaml": site("two")}, "two")
        wait_for(lambda: mode(docker_client, app) == "two" and running(docker_client, app), 20)
        wait_for(lambda: second in daemon.get("/readyz")[1], 10)
        assert daemon.stop() == 0

        # Fetched only on the hook: a restart starts from the commit in force; hooks must be signed.
        with Receiver() as receiver:
            env = {**os.environ, "RECONCILER_NOTIFY_INTERVAL": "0.2"}
            daemon = daemon_factory(
                *common,
                "--git-interval",
                "600",
                "--git-secret-file",
                str(tmp_path / "secret"),
                "--notify",
                receiver.url,
                env=env,
                paths=[],
            )
            daemon.wait_ready(60)
            assert second in daemon.get("/readyz")[1]
            third = repo.push({"site.yaml": site("three")}, "three")
            body = b'{"ref": "refs/heads/main"}'
            good = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
            wrong = "sha256=" + hmac.new(b"not the secret", body, hashlib.sha256).hexdigest()
            assert post(daemon.port, body, None) == 401
            assert post(daemon.port, body, wrong) == 403
            assert post(daemon.port, body + b" ", good) == 403  # the signature is over the very body
            metrics = daemon.get("/metrics")[1]
            assert 'reconciler_webhook_requests_total{result="unsigned"} 1.0' in metrics
            assert 'reconciler_webhook_requests_total{result="bad_signature"} 2.0' in metrics
            assert 'reconciler_git_fetches_total{result="ok"} 1.0' in metrics  # only the one at start
            assert mode(docker_client, app) == "two"
            assert post(daemon.port, body, good) == 202
            wait_for(lambda: mode(docker_client, app) == "three" and running(docker_client, app), 15)
            wait_for(lambda: third in daemon.get("/readyz")[1], 10)
            assert f'reconciler_git_commit{{commit="{third}"}} 1.0' in daemon.get("/metrics")[1]

            # A bad commit: reported (file:line) and notified; the last good commit stays in force.
            bad = repo.push({"site.yaml": site("four") + "  bogus_key: 1\n"}, "bad")
            assert post(daemon.port, body, good) == 202
            wait_for(
                lambda: any(e.get("event", "").startswith("maps from git: commit rejected") for e in daemon.logs()), 15
            )
            wait_for(lambda: any("[map-error]" in b and bad[:12] in b for b in receiver.bodies()), 15)
            assert any("site.yaml:" in b for b in receiver.bodies())
            assert mode(docker_client, app) == "three"
            assert third in daemon.get("/readyz")[1]
            assert daemon.stop() == 0
    finally:
        if state(docker_client, app):
            docker_client.api.remove_container(app, force=True, v=True)
