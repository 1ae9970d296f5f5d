"""`reconciler graph --state` against the real engine: nodes carry what the engine says, and an engine that
does not answer leaves its share `unknown` with a warning — the graph is drawn all the same."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.engine_helpers import map_text, run_cli, unique_map_name

pytestmark = [pytest.mark.engine, pytest.mark.timeout(120)]

SITE = """\
app:
  image: IMAGE
  stop_timeout: 1
  create_options:
    command: [sh, -c, "TRAP"]
far:
  image: IMAGE
  clients: [gone]
"""


def test_graph_state_on_the_engines_that_answer(tmp_path: Path, docker_client: Any) -> None:
    name = unique_map_name("graph")
    site, clients = tmp_path / "site.yaml", tmp_path / "clients.yaml"
    site.write_text(map_text(name, SITE))
    clients.write_text(f"gone:\n  base_url: unix://{tmp_path}/no-engine.sock\n  timeout: 2\n")
    try:
        applied = run_cli("apply", "--clients", str(clients), "--client", "__default__", str(site))
        assert applied.returncode == 0, applied.stderr
        drawn = run_cli("graph", "--state", "--clients", str(clients), str(site))
        assert drawn.returncode == 0, drawn.stderr
        assert f'["{name}.app<br/>running"]' in drawn.stdout
        assert f'["{name}.far<br/>unknown"]' in drawn.stdout
        assert "warning: client gone:" in drawn.stderr
        docker_client.api.kill(f"{name}.app")
        dot = run_cli(
            "graph", "--state", "--format", "dot", "--client", "__default__", "--clients", str(clients), str(site)
        )
        assert dot.returncode == 0, dot.stderr
        assert f'label="{name}.app\\nexited (137)"' in dot.stdout
        assert 'fillcolor="#f9d0d0"' in dot.stdout
        assert dot.stderr == ""  # only the engine that was asked for
    finally:
        for container in docker_client.containers.list(all=True, filters={"name": name}):
            if container.name.startswith(f"{name}."):
                container.remove(force=True, v=True)
