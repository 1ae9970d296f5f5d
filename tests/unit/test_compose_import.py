"""`reconciler import compose` over the corpus in tests/compose/ (as an operator runs it: a subprocess).

These need the `docker compose` binary (it normalises the files; no engine is asked), and read the map
they print as reconciler reads it: through the loader and the desired state `plan` builds.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from reconciler.model import combine_maps, load_map_text
from reconciler.model.compose import duration_ns
from reconciler.plan.desired import desired_state
from reconciler.plan.resources import ContainerSpec, DesiredState, Mount
from tests.cli import run_cli

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "compose"


PORTS = {"WEBAPP_PORT": "18231", "PROXY_PORT": "18232", "DNS_PORT": "18233"}  # the corpus's env files ask for them


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, env=PORTS)


def imported(project: str, *extra: str) -> tuple[str, str]:
    result = run("import", "compose", str(CORPUS / project / "compose.yaml"), *extra)
    assert result.returncode == 0, result.stderr
    return result.stdout, result.stderr


def desired(text: str) -> DesiredState:
    maps = combine_maps([load_map_text(text, "/tmp/imported.yaml")])
    state = desired_state(maps)
    assert not state.problems, state.problems
    return state


def spec(state: DesiredState, name: str) -> ContainerSpec:
    return state.containers[name]


@pytest.mark.parametrize("project", ["webapp", "network", "profiles", "limits", "unsupported", "kitchen"])
def test_every_corpus_project_imports_to_a_valid_map(project: str, tmp_path: Path) -> None:
    out = tmp_path / f"{project}.yaml"
    result = run("import", "compose", str(CORPUS / project / "compose.yaml"), "-o", str(out))
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert text.startswith(f"# Imported from docker compose project '{project}'")
    assert f"compose_project: {project}\n" in text
    checked = run("validate", str(out))
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip().endswith("valid")


def test_web_db_cache_keeps_start_order_health_waits_and_the_shared_volume() -> None:
    text, warnings = imported("webapp")
    assert warnings == ""
    state = desired(text)
    web, db, backup = spec(state, "webapp.web"), spec(state, "webapp.db"), spec(state, "webapp.backup")
    assert web.wait_healthy == ("webapp.db",)
    deps = {r.name for r in state.depends_on[web.id]}
    assert {"webapp.db", "webapp.cache"} <= deps
    # Named volumes: the compose project's own volume, used as it is (never created), by both services.
    assert Mount("/var/lib/db", "webapp_dbdata", "volume") in db.mounts
    assert Mount("/backup/db", "webapp_dbdata", "volume", read_only=True) in backup.mounts
    assert state.external_volumes == frozenset({"webapp_dbdata"})
    assert "webapp_dbdata" not in state.volumes
    assert [(p.container_port, p.host_port, p.host_ip) for p in web.ports] == [("8080/tcp", "18231", "127.0.0.1")]
    assert dict(web.restart_policy or ()) == {"Name": "unless-stopped"}
    assert dict(web.limits) == {"Memory": 64 * 1024 * 1024}
    assert dict(db.healthcheck or ())["Interval"] == 1_000_000_000
    assert db.stop_timeout == 5
    assert spec(state, "webapp.cache").user == "1000:1000"  # as compose runs it: user and group
    assert web.env["DB_HOST"] == "db"
    # compose's DNS names: every service is known by its name on its networks.
    assert web.endpoints[0].aliases == ("web",)


def test_networks_aliases_ports_and_shared_network_stack() -> None:
    text, _ = imported("network")
    state = desired(text)
    proxy, sidecar, app = spec(state, "network.proxy"), spec(state, "network.sidecar"), spec(state, "network.app")
    assert {(e.network, e.aliases) for e in proxy.endpoints} == {
        ("network.back", ("proxy",)),
        ("network.front", ("proxy", "www", "proxy.internal")),
    }
    assert state.networks["network.back"].internal is True
    assert sorted((p.container_port, p.host_port, p.host_ip) for p in proxy.ports) == [
        ("5353/udp", "18233", "127.0.0.2"),
        ("8080/tcp", "18232", "127.0.0.1"),
    ]
    assert Mount("/srv", str(CORPUS / "network" / "html"), "bind", read_only=True) in proxy.mounts
    assert sidecar.network_mode == "container:network.proxy"
    assert Mount("/logs", "network_logs", "volume") in sidecar.mounts
    assert app.hostname == "app-host"
    assert dict(proxy.labels) == {"org.example.role": "proxy"}


def test_profiles_env_files_and_extends_are_compose_s_own() -> None:
    without, _ = imported("profiles")
    assert "worker:" not in without
    assert "debug:" not in without
    text, _ = imported("profiles", "--profile", "jobs")
    state = desired(text)
    app = spec(state, "profiles.app")
    assert app.env == {"FROM_BASE": "yes", "FROM_ENV_FILE": "1", "SHARED": "inline"}
    assert app.stop_signal == "SIGTERM"
    workers = sorted(n for n in state.containers if n.startswith("profiles.worker"))
    assert workers == ["profiles.worker.1", "profiles.worker.2"]
    assert spec(state, "profiles.worker.2").compose_service == ("profiles", "worker", 2)
    assert "debug:" not in text


def test_project_name_option_names_the_map_and_its_volumes() -> None:
    text, _ = imported("webapp", "--project-name", "shop")
    state = desired(text)
    assert "shop.web" in state.containers
    assert state.external_volumes == frozenset({"shop_dbdata"})
    assert "compose_project: shop\n" in text


def test_several_files_merge_as_compose_merges_them() -> None:
    staging = str(CORPUS / "webapp" / "compose.staging.yaml")
    text, _ = _imported_files("webapp", staging)
    web = spec(desired(text), "webapp.web")
    assert web.env["APP_MODE"] == "staging"
    assert [(p.host_port, p.host_ip) for p in web.ports] == [("18241", "127.0.0.1")]
    assert "(tests/compose/webapp/compose.yaml, tests/compose/webapp/compose.staging.yaml)" in text.splitlines()[0]


def _imported_files(project: str, *more: str) -> tuple[str, str]:
    files = [
        str((CORPUS / project / "compose.yaml").relative_to(ROOT)),
        *(str(Path(m).relative_to(ROOT)) for m in more),
    ]
    result = run("import", "compose", *files)
    assert result.returncode == 0, result.stderr
    return result.stdout, result.stderr


def test_host_settings_and_replicas() -> None:
    text, _ = imported("limits")
    state = desired(text)
    one = spec(state, "limits.worker.1")
    assert "limits.worker.2" in state.containers
    assert dict(one.limits) == {
        "Memory": 48 * 1024 * 1024,
        "MemoryReservation": 16 * 1024 * 1024,
        "NanoCpus": 500_000_000,
        "PidsLimit": 64,
    }
    assert dict(one.restart_policy or ()) == {"Name": "on-failure", "MaximumRetryCount": 3}
    host = dict(one.host_extra)
    assert host["init"] is True
    assert host["read_only"] is True
    assert host["cap_drop"] == ("ALL",)
    assert host["cap_add"] == ("NET_BIND_SERVICE",)
    assert dict(host["extra_hosts"]) == {"db.example": "10.1.2.3"}
    assert host["dns"] == ("10.0.0.53",)
    assert dict(host["tmpfs"]) == {"/run": ""}
    assert host["shm_size"] == 32 * 1024 * 1024
    ulimits = [dict(u) for u in host["ulimits"]]
    assert {"name": "nofile", "soft": 1024, "hard": 2048} in ulimits
    assert {"name": "nproc", "soft": 512, "hard": 512} in ulimits
    assert dict(dict(host["log_config"])["config"]) == {"max-size": "1m"}


def test_the_other_service_keys() -> None:
    text, warnings = imported("kitchen")
    assert warnings.strip().splitlines() == [
        "warning: network 'fixed': its subnets are compose's network's too, and the engine refuses overlapping "
        "pools: `adopt` cannot take the project over while that network exists — `docker compose down` "
        "(without -v: the volumes stay), then `reconciler apply`",
        "warning: service 'worker': 'depends_on.app' as `started`: a map cannot wait for a one-shot service to finish",
    ]
    state = desired(text)
    app, db, worker = spec(state, "kitchen.app"), spec(state, "kitchen.db"), spec(state, "kitchen.worker")
    assert app.image == "registry.example/team/app:1.2"
    assert app.entrypoint == ("/entry.sh",)
    assert app.command == ("serve", "--port", "9000")
    assert app.stop_timeout == 90
    assert app.anonymous_volumes == ("/anonymous",)
    assert sorted((p.container_port, p.host_port) for p in app.ports) == [
        ("9000/tcp", None),
        ("9001/udp", None),
        ("9002/tcp", ""),  # published on a random host port, as compose does
    ]
    assert app.endpoints[0].links == (("kitchen.db", "database"),)
    host = dict(app.host_extra)
    assert (host["pid_mode"], host["ipc_mode"], host["privileged"]) == ("host", "shareable", True)
    assert dict(host["tmpfs"]) == {"/cache": "size=1048576"}
    assert (host["uts_mode"], host["cgroup_parent"], host["mem_swappiness"]) == ("host", "custom.slice", 10)
    assert dict(app.create_extra)["platform"] == "linux/amd64"
    assert dict(app.limits)["Memory"] == 128 * 1024 * 1024
    assert (dict(app.limits)["CpuQuota"], dict(app.limits)["CpuPeriod"]) == (50000, 100000)
    assert dict(db.healthcheck or ()) == {"Test": ("NONE",)}
    assert worker.volumes_from == ("kitchen.app:ro",)
    # compose's own external volume: used under its name, as every compose volume is.
    assert Mount("/shared", "preexisting-data", "volume") in worker.mounts
    assert state.external_volumes == frozenset({"preexisting-data"})
    assert worker.endpoints[0].ipv4_address == "10.213.57.10"
    assert dict(dict(state.networks["kitchen.fixed"].create_extra)["ipam"])["Driver"] == "default"


def test_what_a_map_cannot_express_is_one_warning_per_key_naming_the_service() -> None:
    text, warnings = imported("unsupported")
    lines = warnings.strip().splitlines()
    assert sorted(lines) == sorted(
        [
            "warning: service 'built': 'build' not imported: a map runs images and never builds them; "
            "the map runs the image compose builds",
            "warning: service 'secretive': 'secrets' not imported: secrets are not part of the map format: "
            "mount the file with `binds`",
            "warning: service 'secretive': 'configs' not imported: configs are not part of the map format: "
            "mount the file with `binds`",
            "warning: service 'secretive': 'deploy.placement' not imported: swarm only",
            "warning: service 'secretive': 'deploy.update_config' not imported: swarm only",
            "warning: service 'secretive': 'expose' not imported: port range 7000-7001 (list each port)",
        ]
    )
    # The import still succeeds; the map says what was left out.
    assert "# warning: service 'secretive': 'secrets' not imported" in text
    assert spec(desired(text), "unsupported.built").image == "unsupported-built:latest"


def test_strict_makes_warnings_errors(tmp_path: Path) -> None:
    out = tmp_path / "map.yaml"
    result = run("import", "compose", str(CORPUS / "unsupported" / "compose.yaml"), "--strict", "-o", str(out))
    assert result.returncode == 1
    assert "6 keys not imported (--strict)" in result.stderr
    assert not out.exists()
    clean = run("import", "compose", str(CORPUS / "webapp" / "compose.yaml"), "--strict")
    assert clean.returncode == 0, clean.stderr


def test_services_named_like_map_keys_go_under_containers(tmp_path: Path) -> None:
    file = tmp_path / "compose.yaml"
    file.write_text("name: odd\nservices:\n  host: {image: x}\n  web: {image: x, depends_on: [host]}\n")
    result = run("import", "compose", str(file))
    assert result.returncode == 0, result.stderr
    assert "\ncontainers:\n  host:\n" in result.stdout
    state = desired(result.stdout)
    assert {"odd.host", "odd.web"} <= set(state.containers)


def test_a_broken_compose_file_is_compose_s_error_and_exit_1(tmp_path: Path) -> None:
    bad = tmp_path / "compose.yaml"
    bad.write_text("services:\n  web:\n    image: x\n    depends_on: [nothere]\n")
    result = run("import", "compose", str(bad))
    assert result.returncode == 1
    assert result.stderr.startswith("error: docker compose config:")
    assert "Traceback" not in result.stderr


def test_go_durations() -> None:
    assert duration_ns("1m30s") == 90 * 10**9
    assert duration_ns("500ms") == 500 * 10**6
    assert duration_ns("1h") == 3600 * 10**9
    with pytest.raises(ValueError, match="not a duration"):
        duration_ns("soon")
