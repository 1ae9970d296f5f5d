"""docker compose projects as container maps (`reconciler import compose`). Pure: JSON in, a map out.

The compose file is never parsed here: `docker compose config --format json` normalises it first
(profiles, `extends`, env files, interpolation, short syntaxes, relative paths), and this module translates
that normal form, one service key at a time, into the map format — preferring docker-map's own keys and
short forms (`exposes`, `binds`, `uses`, `shares`, `networks`, `healthcheck`, `network_mode`), then
docker-py keywords in `create_options` / `host_config`, then the map extensions made for it:
- `depends_on: {config: started | healthy}` — compose's start ordering, `service_healthy` waits;
- volumes `{external: <project>_<volume>}` — compose's named volumes, used as they are, so the data stays;
- `compose_project` — the project the map came from, which `reconciler adopt` takes over.

A service becomes a config of the same name (`.` → `_`); `scale`/`deploy.replicas` > 1 become instances
`1`…`N` (compose's container numbers). Containers get compose's DNS names: the service name is an alias on
each network. What a map cannot express (`build` without `image`, `secrets`, `configs`, swarm-only
`deploy` keys, …) is one warning per key naming the service; the rest is still imported.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from .schema import MAP_KEYS

Json = Mapping[str, Any]

# Compose keys a map holds the same way under another name (create_options / host_config keywords).
_CREATE_SAME = {"working_dir": "working_dir", "domainname": "domainname", "tty": "tty", "stdin_open": "stdin_open"}
_CREATE_SAME |= {"mac_address": "mac_address", "hostname": "hostname", "platform": "platform"}
_HOST_SAME = {
    "cap_add": "cap_add",
    "cap_drop": "cap_drop",
    "dns": "dns",
    "dns_search": "dns_search",
    "dns_opt": "dns_opt",
    "init": "init",
    "privileged": "privileged",
    "read_only": "read_only",
    "security_opt": "security_opt",
    "ipc": "ipc_mode",
    "pid": "pid_mode",
    "group_add": "group_add",
    "oom_score_adj": "oom_score_adj",
    "userns_mode": "userns_mode",
    "cpu_shares": "cpu_shares",
    "cpuset": "cpuset_cpus",
    "pids_limit": "pids_limit",
    "sysctls": "sysctls",
    "cpu_quota": "cpu_quota",
    "cpu_period": "cpu_period",
    "cpu_rt_runtime": "cpu_rt_runtime",
    "cpu_rt_period": "cpu_rt_period",
    "cpu_count": "cpu_count",
    "cpu_percent": "cpu_percent",
    "mem_swappiness": "mem_swappiness",
    "oom_kill_disable": "oom_kill_disable",
    "cgroup_parent": "cgroup_parent",
    "cgroup": "cgroupns",
    "storage_opt": "storage_opt",
    "uts": "uts_mode",
    "volume_driver": "volume_driver",
    "isolation": "isolation",
    "runtime": "runtime",
}
# HostConfig takes these as numbers; compose's normal form may give them as strings.
_HOST_INTS = frozenset(
    {"cpu_quota", "cpu_period", "cpu_rt_runtime", "cpu_rt_period", "cpu_count", "cpu_percent", "cpu_shares"}
    | {"mem_swappiness", "pids_limit", "oom_score_adj"}
)
_HOST_BYTES = {"mem_limit": "mem_limit", "memswap_limit": "memswap_limit", "mem_reservation": "mem_reservation"}
_HOST_BYTES |= {"shm_size": "shm_size"}
# Keys `docker compose config` has already applied (or that only steer compose itself).
_APPLIED = frozenset({"profiles", "env_file", "extends", "pull_policy", "container_name", "scale"})
_NOT_EXPRESSIBLE = {
    "secrets": "secrets are not part of the map format: mount the file with `binds`",
    "configs": "configs are not part of the map format: mount the file with `binds`",
    "build": "a map runs images and never builds them",
}
_DEPLOY_KEYS = frozenset({"resources", "replicas", "placement"})
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}


@dataclass
class Imported:
    """The map (as plain data, in the order it is written) and one warning per key not imported."""

    map: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


def config_name(service: str) -> str:
    """A service's config name: compose allows `.` in service names, container map configs do not."""
    return service.replace(".", "_")


def duration_ns(text: object) -> int:
    """Go durations as compose writes them (`1m30s`, `500ms`, `10s`) → nanoseconds."""
    if isinstance(text, (int, float)):
        return int(text)
    parts = _DURATION_PART.findall(str(text))
    if not parts or "".join(n + u for n, u in parts) != str(text).strip():
        raise ValueError(f"{text!r} is not a duration")
    return int(sum(float(n) * _NS[u] for n, u in parts))


def _duration_text(text: object) -> str:
    """A duration in the map's form: whole seconds as `90s`, else milliseconds."""
    ns = duration_ns(text)
    return f"{ns // 10**9}s" if ns % 10**9 == 0 else f"{ns // 10**6}ms"


def _bytes(value: object) -> int | str:
    if isinstance(value, (int, float)):
        return int(value)
    return int(str(value)) if str(value).isdigit() else str(value)


def translate(project: Json) -> Imported:
    """The map for one normalised compose project (the JSON of `docker compose config --format json`)."""
    name = str(project["name"])
    out = Imported({"name": name, "compose_project": name, "set_hostname": False})
    services: Mapping[str, Json] = project.get("services") or {}
    volumes = _volumes(project.get("volumes") or {}, out)
    networks = _networks(project.get("networks") or {}, out)
    if volumes:
        out.map["volumes"] = volumes
    if networks:
        out.map["networks"] = networks
    scales = {s: _scale(svc) for s, svc in services.items()}
    # Configs sit at the top level, as hand-written maps have them, unless one is named like a map key.
    clash = any(config_name(service) in MAP_KEYS for service in services)
    configs: dict[str, Any] = out.map.setdefault("containers", {}) if clash else out.map
    for service, svc in sorted(services.items()):
        config = config_name(service)
        if config in configs:
            out.warnings.append(f"service '{service}': its config name '{config}' is taken: not imported")
            continue
        if config != service:
            out.warnings.append(
                f"service '{service}': imported as config '{config}' ('.' is not allowed in config names); "
                "`reconciler adopt` finds compose's containers by the config name, so it cannot take them over"
            )
        configs[config] = _Service(service, svc, scales, set(networks), out.warnings, project=name).translate()
    return out


def _volumes(volumes: Mapping[str, Json], out: Imported) -> dict[str, Any]:
    """Compose volumes exist under their engine names (`<project>_<key>` or `name:`): used, never created."""
    result: dict[str, Any] = {}
    for key, volume in sorted(volumes.items()):
        result[key] = {"external": str((volume or {}).get("name") or key)}
        if (volume or {}).get("driver_opts") or (volume or {}).get("driver") not in (None, "local"):
            out.warnings.append(f"volume '{key}': driver settings are the existing volume's own: not imported")
    return result


def _networks(networks: Mapping[str, Json], out: Imported) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, written in sorted(networks.items()):
        net = written or {}
        if net.get("external"):
            out.warnings.append(f"network '{key}': external networks cannot be joined from a map: not imported")
            continue
        entry: dict[str, Any] = {}
        if net.get("driver") not in (None, "bridge"):
            entry["driver"] = net["driver"]
        if net.get("driver_opts"):
            entry["driver_options"] = dict(net["driver_opts"])
        if net.get("internal"):
            entry["internal"] = True
        options = {k: net[k] for k in ("attachable", "enable_ipv6") if net.get(k)}
        if net.get("labels"):
            out.warnings.append(f"network '{key}': labels not imported (reconciler labels its networks itself)")
        ipam = _ipam(net.get("ipam") or {})
        if ipam:
            options["ipam"] = ipam
        if ipam and ipam["Config"]:
            out.warnings.append(
                f"network '{key}': its subnets are compose's network's too, and the engine refuses overlapping "
                "pools: `adopt` cannot take the project over while that network exists — `docker compose down` "
                "(without -v: the volumes stay), then `reconciler apply`"
            )
        if options:
            entry["create_options"] = options
        result[config_name(key)] = entry or None
    return result


_IPAM_KEYS = {"subnet": "Subnet", "gateway": "Gateway", "ip_range": "IPRange", "aux_addresses": "AuxiliaryAddresses"}


def _ipam(ipam: Json) -> dict[str, Any] | None:
    """compose's `ipam` in the engine's form, which docker-py's `create_network(ipam=…)` passes on."""
    pools = [{_IPAM_KEYS[k]: v for k, v in pool.items() if k in _IPAM_KEYS} for pool in ipam.get("config") or ()]
    if not pools and ipam.get("driver") in (None, "default"):
        return None
    return {"Driver": ipam.get("driver") or "default", "Config": pools}


def _scale(svc: Json) -> int:
    replicas = (svc.get("deploy") or {}).get("replicas")
    return int(replicas if replicas is not None else svc.get("scale", 1))


def _instances(scale: int) -> list[int]:
    return list(range(1, scale + 1)) if scale > 1 else []


class _Service:
    """One service → one container config, key by key (`_HANDLERS`)."""

    def __init__(
        self, name: str, svc: Json, scales: Mapping[str, int], networks: set[str], warnings: list[str], project: str
    ) -> None:
        self.name, self.svc, self.scales, self.networks, self.warnings = name, svc, scales, networks, warnings
        self.project = project
        self.cfg: dict[str, Any] = {}
        self.create: dict[str, Any] = {}
        self.host: dict[str, Any] = {}

    def warn(self, key: str, why: str, what: str = "not imported") -> None:
        self.warnings.append(f"service '{self.name}': '{key}' {what}: {why}")

    def translate(self) -> dict[str, Any]:
        self.image()
        for key, value in self.svc.items():
            if value is None or key in ("image", "build") or key in _APPLIED:
                continue
            handler = _HANDLERS.get(key)
            if handler is not None:
                handler(self, value)
            elif key in _CREATE_SAME:
                self.create[_CREATE_SAME[key]] = value
            elif key in _HOST_SAME:
                number = key in _HOST_INTS and isinstance(value, str) and value.lstrip("-").isdigit()
                self.host[_HOST_SAME[key]] = int(value) if number else value
            elif key in _HOST_BYTES:
                self.host[_HOST_BYTES[key]] = _bytes(value)
            else:
                self.warn(key, _NOT_EXPRESSIBLE.get(key, "the map format has no equivalent"))
        if self.svc.get("container_name"):
            self.warn("container_name", "reconciler names containers <map>.<config>")
        if "network_mode" not in self.svc:
            self.endpoints(self.svc.get("networks") or {"default": None})
        if self.create:
            self.cfg["create_options"] = self.create
        if self.host:
            self.cfg["host_config"] = self.host
        return self.cfg

    def image(self) -> None:
        image = self.svc.get("image")
        if image is None:
            # compose names a built image `<project>-<service>`: built once by compose, it can be run.
            self.warn("build", f"{_NOT_EXPRESSIBLE['build']}; the map runs the image compose builds")
            image = f"{self.project}-{self.name}"
        self.cfg["image"] = image  # the map sets no `repository`, so the name stays as compose has it
        instances = _instances(self.scales.get(self.name, 1))
        if instances:
            self.cfg["instances"] = instances
        elif self.scales.get(self.name, 1) < 1:
            self.warn("scale", "a config has at least one container")

    # --- process ---------------------------------------------------------------------------------------

    def command(self, value: Any) -> None:
        self.create["command"] = value

    def entrypoint(self, value: Any) -> None:
        self.create["entrypoint"] = value

    def environment(self, value: Mapping[str, Any]) -> None:
        env = {k: v for k, v in value.items() if v is not None}  # unset variables are not passed by compose
        if env:
            self.create["environment"] = env

    def user(self, value: Any) -> None:
        # Not the map's `user`: that runs only the user part of `uid:gid` (docker-map); compose runs both.
        self.create["user"] = str(value)

    def labels(self, value: Mapping[str, Any]) -> None:
        self.create["labels"] = dict(value)

    def stop_signal(self, value: Any) -> None:
        self.cfg["stop_signal"] = value

    def stop_grace_period(self, value: Any) -> None:
        self.cfg["stop_timeout"] = -(-duration_ns(value) // 10**9)  # whole seconds, rounded up

    def healthcheck(self, value: Json) -> None:
        if value.get("disable"):
            self.cfg["healthcheck"] = {"test": ["NONE"]}
            return
        check: dict[str, Any] = {}
        if value.get("test"):
            check["test"] = value["test"]
        for key in ("interval", "timeout", "start_period"):
            if value.get(key):
                check[key] = _duration_text(value[key])
        if value.get("retries") is not None:
            check["retries"] = int(value["retries"])
        if value.get("start_interval"):
            self.warn("healthcheck.start_interval", "docker-py has no such healthcheck field")
        self.cfg["healthcheck"] = check

    def restart(self, value: str) -> None:
        name, _, count = str(value).partition(":")
        if name == "no":
            return
        policy: dict[str, Any] = {"Name": name}
        if count:
            policy["MaximumRetryCount"] = int(count)
        self.host["restart_policy"] = policy

    def deploy(self, value: Json) -> None:
        resources = value.get("resources") or {}
        limits, reservations = resources.get("limits") or {}, resources.get("reservations") or {}
        if limits.get("memory") is not None:
            self.host["mem_limit"] = _bytes(limits["memory"])
        if limits.get("cpus") is not None:
            self.host["nano_cpus"] = int(float(limits["cpus"]) * 1e9)
        if limits.get("pids") is not None:
            self.host["pids_limit"] = int(limits["pids"])
        if reservations.get("memory") is not None:
            self.host["mem_reservation"] = _bytes(reservations["memory"])
        for key in sorted(set(reservations) - {"memory"}):
            self.warn(f"deploy.resources.reservations.{key}", "only memory can be reserved on one engine")
        for key, item in sorted(value.items()):
            if key not in _DEPLOY_KEYS and item:
                self.warn(f"deploy.{key}", "swarm only")
        if value.get("placement"):
            self.warn("deploy.placement", "swarm only")

    def cpus(self, value: Any) -> None:
        self.host["nano_cpus"] = int(float(value) * 1e9)

    def logging(self, value: Json) -> None:
        config: dict[str, Any] = {"type": value.get("driver") or "json-file"}
        if value.get("options"):
            config["config"] = {str(k): str(v) for k, v in value["options"].items()}
        self.host["log_config"] = config

    def ulimits(self, value: Mapping[str, Any]) -> None:
        limits = []
        for name, limit in sorted(value.items()):
            soft, hard = (limit.get("soft"), limit.get("hard")) if isinstance(limit, Mapping) else (limit, limit)
            limits.append({"name": name, "soft": int(soft or 0), "hard": int(hard or soft or 0)})
        self.host["ulimits"] = limits

    def extra_hosts(self, value: Any) -> None:
        hosts: dict[str, str] = {}
        entries = value.items() if isinstance(value, Mapping) else (re.split(r"[=:]", e, maxsplit=1) for e in value)
        for host, address in entries:
            hosts[str(host)] = str(address)
        self.host["extra_hosts"] = hosts

    def devices(self, value: list[Any]) -> None:
        devices = []
        for device in value:
            if isinstance(device, Mapping):
                perms = device.get("permissions") or "rwm"
                devices.append(f"{device['source']}:{device.get('target') or device['source']}:{perms}")
            else:
                devices.append(str(device))
        self.host["devices"] = devices

    def tmpfs(self, value: Any) -> None:
        paths = [value] if isinstance(value, str) else list(value)
        self.host.setdefault("tmpfs", {}).update({str(p): "" for p in paths})

    # --- ports, volumes ----------------------------------------------------------------------------------

    def ports(self, value: list[Json]) -> None:
        exposes = self.cfg.setdefault("exposes", [])
        for port in value:
            exposed: int | str = (
                port["target"] if port.get("protocol", "tcp") == "tcp" else (f"{port['target']}/{port['protocol']}")
            )
            published = port.get("published")
            if published in (None, ""):
                self.host.setdefault("port_bindings", {})[str(exposed)] = None  # a random host port
                continue
            if not str(published).isdigit():
                self.warn("ports", f"host port range {published} (list each port)")
                continue
            ip = port.get("host_ip")
            entry = [exposed, int(published), ip] if ip and ip not in ("0.0.0.0", "::") else [exposed, int(published)]
            exposes.append(entry)
        if not exposes:
            del self.cfg["exposes"]

    def expose(self, value: list[Any]) -> None:
        for port in value:
            if not re.fullmatch(r"\d+(/(tcp|udp|sctp))?", str(port)):
                self.warn("expose", f"port range {port} (list each port)")
                continue
            self.cfg.setdefault("exposes", []).append(int(port) if str(port).isdigit() else str(port))

    def volumes(self, value: list[Json]) -> None:
        for mount in value:
            kind, target, ro = mount.get("type"), mount["target"], bool(mount.get("read_only"))
            if kind == "volume" and mount.get("source"):
                self.cfg.setdefault("uses", []).append({mount["source"]: [target, "ro"] if ro else target})
            elif kind == "volume":
                self.cfg.setdefault("shares", []).append(target)
            elif kind == "bind":
                self.cfg.setdefault("binds", []).append({target: [mount["source"], "ro"] if ro else mount["source"]})
            elif kind == "tmpfs":
                size = (mount.get("tmpfs") or {}).get("size")
                self.host.setdefault("tmpfs", {})[target] = f"size={size}" if size else ""
            else:
                self.warn("volumes", f"mount type {kind} at {target}")

    def volumes_from(self, value: list[str]) -> None:
        for entry in value:
            source, _, mode = entry.partition(":")
            if source == "container":
                self.host.setdefault("volumes_from", []).append(mode)
            else:
                self.cfg.setdefault("uses", []).append([config_name(source), "ro"] if mode == "ro" else source)

    # --- networks and order ------------------------------------------------------------------------------

    def network_mode(self, value: str) -> None:
        if value.startswith("service:"):
            target = value.removeprefix("service:")
            scale = self.scales.get(target, 1)
            self.cfg["network_mode"] = config_name(target) + (".1" if scale > 1 else "")
        else:
            self.cfg["network_mode"] = value

    def endpoints(self, value: Mapping[str, Any]) -> None:
        endpoints: dict[str, Any] = {}
        for network, written in sorted(value.items()):
            if config_name(network) not in self.networks:
                continue  # external: warned about at the top
            settings = written or {}
            # compose's DNS names: the service name on every network, then the aliases written.
            entry: dict[str, Any] = {
                "aliases": [self.name, *(a for a in settings.get("aliases") or () if a != self.name)]
            }
            for key in ("ipv4_address", "ipv6_address"):
                if settings.get(key):
                    entry[key] = settings[key]
            endpoints[config_name(network)] = entry
        links = self.svc.get("links") or []
        if links and endpoints:
            first = next(iter(endpoints.values()))
            first["links"] = [self.link(link) for link in links]
        if endpoints:
            self.cfg["networks"] = endpoints

    def link(self, link: str) -> list[str]:
        target, _, alias = link.partition(":")
        suffix = ".1" if self.scales.get(target, 1) > 1 else ""
        return [config_name(target) + suffix, alias or target]

    def links(self, _value: Any) -> None:
        pass  # with the endpoints: a compose link is an alias on the service's network

    def depends_on(self, value: Mapping[str, Json]) -> None:
        order: dict[str, str] = {}
        for service, how in sorted(value.items()):
            condition = (how or {}).get("condition", "service_started")
            if condition == "service_completed_successfully":
                self.warn(f"depends_on.{service}", "a map cannot wait for a one-shot service to finish", "as `started`")
            order[config_name(service)] = "healthy" if condition == "service_healthy" else "started"
        if order:
            self.cfg["depends_on"] = order


_HANDLERS: dict[str, Callable[[_Service, Any], None]] = {
    name: getattr(_Service, name)
    for name in (
        "command",
        "entrypoint",
        "environment",
        "user",
        "labels",
        "stop_signal",
        "stop_grace_period",
        "healthcheck",
        "restart",
        "deploy",
        "cpus",
        "logging",
        "ulimits",
        "extra_hosts",
        "devices",
        "tmpfs",
        "ports",
        "expose",
        "volumes",
        "volumes_from",
        "network_mode",
        "links",
        "depends_on",
    )
}
_HANDLERS["networks"] = lambda _service, _value: None  # with the endpoints, after network_mode is known


# --- writing it as a hand-written map reads --------------------------------------------------------------


class _MapDumper(yaml.SafeDumper):
    """Block style for mappings, flow style for short lists of scalars (`[80, 8080, 127.0.0.1]`)."""


def _list(dumper: yaml.SafeDumper, value: list[Any]) -> yaml.Node:
    flow = all(isinstance(v, (str, int, float, bool)) for v in value) and len(str(value)) < 80
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flow)


_MapDumper.add_representer(list, _list)


def render(imported: Imported, sources: list[str]) -> str:
    """The map as YAML, with a header naming where it came from and what was left out."""
    header = [
        f"# Imported from docker compose project '{imported.map['name']}' ({', '.join(sources)})",
        "# by `reconciler import compose`; `reconciler adopt` takes over the project's running containers.",
    ]
    if imported.map.get("volumes"):
        header.append("# Its named volumes are used as they are (`external`), so their data stays.")
    header += [f"# warning: {w}" for w in imported.warnings]
    body = yaml.dump(imported.map, Dumper=_MapDumper, sort_keys=False, default_flow_style=False, width=120)
    return "\n".join(header) + "\n" + body
