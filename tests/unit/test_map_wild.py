"""docker-map maps from the wild (issue 11): they load unchanged, resolve as docker-map resolves them, and
`validate` accepts exactly the maps that `plan` can build.

`tests/maps/wild/` holds maps written after docker-map's and docker-fabric's guides of versions 0.1 to 1.1
(each file's header says which); `tests/maps_invalid/` maps that must be refused with one clear message.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.cli import deploy_problems
from reconciler.compat.mapping import ContainerMap, MapIntegrityError
from reconciler.model import MapError, Severity, load_map_dict, load_map_files
from reconciler.model.options import CREATE_KWARGS, HOST_KWARGS
from reconciler.plan.desired import desired_state
from reconciler.plan.resources import DesiredState, PortSpec

ROOT = Path(__file__).resolve().parents[2]
CORPUS = sorted([*ROOT.glob("tests/maps/compat/*.yaml"), *ROOT.glob("tests/maps/wild/*.yaml")])
INVALID = ROOT / "tests/maps_invalid"
# Corpus maps that docker-map loads but that cannot be deployed here, and why (as the round trip says).
UNDEPLOYABLE = {"dependency_graph.yaml": "provides no volumes", "map_data_2.yaml": "interface 'private'"}


def validate(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reconciler", "validate", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )


@pytest.mark.parametrize("path", CORPUS, ids=[p.name for p in CORPUS])
def test_validate_accepts_exactly_what_plan_can_build(path: Path) -> None:
    if path.name == "dependency_graph.yaml":  # a graph fixture: docker-map loads it with its check off
        with pytest.raises(MapError, match=UNDEPLOYABLE[path.name]):
            load_map_files([path])
        return
    maps = load_map_files([path])
    blocked = desired_state(maps).problems
    judged = deploy_problems(maps)
    assert len(judged) == len(blocked)  # one code path: every container plan blocks, validate refuses
    if path.name in UNDEPLOYABLE:
        assert all(UNDEPLOYABLE[path.name] in str(p) for p in judged)
        assert all(p.line is not None and p.key_path for p in judged)
    else:
        assert not judged, [str(p) for p in judged]


def _load(name: str) -> tuple[DesiredState, list[str]]:
    maps = load_map_files([ROOT / "tests/maps/wild" / name])
    return desired_state(maps), [str(w) for w in maps.warnings]


def test_start_options_of_the_0_1_guide_are_host_config_with_a_warning() -> None:
    state, warnings = _load("guide_0_1_start_options.yaml")
    web = state.containers["guide_0_1_start_options.web_server"]
    assert set(web.ports) == {PortSpec("80/tcp", "80"), PortSpec("443/tcp", "443")}
    [warning] = warnings
    assert ":10:3: web_server.start_options: warning:" in warning
    assert "loaded as 'host_config'" in warning


def test_misindented_port_bindings_of_the_0_1_2_guide_have_no_effect_as_in_docker_map() -> None:
    state, warnings = _load("guide_0_1_2_misindented.yaml")
    web = state.containers["guide_0_1_2_misindented.web_server"]
    assert web.ports == ()
    assert any("web_server.port_bindings: warning: 'port_bindings' has no effect" in w for w in warnings)
    assert any("web_server.start_options: warning:" in w for w in warnings)  # empty: nothing to load


def test_network_of_0_7_is_network_mode() -> None:
    state, warnings = _load("network_0_7.yaml")
    assert state.containers["network_0_7.app"].network_mode == "host"
    assert state.containers["network_0_7.sidecar"].network_mode == "container:network_0_7.app"
    assert len(warnings) == 2
    assert all("renamed in 0.8 to 'network_mode'" in w for w in warnings)


def test_path_tags_on_mappings_expand_first_level_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/op")
    state, warnings = _load("path_tags.yaml")
    assert not warnings
    mounts = {c: {m.target: m.source for m in s.mounts} for c, s in state.containers.items()}
    assert mounts["path_tags.web.instance1"] == {
        "/etc/nginx": "/home/op/config/nginx",
        "/etc/app": "/home/op/config/app1",
    }
    assert mounts["path_tags.web.instance2"] == {
        "/etc/nginx": "/home/op/config/nginx",
        "/etc/app": "/home/op/config/app",
    }


def test_fabric_guide_with_path_tags_resolves(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/op")
    state, _ = _load("fabric_guide.yaml")
    web = state.containers["fabric_guide.web_server"]
    assert ("/etc/nginx", "/home/op/nginx") in {(m.target, m.source) for m in web.mounts}
    app = state.containers["fabric_guide.app_server.instance2"]
    assert ("/var/lib/app/data", "/home/op/app2/data") in {(m.target, m.source) for m in app.mounts}


# --- refused, with one clear message each ----------------------------------------------------------------


def test_fabric_env_tag_names_docker_fabric_and_what_to_write() -> None:
    result = validate(INVALID / "fabric_env.yaml")
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"{INVALID / 'fabric_env.yaml'}:2:13: repository: '!env' is docker-fabric's tag")
    assert "`!path $registry_prefix`" in line


def test_value_at_fault_is_shown_at_its_own_line_and_column() -> None:
    result = validate(INVALID / "exposes_eighty.yaml")
    [line] = result.stderr.splitlines()
    assert line.startswith(f"{INVALID / 'exposes_eighty.yaml'}:3:17: web.exposes[80]: host_port: 'eighty'")


def test_validate_refuses_what_plan_would_block_with_file_line_and_key() -> None:
    result = validate(INVALID / "undeployable.yaml")
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"{INVALID / 'undeployable.yaml'}:3:25: web.exposes[8443][1]: interface 'private'")
    assert "(undeployable.web cannot be created)" in line


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("host_config: {mem_limit: 64x}", ":3:28: web.host_config.mem_limit: '64x' is not a size"),
        (
            "host_config: {restart_policy: always}",
            ":3:33: web.host_config.restart_policy: host_config.restart_policy must be",
        ),
        ("create_options: {environment: 5}", ":3:33: web.create_options.environment: environment must"),
    ],
)
def test_desired_state_problems_are_located(tmp_path: Path, option: str, expected: str) -> None:
    bad = tmp_path / "m.yaml"
    bad.write_text(f"web:\n  image: nginx\n  {option}\n")
    result = validate(bad)
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"{bad}{expected}"), line


def test_docker_py_keywords_and_types_are_checked() -> None:
    result = validate(INVALID / "bad_options.yaml")
    lines = result.stderr.splitlines()
    assert [line.split(": ", 2)[1] for line in lines] == [
        "web.create_options.privileged",
        "web.host_config.cpu_shares",
        "web.host_config.mem_limt",
    ]
    assert "is a host_config option" in lines[0]
    assert "cpu_shares must be a whole number, not str" in lines[1]
    assert "(did you mean 'mem_limit'?)" in lines[2]


def test_a_problem_through_extends_points_at_the_base(tmp_path: Path) -> None:
    bad = tmp_path / "m.yaml"
    bad.write_text("base:\n  abstract: true\n  host_config:\n    mem_limit: 1q\nweb:\n  extends: base\n")
    [line] = validate(bad).stderr.splitlines()
    assert line.startswith(f"{bad}:4:16: base.host_config.mem_limit: '1q' is not a size")


def test_keyword_lists_are_docker_pys() -> None:
    from docker.api.container import ContainerApiMixin
    from docker.types import HostConfig

    assert set(inspect.signature(ContainerApiMixin.create_container).parameters) - {"self"} == CREATE_KWARGS
    assert set(inspect.signature(HostConfig.__init__).parameters) - {"self"} == HOST_KWARGS


def test_a_rejected_map_never_echoes_secrets() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "reconciler", "validate", "--json", str(INVALID / "secret.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 1
    shown = result.stdout + result.stderr
    assert "hunter2" not in shown
    assert "s3cr3t" not in shown
    assert "the key looks secret" in json.loads(result.stdout)["problems"][0]["message"]


def test_legacy_key_beside_its_successor() -> None:
    """`network` and `network_mode` together: which one was meant? `start_options` and `host_config` merge."""
    with pytest.raises(MapError) as info:
        load_map_dict({"name": "m", "web": {"network": "host", "network_mode": "bridge"}})
    [problem] = info.value.problems
    assert problem.key_path == ("web", "network")
    assert "write only 'network_mode'" in problem.message
    both = load_map_dict(
        {"name": "m", "web": {"start_options": {"privileged": True, "init": True}, "host_config": {"init": False}}}
    )
    assert both.configs["web"].host_config == {"privileged": True, "init": False}
    [warning] = both.notes
    assert warning.severity is Severity.WARNING


def test_python_api_problems_carry_the_key_path() -> None:
    with pytest.raises(MapIntegrityError) as info:
        ContainerMap("m", {"web": {"exposes": {80: "eighty"}, "host_config": {"privileged": "x", "cpu_shares": "a"}}})
    keys = {p.key_path for p in info.value.problems}
    assert ("web", "exposes", 80) in keys or ("web", "exposes") in keys
    assert all(p.file == "<map m>" and p.line is None for p in info.value.problems)
    with pytest.raises(MapIntegrityError) as info:
        ContainerMap("m", {"web": {"host_config": {"cpu_shares": "a"}}})
    [problem] = info.value.problems
    assert problem.key_path == ("web", "host_config", "cpu_shares")
