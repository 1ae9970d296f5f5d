"""`reconciler graph`: the dependency picture as Mermaid and DOT, pinned by golden files.

The golden files in tests/golden/graph/ are what an operator sees; after an intended change of the picture,
regenerate them with `python -m reconciler graph MAP [--format dot] > tests/golden/graph/…` and review the diff.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.model import load_map_files
from reconciler.plan.desired import desired_state
from reconciler.plan.diagram import Node, Picture, picture, render_dot, render_mermaid, states_from
from reconciler.plan.resources import DesiredState, Kind, ResourceId
from reconciler.testing import state_json, synthesize

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "graph"
MAPS = {"example": ROOT / "config" / "example.yaml", "site": ROOT / "tests" / "maps" / "graph_site.yaml"}


def desired(name: str) -> DesiredState:
    return desired_state(load_map_files([MAPS[name]]))


def graph_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reconciler", "graph", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )


FORMATS = (("mermaid", "mmd"), ("dot", "dot"))


@pytest.mark.parametrize(("name", "fmt", "suffix"), [(m, f, s) for m in MAPS for f, s in FORMATS])
def test_graph_of_the_maps_matches_the_golden_file(name: str, fmt: str, suffix: str) -> None:
    result = graph_cli(str(MAPS[name].relative_to(ROOT)), "--format", fmt)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (GOLDEN / f"{name}.{suffix}").read_text()


def test_mermaid_is_the_default_format() -> None:
    result = graph_cli("config/example.yaml")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (GOLDEN / "example.mmd").read_text()


def test_waves_are_the_order_a_cold_apply_creates_things_in() -> None:
    pic = picture(desired("site"))
    wave = {n.resource.name: n.wave for n in pic.nodes}
    assert wave["site.backend"] == wave["site.db_data"] == 1
    assert wave["site.db_data.init"] == 2
    assert wave["site.db"] < wave["site.app.one"] == wave["site.app.two"] < wave["site.web"] < wave["site.metrics"]


def test_every_kind_of_edge_is_labelled_by_its_reason() -> None:
    edges = {(e.source.name, e.target.name): e.label for e in picture(desired("site")).edges}
    assert edges[("site.db", "site.db_data")] == "attaches"
    assert edges[("site.db_data.init", "site.db_data")] == "prepares"
    assert edges[("site.db", "site.backend")] == "network"
    assert edges[("site.app.one", "site.db")] == "links"  # a link on a network endpoint
    assert edges[("site.web", "site.app.two")] == "links"  # a legacy link
    assert edges[("site.web", "site.assets")] == "uses"  # volumes_from
    assert edges[("site.web", "site.static")] == "uses"  # another config's attached volume
    assert edges[("site.metrics", "site.web")] == "network_mode"
    # A container's need of the init is implied by the volume (the init prepares it): not drawn twice.
    assert ("site.db", "site.db_data.init") not in edges


def test_a_target_draws_it_and_what_it_needs_only() -> None:
    result = graph_cli("tests/maps/graph_site.yaml", "app.one")
    assert result.returncode == 0, result.stderr
    assert "site.app.one" in result.stdout
    assert "site.db_data.init" in result.stdout
    for absent in ("site.app.two", "site.web", "site.metrics", "site.static"):
        assert absent not in result.stdout


def test_an_unknown_target_is_a_usage_error() -> None:
    result = graph_cli("config/example.yaml", "nosuch")
    assert result.returncode == 2
    assert "unknown target 'nosuch'" in result.stderr


def test_an_invalid_map_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: s\nweb:\n  links: app\n")
    assert graph_cli(str(bad)).returncode == 1


def test_states_colour_the_nodes() -> None:
    want = desired("example")
    snapshot = synthesize(want)
    snapshot.container("example.web")["State"] = state_json("exited", 137)
    snapshot.drop_container("example.app")
    pic = picture(want, states=states_from(want, snapshot.observed()))
    states = {n.resource.name: n.state for n in pic.nodes}
    assert states["example.web"] == "exited (137)"
    assert states["example.app"] == "missing"
    assert states["example.app_log"] == "present"
    text = render_mermaid(pic)
    assert 'n6["example.web<br/>exited (137)"]' in text
    assert "class n0,n1,n2,n3,n4 ok" in text  # volumes, and inits that finished (exit 0)
    assert "class n6 bad" in text
    assert "class n5 missing" in text
    assert 'fillcolor="#f9d0d0"' in render_dot(pic)


def test_names_and_states_are_escaped_for_each_format() -> None:
    odd = ResourceId(Kind.CONTAINER, 'x"]; click n0 "javascript:alert(1)')
    pic = Picture((Node(odd, 1, state='<b>"a\\b"</b>'),), ())
    mermaid = render_mermaid(pic)
    assert '"]' not in mermaid.split('n0["', 1)[1].rsplit('"]', 1)[0]
    assert "<b>" not in mermaid
    assert "#quot;" in mermaid
    dot = render_dot(pic)
    assert 'label="x\\"]; click n0 \\"javascript:alert(1)\\n<b>\\"a\\\\b\\"</b>"' in dot


def test_the_readme_shows_the_example_graph() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "```mermaid\n" + (GOLDEN / "example.mmd").read_text() + "```" in readme
