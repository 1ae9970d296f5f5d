"""`reconciler validate` and `reconciler schema` as an operator runs them (a real subprocess)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli import run_cli as run

ROOT = Path(__file__).resolve().parents[2]


def test_example_map_is_valid_and_shows_its_containers() -> None:
    result = run("validate", "config/example.yaml")
    assert result.returncode == 0, result.stderr
    assert "example.web" in result.stdout
    assert "example.app" in result.stdout
    assert result.stdout.strip().endswith("valid")


def test_invalid_map_exits_1_with_one_line_per_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: s\nweb:\n  imagee: nginx\n  links: app\n")
    result = run("validate", str(bad))
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert lines == [f"{bad}:3:3: web.imagee: unknown key 'imagee' (did you mean 'image'?)"]
    assert "Traceback" not in result.stderr


def test_validate_json(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: s\nweb:\n  links: ap\napp: {}\n")
    result = run("validate", "--json", str(bad))
    assert result.returncode == 1
    data = json.loads(result.stdout)
    assert data["valid"] is False
    [problem] = data["problems"]
    assert problem == {
        "file": str(bad),
        "line": 3,
        "column": 3,
        "key": "web.links",
        "message": "link to unknown config 'ap' (did you mean 'app'?)",
        "severity": "error",
    }
    good = run("validate", "--json", "config/example.yaml")
    assert good.returncode == 0
    assert json.loads(good.stdout)["maps"][0]["map"] == "example"


def test_a_folder_of_maps_and_a_missing_file(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("name: a\nweb: {}\n")
    (tmp_path / "b.yml").write_text("name: b\nweb: {}\n")
    (tmp_path / "notes.txt").write_text("not a map")
    result = run("validate", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "map a " in result.stdout
    assert "map b " in result.stdout
    missing = run("validate", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 1
    assert "cannot read map file" in missing.stderr


def test_usage_errors_exit_2() -> None:
    assert run("validate").returncode == 2
    assert run("validate", "--no-such-flag", "x").returncode == 2
    assert run("no-such-command").returncode == 2


def test_schema_is_json_schema_of_the_map_format() -> None:
    result = run("schema")
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    assert schema["$schema"].endswith("2020-12/schema")
    config = schema["$defs"]["ContainerConfig"]
    assert config["additionalProperties"] is False
    assert {"image", "binds", "attaches", "uses", "links", "exposes", "healthcheck"} <= set(config["properties"])
    # top-level unknown keys are container configs, as in docker-map
    assert schema["additionalProperties"] == {"$ref": "#/$defs/ContainerConfig"}


def test_map_limits_are_settings_of_the_command_line_and_the_daemon(tmp_path: Path) -> None:
    """The bounds the README names can be raised or lowered: `RECONCILER_MAP_MAX_*` for every command, the
    settings `map_max_*` for the daemon; a bad value is a usage error naming the setting."""
    from reconciler.daemon.settings import Settings
    from reconciler.model.limits import Limits

    big = tmp_path / "big.yaml"
    big.write_text("name: big\n" + "".join(f"c{i}: {{image: x}}\n" for i in range(30)))
    assert run("validate", str(big)).returncode == 0
    refused = run("validate", str(big), env={"RECONCILER_MAP_MAX_CONTAINERS": "10"})
    assert refused.returncode == 1
    assert "map_max_containers" in refused.stderr
    bad = run("validate", str(big), env={"RECONCILER_MAP_MAX_BYTES": "lots"})
    assert bad.returncode == 2
    assert "setting map_max_bytes: 'lots' is not a whole number" in bad.stderr
    assert Settings(map_max_depth=8).map_limits == Limits(max_depth=8)


@pytest.mark.parametrize(
    "text",
    ["", "# only a comment\n", "name: cut\n", "name: cut\nbase: {abstract: true, image: x}\n"],
    ids=["empty", "comment-only", "name-only", "abstract-only"],
)
def test_a_map_of_no_containers_is_refused(tmp_path: Path, text: str) -> None:
    """An empty or cut-off file is an accident, not a wish to remove everything: a daemon with --prune would
    otherwise take the whole map down at once."""
    path = tmp_path / "cut.yaml"
    path.write_text(text)
    result = run("validate", str(path))
    assert result.returncode == 1
    assert result.stderr.startswith(str(path))  # the file (and its line, where it has one)
    assert "the map defines no containers" in result.stderr


def test_nonsense_values_of_flags_are_usage_errors(tmp_path: Path) -> None:
    """A negative health gate, a pause of no time, and a release of what is not held say so (found by a
    new-user trial: they were accepted, or exited 0)."""
    example = str(Path(__file__).resolve().parents[2] / "config" / "example.yaml")
    assert run("apply", example, "--health-gate", "-1").returncode == 2
    assert run("pause", example, "--for", "0s").returncode == 2
    env = {"RECONCILER_STATE_DIR": str(tmp_path)}
    nothing = run("release", "nosuch", env=env)
    assert nothing.returncode == 1
    assert "nosuch: not held back" in nothing.stderr


def test_a_bad_setting_is_one_line_naming_the_setting() -> None:
    shown = run("run", "config", "--workers", "0")
    assert shown.returncode == 2
    assert shown.stderr.strip() == "error: invalid settings: workers: Input should be greater than or equal to 1"
