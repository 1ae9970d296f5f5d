#!/usr/bin/env python3
"""Record real Engine API JSON (inspect and list output) from the local engine as test fixtures.

Unit tests of the observed-state parser and the drift rules are fed with these files instead of
hand-written engine JSON. Run as root with the engine up (scripts/engine.sh, scripts/test-images.sh):

    .venv/bin/python scripts/record-fixtures.py tests/fixtures/engine
    .venv/bin/python scripts/record-fixtures.py --normalisations tests/fixtures/engine

Everything it creates is named `fixture-rec.*`, labelled like reconciler's own objects, and removed again.
`--normalisations` records only `normalisations.json`: for each case the create arguments (in the shape of
reconciler's `executor/translate.py`: docker-py `create_container` kwargs, `host_config` kwargs) and what the
engine stored for them, where it differs from what was sent (cleaned paths, the image's HEALTHCHECK merged
field by field, link lists, `container:<name>` stored as `container:<id>`). `reconciler/testing/` models these;
`tests/unit/test_testing_normalisations.py` checks the fake against this file. Needs `reconciler-test/rich`.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import docker

IMAGE = "reconciler-test/busybox:latest"
LABELS = {
    "io.reconciler.managed": "true",
    "io.reconciler.map": "fix",
    "io.reconciler.kind": "container",
}


def save(out: Path, name: str, data: Any) -> None:
    (out / f"{name}.json").write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/engine")
    out.mkdir(parents=True, exist_ok=True)
    client = docker.from_env(timeout=60)
    api = client.api
    cleanup: list[tuple[str, str]] = []
    try:
        net = api.create_network("fixture-rec.net", driver="bridge", labels={**LABELS, "io.reconciler.kind": "network"})
        cleanup.append(("network", net["Id"]))
        vol = api.create_volume("fixture-rec.data", labels={**LABELS, "io.reconciler.kind": "volume"})
        cleanup.append(("volume", vol["Name"]))
        bind_dir = Path("/tmp/fixture-rec-bind")
        bind_dir.mkdir(exist_ok=True)
        trap = "trap 'exit 0' TERM; while :; do sleep 1; done"
        dep = api.create_container(
            IMAGE,
            ["sh", "-c", trap],
            name="fixture-rec.dep",
            labels={**LABELS, "io.reconciler.config": "dep"},
            host_config=api.create_host_config(network_mode="bridge"),
        )
        cleanup.append(("container", dep["Id"]))
        api.start(dep)
        main_c = api.create_container(
            IMAGE,
            ["sh", "-c", trap],
            name="fixture-rec.main",
            hostname="fixture-rec-main",
            user="2000",
            environment={"APP_MODE": "test", "DB_PASSWORD": "hunter2"},
            labels={**LABELS, "io.reconciler.config": "main", "io.reconciler.spec-hash": "abc"},
            ports=[80, (53, "udp")],
            healthcheck={"Test": ["CMD-SHELL", "true"], "Interval": 1_000_000_000, "Retries": 3},
            stop_signal="SIGINT",
            stop_timeout=3,
            volumes=["/scratch"],
            host_config=api.create_host_config(
                binds={str(bind_dir): {"bind": "/etc/app", "mode": "ro"}},
                mounts=[docker.types.Mount("/data", "fixture-rec.data", type="volume")],
                port_bindings={80: ("127.0.0.1", 18089)},
                links={"fixture-rec.dep": "db"},
                restart_policy={"Name": "on-failure", "MaximumRetryCount": 2},
                mem_limit="64m",
                cpu_shares=512,
                network_mode="bridge",
            ),
        )
        cleanup.append(("container", main_c["Id"]))
        api.start(main_c)
        api.connect_container_to_network(main_c, "fixture-rec.net", aliases=["web"])
        netc = api.create_container(
            IMAGE,
            ["sh", "-c", trap],
            name="fixture-rec.netmode",
            labels={**LABELS, "io.reconciler.config": "n"},
            host_config=api.create_host_config(network_mode=f"container:{dep['Id']}"),
        )
        cleanup.append(("container", netc["Id"]))
        exited = api.create_container(
            IMAGE,
            ["sh", "-c", "exit 3"],
            name="fixture-rec.exited",
            labels={**LABELS, "io.reconciler.config": "exited"},
        )
        cleanup.append(("container", exited["Id"]))
        api.start(exited)
        api.wait(exited, timeout=30)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            health = api.inspect_container(main_c)["State"].get("Health", {}).get("Status")
            if health == "healthy":
                break
            time.sleep(0.2)
        save(out, "container_main", api.inspect_container(main_c))
        save(out, "container_dep", api.inspect_container(dep))
        save(out, "container_netmode", api.inspect_container(netc))
        save(out, "container_exited", api.inspect_container(exited))
        save(out, "container_list", [c for c in api.containers(all=True) if c["Names"][0].startswith("/fixture-rec.")])
        save(out, "image", api.inspect_image(IMAGE))
        save(out, "volume", api.inspect_volume("fixture-rec.data"))
        save(out, "network", api.inspect_network(net["Id"]))
        save(out, "top_main", api.top(main_c))
    finally:
        for kind, ident in reversed(cleanup):
            try:
                if kind == "container":
                    api.remove_container(ident, force=True, v=True)  # and its anonymous volume (/scratch)
                elif kind == "volume":
                    api.remove_volume(ident, force=True)
                else:
                    api.remove_network(ident)
            except docker.errors.APIError as exc:
                print(f"cleanup of {kind} {ident}: {exc}", file=sys.stderr)


RICH = "reconciler-test/rich:latest"
TRAP_CMD = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]


def normalisation_cases(bind_dir: str) -> dict[str, dict[str, Any]]:
    """Create arguments whose stored form is not what was sent. `DEP` is replaced by the dependency's name."""
    return {
        "paths": {
            "image": IMAGE,
            "command": TRAP_CMD,
            "working_dir": "/srv/work/",
            "volumes": ["/etc/app/", "/scratch/"],
            "host_config": {"binds": [f"{bind_dir}:/etc/app/:ro"]},
        },
        "healthcheck_partial": {"image": RICH, "healthcheck": {"Test": ["CMD-SHELL", "true"]}},
        "healthcheck_no_test": {"image": RICH, "healthcheck": {"Interval": 2_000_000_000}},
        "healthcheck_none": {"image": RICH, "healthcheck": {"Test": ["NONE"]}},
        "healthcheck_full": {
            "image": RICH,
            "healthcheck": {
                "Test": ["CMD", "true"],
                "Interval": 1_000_000_000,
                "Timeout": 5_000_000_000,
                "Retries": 2,
                "StartPeriod": 1_000_000_000,
            },
        },
        "image_defaults": {"image": RICH},
        "two_link_aliases": {
            "image": IMAGE,
            "command": TRAP_CMD,
            "host_config": {"links": [["DEP", "first"], ["DEP", "second"]]},
        },
        "network_mode_container_name": {
            "image": IMAGE,
            "command": TRAP_CMD,
            "host_config": {"network_mode": "container:DEP"},
        },
    }


def record_normalisations(out: Path) -> None:
    client = docker.from_env(timeout=60)
    api = client.api
    created: list[str] = []
    bind_dir = Path("/tmp/fixture-rec-bind")
    bind_dir.mkdir(exist_ok=True)
    dep_name = "fixture-rec.ndep"
    recorded: dict[str, Any] = {"image_rich": api.inspect_image(RICH), "cases": {}}
    try:
        dep = api.create_container(IMAGE, TRAP_CMD, name=dep_name, labels={**LABELS, "io.reconciler.config": "ndep"})
        created.append(dep["Id"])
        api.start(dep)
        recorded["dependency_id"] = dep["Id"]
        for case, args in normalisation_cases(str(bind_dir)).items():
            sent = json.loads(
                json.dumps(args)
                .replace('"DEP"', json.dumps(dep_name))
                .replace("container:DEP", f"container:{dep_name}")
            )
            sent["labels"] = {**LABELS, "io.reconciler.config": case}
            kwargs = dict(sent)
            host = kwargs.pop("host_config", {})
            if "links" in host:
                host["links"] = [tuple(link) for link in host["links"]]
            name = f"fixture-rec.n-{case.replace('_', '-')}"
            ident = api.create_container(
                name=name,
                host_config=api.create_host_config(**host),
                **kwargs,
            )["Id"]
            created.append(ident)
            api.start(ident)
            recorded["cases"][case] = {"name": name, "args": sent, "inspect": api.inspect_container(ident)}
        save(out, "normalisations", recorded)
    finally:
        for ident in reversed(created):
            try:
                api.remove_container(ident, force=True, v=True)
            except docker.errors.APIError as exc:
                print(f"cleanup of container {ident}: {exc}", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--normalisations":
        record_normalisations(Path(sys.argv[2] if len(sys.argv) > 2 else "tests/fixtures/engine"))
    else:
        main()
