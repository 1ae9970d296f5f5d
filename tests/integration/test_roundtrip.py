"""Round trip on the real engine: a map applied is a map in sync (issue 10, item 2).

A hypothesis strategy builds container maps over every map key and docker-map short form against the local
test images (`reconciler-test/busybox`, and `reconciler-test/rich` with a HEALTHCHECK, ENTRYPOINT, ENV, USER,
VOLUME, EXPOSE and WORKDIR: see scripts/test-images.sh). For each example, through the command line
(in-process, as `reconciler …` would run):

1. `apply` succeeds;
2. `plan --detailed-exitcode` exits 0 — the plan is printed, with the map, when it does not;
3. the same map with its order-free lists reversed plans in sync too;
4. a second `apply` keeps every container id;
5. `down --volumes` and a sweep by the example's name prefix remove everything.

What `plan` expects must be what the engine stores: any drift after a fresh apply is a false drift, which the
daemon would "fix" by recreating a healthy container on every resync.

Bounded: `RECONCILER_ROUNDTRIP_EXAMPLES` examples (default 40), derandomized, no example database, no
shrinking unless `RECONCILER_ROUNDTRIP_SHRINK=1` (each shrink step is a real apply). A feature of the strategy
can be left out with `RECONCILER_ROUNDTRIP_EXCLUDE=feature,feature` while a fix is under way (the names are in
`FEATURES`); the committed test covers every feature. `test_minimal_map` holds the smallest maps that showed a
false drift, one per case, so each can be run alone: `-k 'test_minimal_map and trailing_slash'`.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from reconciler.model.schema import MAP_KEYS
from tests.conftest import SESSION, TEST_IMAGE, TEST_LABEL
from tests.integration.engine_helpers import TRAP, unique_map_name

RICH_IMAGE = "reconciler-test/rich:latest"
EXAMPLES = int(os.environ.get("RECONCILER_ROUNDTRIP_EXAMPLES", "40"))
SHRINK = os.environ.get("RECONCILER_ROUNDTRIP_SHRINK", "") == "1"
HEALTH_GATE = "30"

# Every feature the strategy draws, by name. Each is drawn independently per config (or per map).
FEATURES = frozenset(
    {
        "trailing_slash",  # a volume's container path written with a trailing slash
        "volume_dict",  # map-level volume as {default_path, user, permissions}
        "bind_alias",  # binds: alias, {alias: ro}, [alias, ro], {alias: rw}
        "bind_host_path",  # binds: [/path, host], {/path: [host, ro]}, [/path, host, ro]
        "host_per_instance",  # host: {alias: {default: …, <instance>: …}}
        "attach",  # attaches: alias, [alias, path], {alias: path}
        "uses_volume",  # uses: alias, [alias, ro], {alias: [path, ro]}, {alias: ro}
        "uses_config",  # uses: config / config.instance (volumes_from)
        "attached_parent_name",  # use_attached_parent_name: true (uses: config.alias)
        "shares",  # shares: [/path]
        "links",  # links: config, [config, alias]
        "link_two_aliases",  # two links to one container under two aliases
        "exposes",  # exposes: 8080, [8080, P, 127.0.0.1], {8080: [P, 127.0.0.1]}, {exposed_port: …}
        "exposes_udp",  # 5353/udp, exposed and published
        "networks",  # networks: [n], {n: null}, {n: {aliases: […]}}, two networks
        "network_links",  # networks: {n: {links: [config, [config, alias]]}}
        "network_mode_preset",  # network_mode: bridge / host / none
        "network_mode_config",  # network_mode: another config's container
        "network_mode_external",  # network_mode: container:<name> / /<name> of a container outside the map
        "user",  # user: 2000, "2000:2000", app, app:app, [2000, 2000]
        "permissions",  # permissions: u=rwX,g=rX,o= / 750 (with an attached volume)
        "healthcheck_full",  # every field, on either image
        "healthcheck_partial",  # some fields with a test, on the HEALTHCHECK image
        "healthcheck_no_test",  # fields without a test, on the HEALTHCHECK image (keeps the image's test)
        "healthcheck_none",  # healthcheck: NONE
        "healthcheck_short",  # string and list short forms
        "exec_plain",  # exec_commands: "sleep N", [sleep, N], [cmd, user], [cmd, user, initial]
        "exec_quoted",  # exec_commands with quotes
        "exec_shell",  # exec_commands through `sh -c`
        "instances",  # instances: [a, b]
        "extends",  # an abstract base and configs that extend it
        "env_dict",  # create_options.environment as a mapping
        "env_list",  # create_options.environment as a list of KEY=value
        "env_nonstr",  # environment values that are numbers or booleans in YAML
        "command_str",  # create_options.command as a string (shlex-split)
        "entrypoint",  # create_options.entrypoint (list or string)
        "init",  # host_config.init: true with a plain `sleep` command
        "labels",  # create_options.labels
        "working_dir",  # create_options.working_dir
        "hostname",  # create_options.hostname / domainname, set_hostname: false
        "limits",  # mem_limit, memswap_limit, cpu_shares, pids_limit (create_options or host_config)
        "restart_policy",  # host_config.restart_policy
        "stop",  # stop_signal, stop_timeout
        "overlap_binds",  # host_config.binds beside (or instead of) map binds
        "overlap_port_bindings",  # host_config.port_bindings (with create_options.ports)
        "overlap_links",  # host_config.links
        "overlap_volumes_from",  # host_config.volumes_from
        "overlap_ports",  # create_options.ports
        "overlap_volumes",  # create_options.volumes
        "reorder",  # the same map with binds/attaches/uses/shares/links/exposes/env lists reversed
    }
)
# Features left out for now (none in the committed test; see the module docstring).
EXCLUDED = frozenset(f for f in os.environ.get("RECONCILER_ROUNDTRIP_EXCLUDE", "").split(",") if f)
assert EXCLUDED <= FEATURES, f"unknown features in RECONCILER_ROUNDTRIP_EXCLUDE: {sorted(EXCLUDED - FEATURES)}"


# --- host ports: high, on 127.0.0.1, never the same twice in a session ------------------------------------

_port_base = 20000 + (int(SESSION[2:], 16) % 900) * 10
_used_ports: set[int] = set()


def _free(port: int) -> bool:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def next_port() -> int:
    global _port_base  # noqa: PLW0603 - one allocator per test session
    while True:
        port = _port_base
        _port_base = 20000 + (_port_base - 20000 + 1) % 10000
        if port not in _used_ports and _free(port):
            _used_ports.add(port)
            return port


# --- the strategy -------------------------------------------------------------------------------------------


@dataclass
class Config:
    name: str
    image: str
    instances: list[str] = field(default_factory=list)
    net: str = "bridge"  # bridge (default), "networks", "host", "none", "container"
    networks: list[str] = field(default_factory=list)
    attaches: list[str] = field(default_factory=list)  # aliases
    provides: bool = False  # has mounts another config can take with `uses: <config>`
    uses_aliases: list[str] = field(default_factory=list)
    uses_configs: list[str] = field(default_factory=list)
    body: dict[str, Any] = field(default_factory=dict)

    def refs(self) -> list[str]:
        """How others name its containers (config, or config.instance)."""
        return [f"{self.name}.{i}" for i in self.instances] if self.instances else [self.name]


class MapBuilder:
    """Draws one map; everything it names is unique within the map (paths, aliases, ports)."""

    def __init__(self, draw: Any, name: str, external: str) -> None:
        self.draw = draw
        self.name = name
        self.external = external
        self.paths = 0
        self.volumes: dict[str, Any] = {}
        self.host: dict[str, Any] = {}
        self.networks: dict[str, Any] = {}
        self.configs: list[Config] = []
        self.features: set[str] = set()
        self.doc: dict[str, Any] = {"name": name}
        self.base: dict[str, Any] = {}  # the abstract base config, when there is one

    def use(self, feature: str, p: float = 0.5) -> bool:
        """Draw whether this feature is used here (never when excluded)."""
        if feature in EXCLUDED:
            return False
        chance = st.just(True) if p >= 1 else st.booleans() if p == 0.5 else st.floats(0, 1).map(lambda x: x < p)
        hit = bool(self.draw(chance))
        if hit:
            self.features.add(feature)
        return hit

    def choice(self, options: list[Any]) -> Any:
        return self.draw(st.sampled_from(options))

    def listed(self, items: list[Any]) -> Any:
        """docker-map's "one item or a list": a lone name or number may stand alone (a lone list or mapping
        may not: it would read as a list of items, or as `key: value` items)."""
        if len(items) == 1 and isinstance(items[0], (str, int)) and self.draw(st.booleans()):
            return items[0]
        return items

    def path(self, stem: str) -> str:
        self.paths += 1
        path = f"/srv/{stem}{self.paths}"
        return path + "/" if self.use("trailing_slash", 0.3) else path

    def volume_alias(self, *, attached: bool) -> str:
        alias = f"v{len(self.volumes)}"
        path = self.path("vol")
        if attached and self.use("volume_dict", 0.25):
            entry: dict[str, Any] = {"default_path": path, "user": self.choice(["2000:2000", "app", 2000])}
            self.features.add("user")
            if self.use("permissions", 0.5):
                entry["permissions"] = self.choice(["u=rwX,g=rX,o=", "750"])
            self.volumes[alias] = entry
        else:
            self.volumes[alias] = path
        return alias

    # -- one config --------------------------------------------------------------------------------------

    def config(self, index: int, bases: list[str]) -> Config:
        image = self.choice([TEST_IMAGE, RICH_IMAGE])
        cfg = Config(name=f"c{index}", image=image)
        body = cfg.body
        body["image"] = image
        if bases and self.use("extends", 0.5):
            body["extends"] = self.choice(bases)
        if self.use("instances", 0.25):
            body["instances"] = self.choice([["a", "b"], "a"])  # a list, or one name
            cfg.instances = [body["instances"]] if isinstance(body["instances"], str) else body["instances"]
        self.network(cfg)
        if cfg.net not in ("bridge", "networks") and "exposes" in self.base:
            body.pop("extends", None)  # the engine refuses exposed ports beside another container's network
        self.command(cfg)
        self.mounts(cfg)
        self.ports(cfg)
        self.links(cfg)
        self.identity(cfg)
        self.healthcheck(cfg)
        self.exec_commands(cfg)
        self.options(cfg)
        return cfg

    def network(self, cfg: Config) -> None:
        earlier = [c for c in self.configs if c.net in ("bridge", "networks")]
        roll = self.choice(["default", "default", "default", "networks", "networks", "preset", "config", "external"])
        if roll == "networks" and self.use("networks", 1):
            cfg.net = "networks"
            count = self.draw(st.integers(1, 2))
            for n in range(count):
                net = f"n{n}"
                self.networks.setdefault(net, self.choice([None, {"driver": "bridge"}, {"internal": False}]))
                cfg.networks.append(net)
            entries: dict[str, Any] = {}
            for net in cfg.networks:
                entry: dict[str, Any] | None = None
                if self.draw(st.booleans()):
                    entry = {"aliases": [f"{cfg.name}-{net}-alias"]}
                peers = [c for c in self.configs if net in c.networks and not c.instances]
                if peers and self.use("network_links", 0.6):
                    target = self.choice(peers)
                    link = self.choice([target.name, [target.name, f"{target.name}-via-{net}"]])
                    entry = {**(entry or {}), "links": [link]}
                entries[net] = entry
            form = self.draw(st.integers(0, 2))
            if form == 0 and all(v is None for v in entries.values()):
                cfg.body["networks"] = list(entries)
            elif form == 1:
                cfg.body["networks"] = [[k, v] if v else k for k, v in entries.items()]
            else:
                cfg.body["networks"] = entries
        elif roll == "preset" and self.use("network_mode_preset", 1):
            cfg.net = self.choice(["bridge", "host", "none"])
            cfg.body["network_mode"] = cfg.net  # explicit bridge: still no legacy links (see `links`)
        elif roll == "config" and earlier and self.use("network_mode_config", 1):
            target = self.choice(earlier)
            cfg.net = "container"
            cfg.body["network_mode"] = self.choice(target.refs())
        elif roll == "external" and self.use("network_mode_external", 1):
            cfg.net = "container"
            cfg.body["network_mode"] = self.choice([f"container:{self.external}", f"/{self.external}"])

    def command(self, cfg: Config) -> None:
        create = cfg.body.setdefault("create_options", {})
        host = cfg.body.setdefault("host_config", {})
        if self.use("init", 0.2):
            host["init"] = True
            create["command"] = self.choice(["sleep 3600", ["sleep", "3600"]])
            return
        if cfg.image == TEST_IMAGE:
            if self.use("entrypoint", 0.3):
                create["entrypoint"] = self.choice([["sh", "-c"], "sh -c", ["/bin/sh", "-c"]])
                create["command"] = [TRAP]
            elif self.use("command_str", 0.4):
                create["command"] = f'sh -c "{TRAP}"'
            else:
                create["command"] = ["sh", "-c", TRAP]
        elif self.use("entrypoint", 0.25):
            create["entrypoint"] = self.choice([["/usr/local/bin/entry"], "/usr/local/bin/entry"])
            create["command"] = ["sh", "-c", TRAP]
        elif self.draw(st.booleans()):
            create["command"] = self.choice([["sh", "-c", TRAP], f'sh -c "{TRAP}"'])
            if isinstance(create["command"], str):
                self.features.add("command_str")
        # else: the rich image's own entrypoint idles

    def mounts(self, cfg: Config) -> None:
        body = cfg.body
        binds: list[Any] = []
        if self.use("bind_alias", 0.4):
            alias = self.volume_alias(attached=False)
            if cfg.instances and self.use("host_per_instance", 0.5):
                self.host[alias] = {"default": f"host/{alias}", cfg.instances[0]: f"host/{alias}-{cfg.instances[0]}"}
            else:
                self.host[alias] = f"host/{alias}"
            binds.append(self.choice([alias, {alias: "ro"}, [alias, "ro"], {alias: "rw"}, [alias]]))
        if self.use("bind_host_path", 0.3):
            target = self.path("bind")
            host = f"host/b{self.paths}"
            binds.append(self.choice([[target, host], {target: [host, "ro"]}, [target, host, "ro"], {target: host}]))
        if binds:
            body["binds"] = self.listed(binds)
            cfg.provides = True
        if self.use("attach", 0.4):
            alias = self.volume_alias(attached=True)
            cfg.attaches.append(alias)
            if self.draw(st.booleans()):
                body["attaches"] = self.choice([alias, [alias]])
            else:
                custom = self.path("att")
                body["attaches"] = self.choice([[[alias, custom]], {alias: custom}])
            cfg.provides = True
            if self.use("permissions", 0.4):
                body["permissions"] = self.choice(["u=rwX,g=rX,o=", "750", 755])
                if "user" not in body:
                    body["user"] = self.choice([2000, "2000:2000", "app"])
                    self.features.add("user")
        if self.use("shares", 0.2):
            body["shares"] = [self.path("share")]
            cfg.provides = True
        uses: list[Any] = []
        attached = [(c, a) for c in self.configs for a in c.attaches]
        providers = [c for c in self.configs if c.provides and not c.uses_configs and not c.uses_aliases]
        if providers and self.use("uses_config", 0.3):
            provider = self.choice(providers)
            cfg.uses_configs.append(provider.name)
            ref = self.choice([provider.name, *provider.refs()])  # all its instances, or one
            uses.append(self.choice([ref, [ref, "ro"], {ref: "ro"}]))
        taken = {a for c in self.configs if c.name in cfg.uses_configs for a in c.attaches}
        attached = [(c, a) for c, a in attached if a not in taken]
        if attached and self.use("uses_volume", 0.4):
            owner, alias = self.choice(attached)
            cfg.uses_aliases.append(alias)
            ref = f"{owner.name}.{alias}" if self.doc.get("use_attached_parent_name") else alias
            uses.append(self.choice([ref, [ref, "ro"], {ref: [self.path("use"), "ro"]}, [ref, None], {ref: "ro"}]))
        if uses:
            body["uses"] = self.listed(uses)

    def ports(self, cfg: Config) -> None:
        if cfg.net not in ("bridge", "networks") or not self.use("exposes", 0.4):
            return
        publish = not cfg.instances
        ports: list[Any] = []
        form = self.draw(st.integers(0, 4 if publish else 0))
        if form == 0:
            ports.append(self.choice([8080, "8080", 9000]))
        elif form == 1:
            ports.append([8080, next_port(), "127.0.0.1"])
        elif form == 2:
            ports.append({"exposed_port": 8080, "host_port": next_port(), "interface": "127.0.0.1"})
        elif form == 3:
            ports.append([9000, [next_port(), "127.0.0.1"]])
        else:
            ports.append([9000, {"host_port": next_port(), "interface": "127.0.0.1"}])
        if self.use("exposes_udp", 0.4):
            ports.append(["5353/udp", next_port(), "127.0.0.1"] if publish else "5353/udp")
        if self.draw(st.booleans()) and all(isinstance(p, list) and len(p) == 3 for p in ports):
            cfg.body["exposes"] = {p[0]: [p[1], p[2]] for p in ports}  # the mapping short form
        else:
            cfg.body["exposes"] = self.listed(ports)

    def links(self, cfg: Config) -> None:
        if cfg.net != "bridge" or "network_mode" in cfg.body:
            return
        targets = [c for c in self.configs if c.net == "bridge" and "network_mode" not in c.body]
        if not targets or not self.use("links", 0.5):
            return
        target = self.choice(targets)
        ref = self.choice(target.refs())
        links: list[Any] = [self.choice([ref, [ref, f"{target.name}-alias"], [ref]])]
        if self.use("link_two_aliases", 0.4):
            links = [[ref, "first"], [ref, "second"]]
        cfg.body["links"] = self.listed(links)

    def identity(self, cfg: Config) -> None:
        if "user" not in cfg.body and self.use("user", 0.3):
            cfg.body["user"] = self.choice([2000, "2000:2000", "app", "app:app", [2000, 2000], 0, "nobody"])
        if self.use("stop", 0.4):
            cfg.body["stop_signal"] = self.choice(["SIGTERM", "SIGINT", "TERM"])
        cfg.body["stop_timeout"] = self.choice([1, 2])

    def healthcheck(self, cfg: Config) -> None:
        rich = cfg.image == RICH_IMAGE
        roll = self.draw(st.integers(0, 5))
        check: Any
        if roll == 0 and self.use("healthcheck_full", 1):
            check = {"test": self.choice([["CMD", "true"], "true", ["true"]]), "interval": "1s"}
            check |= {"timeout": "5s", "retries": 3, "start_period": self.choice(["1s", 1_000_000_000])}
        elif roll == 1 and rich and self.use("healthcheck_partial", 1):
            check = self.choice([{"test": "true"}, {"test": ["CMD-SHELL", "exit 0"], "retries": 5}])
        elif roll == 2 and rich and self.use("healthcheck_no_test", 1):
            check = self.choice([{"interval": "2s"}, {"retries": 5}, {"timeout": "4s", "start_period": "1s"}])
        elif roll == 3 and self.use("healthcheck_none", 1):
            check = self.choice(["NONE", {"test": "NONE"}])
        elif roll == 4 and self.use("healthcheck_short", 1):
            check = self.choice([["true", "1s"], [["CMD", "true"], "1s", "3s", 2]])
        else:
            return
        cfg.body["healthcheck"] = check

    def exec_commands(self, cfg: Config) -> None:
        if cfg.instances and self.draw(st.booleans()):
            return
        commands: list[Any] = []
        if self.use("exec_plain", 0.3):
            commands.append(
                self.choice(["sleep 3601", ["sleep", "3602"], ["sleep 3603", 2000], ["touch /tmp/x", 0, "initial"]])
            )
        if self.use("exec_quoted", 0.15):
            commands.append(self.choice(["sh -c 'sleep 3604'", 'sleep "3605"']))
        if self.use("exec_shell", 0.15):
            commands.append(self.choice(["sh -c 'sleep 3606; true'", {"cmd": ["sh", "-c", "sleep 3607"]}]))
        if commands:
            cfg.body["exec_commands"] = self.listed(commands)

    def options(self, cfg: Config) -> None:
        create: dict[str, Any] = cfg.body["create_options"]
        host: dict[str, Any] = cfg.body["host_config"]
        if self.use("env_dict", 0.4):
            env: dict[str, Any] = {"APP_FLAVOUR": "plain", "APP_MODE": "map"}
            if self.use("env_nonstr", 0.3):
                env |= {"WORKERS": 4, "DEBUG": self.choice([True, False]), "RATIO": 0.5}
            create["environment"] = env
        elif self.use("env_list", 0.3):
            create["environment"] = ["APP_FLAVOUR=list", "EMPTY=", "APP_HOME=/tmp"]
        if self.use("labels", 0.3):
            create["labels"] = {"com.example.team": "ops", "com.example.tier": self.choice(["a", "b"])}
        if self.use("working_dir", 0.2):
            create["working_dir"] = self.choice(["/tmp", "/srv/app/"])
        if cfg.net in ("bridge", "networks") and self.use("hostname", 0.2):
            create["hostname"] = f"h-{cfg.name}"
            if self.draw(st.booleans()):
                create["domainname"] = "example.test"
        if self.use("limits", 0.3):
            target = self.choice([create, host])
            target["mem_limit"] = self.choice(["64m", 67108864, "128M"])
            if self.draw(st.booleans()):
                target["memswap_limit"] = self.choice(["256m", -1])
            if self.draw(st.booleans()):
                target["cpu_shares"] = 512
            if self.draw(st.booleans()):
                target["pids_limit"] = 100
        if self.use("restart_policy", 0.3):
            host["restart_policy"] = self.choice(
                [{"Name": "always"}, {"Name": "unless-stopped"}, {"Name": "on-failure", "MaximumRetryCount": 2}]
            )
        if self.use("overlap_binds", 0.15):
            self.paths += 1
            target = f"/srv/over{self.paths}"
            source = f"{self.host_root}/over{self.paths}"
            host["binds"] = self.choice([[f"{source}:{target}:ro"], {source: {"bind": target, "mode": "rw"}}])
        if cfg.net in ("bridge", "networks") and not cfg.instances and self.use("overlap_port_bindings", 0.15):
            port = next_port()
            binding = {"HostIp": "127.0.0.1", "HostPort": port}
            host["port_bindings"] = self.choice([{7000: binding}, {"7000/tcp": [binding]}])
            create["ports"] = [7000]
            self.features.add("overlap_ports")
        elif cfg.net in ("bridge", "networks") and self.use("overlap_ports", 0.1):
            create["ports"] = [7001]
        linkable = [c for c in self.configs if c.net == "bridge" and "network_mode" not in c.body]
        if cfg.net == "bridge" and "network_mode" not in cfg.body and linkable and self.use("overlap_links", 0.15):
            target = self.choice(linkable)
            host["links"] = {f"{self.name}.{self.choice(target.refs())}": "hc-link"}
        plain = [c for c in self.configs if c.provides and not c.uses_configs and c.name not in cfg.uses_configs]
        plain = [c for c in plain if not set(c.attaches) & set(cfg.uses_aliases)]
        if plain and not cfg.uses_configs and self.use("overlap_volumes_from", 0.15):
            target = self.choice(plain)
            host["volumes_from"] = [f"{self.name}.{r}" for r in target.refs()]
        if self.use("overlap_volumes", 0.15):
            create["volumes"] = [self.path("anon")]
        if not create:
            del cfg.body["create_options"]
        if not host:
            del cfg.body["host_config"]

    # -- the whole map -----------------------------------------------------------------------------------

    def build(self, host_root: str) -> dict[str, Any]:
        self.host_root = host_root
        doc = self.doc
        doc["host_root"] = host_root
        if self.use("hostname", 0.1):
            doc["set_hostname"] = False
        if self.use("attached_parent_name", 0.2):
            doc["use_attached_parent_name"] = True
        bases: list[str] = []
        base_bodies: dict[str, dict[str, Any]] = {}
        if self.use("extends", 0.3):
            bases.append("base")
            base: dict[str, Any] = {"abstract": True, "stop_timeout": 1}
            if self.draw(st.booleans()):
                base["create_options"] = {"environment": {"FROM_BASE": "1"}, "labels": {"com.example.base": "yes"}}
            if self.draw(st.booleans()):
                base["exposes"] = [9100]
            if self.draw(st.booleans()):
                base["user"] = 2000
            base_bodies["base"] = self.base = base
        count = self.choice([3, 2, 4, 1])  # dependencies between configs need more than one
        for index in range(count):
            cfg = self.config(index, bases)
            self.configs.append(cfg)
        containers: dict[str, Any] = dict(base_bodies)
        for cfg in self.configs:
            containers[cfg.name] = cfg.body
        doc["containers"] = containers
        if self.volumes:
            doc["volumes"] = self.volumes
        if self.host:
            doc["host"] = self.host
        if self.networks:
            doc["networks"] = self.networks
        return doc


REORDERED = ("binds", "attaches", "uses", "shares", "links", "exposes")


def reordered(doc: dict[str, Any]) -> dict[str, Any]:
    """The same map with its order-free lists (and mapping short forms) reversed."""
    out: dict[str, Any] = yaml.safe_load(yaml.safe_dump(doc))
    configs = out.get("containers") or {k: v for k, v in out.items() if k not in MAP_KEYS}
    for body in configs.values():
        for key in REORDERED:
            value = body.get(key)
            if isinstance(value, list):  # always a list of items here (never a lone `[alias, ro]`)
                body[key] = list(reversed(value))
            elif isinstance(value, dict):
                body[key] = dict(reversed(list(value.items())))
        env = (body.get("create_options") or {}).get("environment")
        if isinstance(env, list):
            body["create_options"]["environment"] = list(reversed(env))
    return out


@st.composite
def container_maps(draw: Any, external: str) -> tuple[dict[str, Any], frozenset[str]]:
    builder = MapBuilder(draw, unique_map_name("rt"), external)
    doc = builder.build("HOST_ROOT")
    return doc, frozenset(builder.features)


# --- running one example ------------------------------------------------------------------------------------


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str


def cli(*args: str) -> Outcome:
    """`reconciler …` in-process (the same entry point as the command; a fresh engine connection each time)."""
    from typer.testing import CliRunner

    from reconciler import cli as cli_module

    result = CliRunner().invoke(cli_module.app, ["--log-level", "warning", "--log-json", *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Outcome(result.exit_code, result.stdout, result.stderr)


def sweep(client: Any, name: str) -> None:
    """Whatever `down --volumes` left of map `name` (containers, volumes, networks named after it)."""
    prefix = f"{name}."
    for c in client.api.containers(all=True, filters={"name": name}):
        if any(n.lstrip("/").startswith(prefix) for n in c["Names"]):
            client.api.remove_container(c["Id"], force=True, v=True)
    for v in client.api.volumes().get("Volumes") or []:
        if v["Name"].startswith(prefix):
            client.api.remove_volume(v["Name"], force=True)
    for n in client.api.networks():
        if n["Name"].startswith(prefix):
            client.api.remove_network(n["Id"])


def container_ids(client: Any, name: str) -> dict[str, str]:
    found = client.api.containers(all=True, filters={"label": f"io.reconciler.map={name}"})
    return {c["Names"][0].lstrip("/"): c["Id"] for c in found}


def drift_details(map_file: Path) -> str:
    """The plan's reasons in full (the text plan shortens long values)."""
    result = cli("plan", str(map_file), "--json")
    try:
        plan = json.loads(result.stdout)
    except ValueError:
        return result.stdout + result.stderr
    actions = [a for wave in plan.get("waves", []) for a in wave]
    lines = [f"  {a['action']} {a['name']}: {r}" for a in actions for r in a.get("reasons", [])]
    lines += [f"  blocked {b}" for b in plan.get("blocked", [])]
    return "--- reasons in full ---\n" + "\n".join(lines) + "\n"


def round_trip(client: Any, doc: dict[str, Any], workdir: Path, features: frozenset[str] = frozenset()) -> None:
    """Apply `doc`, then it must plan in sync (also reordered) and a second apply must keep every id."""
    name = doc["name"]
    text = yaml.safe_dump(doc, sort_keys=False).replace("HOST_ROOT", str(workdir))
    map_file = workdir / f"{name}.yaml"
    map_file.write_text(text)
    shown = f"features: {sorted(features)}\n--- map ---\n{text}"
    try:
        done = cli("apply", str(map_file), "--health-gate", HEALTH_GATE)
        assert done.code == 0, f"apply failed ({done.code}):\n{done.stdout}{done.stderr[-3000:]}\n{shown}"
        plan = cli("plan", str(map_file), "--detailed-exitcode")
        if plan.code != 0:
            pytest.fail(
                f"false drift after apply:\n{plan.stdout}{plan.stderr[-2000:]}{drift_details(map_file)}{shown}",
                pytrace=False,
            )
        if "reorder" in features:
            other = workdir / f"{name}.reordered.yaml"
            other_text = yaml.safe_dump(reordered(doc), sort_keys=False).replace("HOST_ROOT", str(workdir))
            other.write_text(other_text)
            plan = cli("plan", str(other), "--detailed-exitcode")
            if plan.code != 0:
                pytest.fail(
                    f"false drift after reordering lists:\n{plan.stdout}{plan.stderr[-2000:]}"
                    f"{drift_details(other)}{shown}--- reordered ---\n{other_text}",
                    pytrace=False,
                )
        ids = container_ids(client, name)
        again = cli("apply", str(map_file), "--health-gate", HEALTH_GATE)
        assert again.code == 0, f"second apply failed:\n{again.stdout}{again.stderr[-3000:]}\n{shown}"
        after = container_ids(client, name)
        assert after == ids, f"a second apply replaced containers: {ids} -> {after}\n{again.stdout}\n{shown}"
    finally:
        with contextlib.suppress(Exception):
            cli("down", str(map_file), "--volumes")
        sweep(client, name)


# --- fixtures -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def external(docker_client: Any) -> Iterator[str]:
    """A running container outside every map, for `network_mode: container:<name>` (ours: test-labelled)."""
    try:
        docker_client.images.get(RICH_IMAGE)
    except Exception as exc:
        pytest.fail(f"the test image {RICH_IMAGE} is missing ({exc}); run scripts/test-images.sh", pytrace=False)
    name = f"{SESSION}-rtexternal"
    try:
        docker_client.containers.run(
            TEST_IMAGE, ["sh", "-c", TRAP], name=name, detach=True, labels={TEST_LABEL: SESSION}
        )
        yield name
    finally:
        with contextlib.suppress(Exception):
            docker_client.api.remove_container(name, force=True, v=True)


# --- the property -------------------------------------------------------------------------------------------

_stats: dict[str, Any] = {"examples": 0, "features": set()}


@pytest.mark.timeout(1800)
def test_round_trip(docker_client: Any, external: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    started = time.monotonic()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate, *([Phase.shrink] if SHRINK else [])],
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )
    @given(data=container_maps(external))
    def check(data: tuple[dict[str, Any], frozenset[str]]) -> None:
        doc, features = data
        _stats["examples"] += 1
        _stats["features"] |= features
        round_trip(docker_client, doc, tmp_path_factory.mktemp("rt"), features)

    try:
        check()
    finally:
        seconds = time.monotonic() - started
        missing = sorted(FEATURES - EXCLUDED - _stats["features"])
        print(f"\nround trip: {_stats['examples']} examples in {seconds:.0f} s; features never drawn: {missing}")


# --- the smallest maps that showed a false drift on the engine --------------------------------------------

RUN = 'stop_timeout: 1\n  create_options: {command: [sh, -c, "TRAP"]}'  # a busybox config that keeps running
MINIMAL: dict[str, str] = {  # case name -> map body (IMAGE, RICH, TRAP, EXTERNAL and RUN are filled in)
    "trailing_slash_bind": f"""
volumes: {{cfg: /etc/app/}}
host: {{cfg: cfg}}
app:
  image: IMAGE
  binds: cfg
  {RUN}
""",
    "trailing_slash_attach": f"""
volumes: {{data: /srv/data/}}
app:
  image: IMAGE
  attaches: data
  {RUN}
""",
    "trailing_slash_shares": f"""
app:
  image: IMAGE
  shares: [/scratch/]
  {RUN}
""",
    "trailing_slash_host_path_bind": f"""
app:
  image: IMAGE
  binds: {{/etc/app/: [cfg, ro]}}
  {RUN}
""",
    "link_two_aliases": f"""
db:
  image: IMAGE
  {RUN}
app:
  image: IMAGE
  links: [[db, first], [db, second]]
  {RUN}
""",
    "healthcheck_partial": """
app:
  image: RICH
  stop_timeout: 1
  healthcheck: {test: "true"}
""",
    "healthcheck_no_test": """
app:
  image: RICH
  stop_timeout: 1
  healthcheck: {interval: 2s}
""",
    "network_mode_external": """
app:
  image: RICH
  stop_timeout: 1
  network_mode: container:EXTERNAL
""",
    "network_mode_external_slash": """
app:
  image: RICH
  stop_timeout: 1
  network_mode: /EXTERNAL
""",
    "reorder_binds": f"""
volumes: {{one: /srv/one, two: /srv/two}}
host: {{one: one, two: two}}
app:
  image: IMAGE
  binds: [one, two]
  {RUN}
""",
    "reorder_exposes": f"""
app:
  image: IMAGE
  exposes: [8080, 9090]
  {RUN}
""",
    "reorder_links": f"""
db:
  image: IMAGE
  {RUN}
cache:
  image: IMAGE
  {RUN}
app:
  image: IMAGE
  links: [db, cache]
  {RUN}
""",
    "reorder_attaches": f"""
volumes: {{one: /srv/one, two: /srv/two}}
app:
  image: IMAGE
  attaches: [one, two]
  {RUN}
""",
    "reorder_shares": f"""
app:
  image: IMAGE
  shares: [/srv/one, /srv/two]
  {RUN}
""",
    "overlap_host_config_binds": """
app:
  image: IMAGE
  stop_timeout: 1
  create_options: {command: [sh, -c, "TRAP"]}
  host_config: {binds: ["HOST_ROOT/extra:/srv/extra:ro"]}
""",
    "overlap_host_config_binds_with_map_binds": """
volumes: {cfg: /etc/app}
host: {cfg: cfg}
app:
  image: IMAGE
  binds: cfg
  stop_timeout: 1
  create_options: {command: [sh, -c, "TRAP"]}
  host_config: {binds: ["HOST_ROOT/extra:/srv/extra:ro"]}
""",
    "overlap_port_bindings": """
app:
  image: IMAGE
  stop_timeout: 1
  create_options: {command: [sh, -c, "TRAP"], ports: [7000]}
  host_config: {port_bindings: {7000: {HostIp: 127.0.0.1, HostPort: PORT}}}
""",
    "overlap_create_options_ports": """
app:
  image: IMAGE
  stop_timeout: 1
  create_options: {command: [sh, -c, "TRAP"], ports: [7001]}
""",
    "overlap_links": f"""
db:
  image: IMAGE
  {RUN}
app:
  image: IMAGE
  stop_timeout: 1
  create_options: {{command: [sh, -c, "TRAP"]}}
  host_config: {{links: {{MAP.db: hc}}}}
""",
    "overlap_volumes_from": f"""
db:
  image: IMAGE
  shares: [/srv/shared]
  {RUN}
app:
  image: IMAGE
  stop_timeout: 1
  create_options: {{command: [sh, -c, "TRAP"]}}
  host_config: {{volumes_from: [MAP.db]}}
""",
    "overlap_create_options_volumes": """
app:
  image: IMAGE
  stop_timeout: 1
  create_options: {command: [sh, -c, "TRAP"], volumes: [/srv/anon]}
""",
    "healthcheck_none_on_image_with_healthcheck": """
app:
  image: RICH
  stop_timeout: 1
  healthcheck: NONE
""",
    "healthcheck_short_form": """
app:
  image: RICH
  stop_timeout: 1
  healthcheck: ["true", 1s]
""",
    "exec_long": f"""
app:
  image: IMAGE
  exec_commands: ["sleep 3600 3600 3600 3600 3600 3600 3600 3600"]
  {RUN}
""",
    "exec_quoted": f"""
app:
  image: IMAGE
  exec_commands: ["sh -c 'sleep 3604'"]
  {RUN}
""",
    "exec_double_quoted": f"""
app:
  image: IMAGE
  exec_commands: ['sleep "3605"']
  {RUN}
""",
    "exec_shell": f"""
app:
  image: IMAGE
  exec_commands: [{{cmd: [sh, -c, "sleep 3606; true"]}}]
  {RUN}
""",
    "env_nonstr": """
app:
  image: IMAGE
  stop_timeout: 1
  create_options: {command: [sh, -c, "TRAP"], environment: {DEBUG: true, WORKERS: 4}}
""",
}


@pytest.mark.parametrize("case", sorted(MINIMAL))
def test_minimal_map(case: str, docker_client: Any, external: str, tmp_path: Path) -> None:
    body = (
        MINIMAL[case]
        .replace("RICH", RICH_IMAGE)
        .replace("IMAGE", TEST_IMAGE)
        .replace("TRAP", TRAP)
        .replace("EXTERNAL", external)
    )
    name = unique_map_name("min")
    doc = yaml.safe_load(body.replace("MAP", name).replace("PORT", str(next_port())))
    doc = {"name": name, "host_root": "HOST_ROOT", **doc}
    round_trip(docker_client, doc, tmp_path, frozenset({"reorder"}) if "reorder" in case else frozenset())
