"""The deployment files are valid: the systemd unit passes `systemd-analyze verify`, the example configs load."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.daemon.settings import load_settings
from reconciler.model import load_map_files

ROOT = Path(__file__).resolve().parents[2]


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: scripts/bootstrap.sh installs Debian's systemd package"
    unit = (ROOT / "deploy" / "reconciler.service").read_text()
    # verify checks that ExecStart exists: point it at this checkout's command, and give it a docker.service.
    command = Path(sys.executable).parent / "reconciler"
    unit = unit.replace("/usr/local/bin/reconciler", str(command))
    (tmp_path / "reconciler.service").write_text(unit)
    (tmp_path / "docker.service").write_text("[Unit]\nDescription=stub\n[Service]\nExecStart=/bin/true\n")
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(tmp_path / "reconciler.service")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"SYSTEMD_UNIT_PATH": f"{tmp_path}:", "PATH": "/usr/bin:/bin"},
    )
    problems = [line for line in (result.stdout + result.stderr).splitlines() if "reconciler.service" in line]
    assert result.returncode == 0, result.stdout + result.stderr
    assert not problems, problems


def test_unit_contract() -> None:
    unit = (ROOT / "deploy" / "reconciler.service").read_text()
    for line in (
        "Type=notify",
        "WatchdogSec=",
        "Restart=on-failure",
        "ExecReload=/bin/sh -c 'kill -HUP $$MAINPID'",
        "Requires=docker.service",
        "After=docker.service",
        "SupplementaryGroups=docker",
    ):
        assert line in unit


def test_environment_file_is_accepted_by_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for raw in (ROOT / "deploy" / "reconciler.env").read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#") and not line.startswith("RECONCILER_ARGS"):
            key, _, value = line.partition("=")
            monkeypatch.setenv(key, value)
    settings = load_settings(paths=["/etc/reconciler/maps"])
    assert settings.http == "127.0.0.1:9105"
    assert settings.resync == 300
    assert settings.prune_deleted_maps is False


def test_compose_file_and_examples() -> None:
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    service = compose["services"]["reconciler"]
    assert "/var/run/docker.sock:/var/run/docker.sock" in service["volumes"]
    assert "${RECONCILER_MAPS:-/etc/reconciler/maps}:/maps:ro" in service["volumes"]
    maps = load_map_files([*sorted((ROOT / "config" / "site").glob("*.yaml")), ROOT / "config" / "example.yaml"])
    assert sorted(m.name for m in maps) == ["data", "example", "web"]


def test_settings_precedence_flags_over_environment_over_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "reconciler.yaml"
    config.write_text("resync: 111\nworkers: 3\nhttp: 127.0.0.1:9999\npaths: [/from/file]\n")
    monkeypatch.setenv("RECONCILER_WORKERS", "2")
    settings = load_settings(config, resync=None, http="off")
    assert settings.resync == 111  # from the file
    assert settings.workers == 2  # the environment beats the file
    assert settings.http == "off"  # a flag beats both
    assert settings.http_address is None
    assert settings.paths == ["/from/file"]
    with pytest.raises(ValueError, match="host:port"):
        load_settings(None, http="nonsense")


def test_run_flags_become_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from reconciler import cli

    seen: dict[str, Any] = {}
    monkeypatch.setattr(cli.daemon, "run_daemon", lambda settings: seen.setdefault("settings", settings) and 0)
    result = CliRunner().invoke(
        cli.app,
        [
            "run",
            "/srv/maps",
            "--prune-deleted-maps",
            "--update-persistent",
            "--http",
            "off",
            "--resync",
            "60",
            "--poll-images",
            "900",
            "-j",
            "8",
        ],
    )
    assert result.exit_code == 0, result.output
    settings = seen["settings"]
    assert settings.paths == ["/srv/maps"]
    assert (settings.prune_deleted_maps, settings.update_persistent, settings.http) == (True, True, "off")
    assert (settings.resync, settings.poll_images, settings.concurrency) == (60, 900, 8)
    seen.clear()
    unattended = CliRunner().invoke(
        cli.app,
        [
            "run",
            "--git",
            "https://git.example.com/maps.git",
            "--git-branch",
            "prod",
            "--git-path",
            "hosts/a",
            "--git-interval",
            "30",
            "--notify",
            "json://127.0.0.1:1/a",
            "--notify",
            "ntfy://ntfy.sh/topic",
            "--update-window",
            "Sat 02:00-05:00",
        ],
    )
    assert unattended.exit_code == 0, unattended.output
    settings = seen["settings"]
    assert (settings.git, settings.git_branch, settings.git_path, settings.git_interval) == (
        "https://git.example.com/maps.git",
        "prod",
        "hosts/a",
        30,
    )
    assert settings.notify == ["json://127.0.0.1:1/a", "ntfy://ntfy.sh/topic"]
    assert settings.update_window == "Sat 02:00-05:00"
    for wrong in (["run", "/srv/maps", "--git", "x"], ["run", "--update-window", "Sat 25:00-26:00", "/srv/maps"]):
        refused = CliRunner().invoke(cli.app, wrong)
        assert refused.exit_code == 2, refused.output
    bad = CliRunner().invoke(cli.app, ["run", "/srv/maps", "--http", "nowhere"])
    assert bad.exit_code == 2
    assert "invalid settings" in bad.output
