"""Engine inspect JSON synthesised from desired specs: an engine that did exactly what the map says.

The planner's contract is "a host that matches the maps gives an empty plan". To test it without an engine,
this module plays the engine: given a `ContainerSpec` (or a whole `DesiredState`) it builds the JSON that
`GET /containers/{id}/json`, `/images/{name}/json`, `/volumes/{name}` and `/networks/{id}` would answer after
reconciler's executor created those objects (`reconciler/executor/translate.py` gives the create arguments),
shaped like the recorded answers in `tests/fixtures/engine/*.json` (made by `scripts/record-fixtures.py`):

- the image's defaults are merged in as the engine merges them: environment (the container's wins), command
  and entrypoint (a new entrypoint drops the image's command), user, exposed ports, healthcheck, volumes;
- host binds and named volumes both appear in `Mounts` (a named volume with its `Name`), shares and image
  volumes as anonymous volumes (64 hex digits), `volumes_from` copies the provider's mounts;
- legacy links as `HostConfig.Links` (`/<target>:/<name>/<alias>`), endpoints under
  `NetworkSettings.Networks` (a container sharing another's network stack has none, and its
  `HostConfig.NetworkMode` is `container:<id>` — the engine stores the other container's id, not its name);
- limits in HostConfig with the engine's defaults (MemorySwap twice Memory when only Memory is set);
- reconciler's labels: `io.reconciler.managed/map/config/instance/kind/spec-hash/image`.

Everything is deterministic (ids are hashes of names), so two calls give equal JSON. Tests change one thing
in the returned dicts (they are fresh copies) to make drift.
"""

from __future__ import annotations

import copy
import hashlib
import json
import posixpath
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.executor.translate import container_config
from reconciler.plan import naming
from reconciler.plan.drift import LABEL_VOLUME_CREATED
from reconciler.plan.observed import ObservedState, observed_state
from reconciler.plan.resources import (
    ContainerSpec,
    DesiredState,
    Kind,
    NetworkSpec,
    VolumeInitSpec,
    VolumeSpec,
)

Json = dict[str, Any]

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "engine"

# The seed guide's nginx/uwsgi map (docker-map's "Getting started"), as YAML.
SEED_MAP = """
name: main
nginx:
  image: nginx
  binds: {nginx_config: ro}
  uses: uwsgi_socket
  attaches: nginx_log
  exposes: {80: 80, 443: 443}
uwsgi:
  binds: [{uwsgi_config: ro}, {app_config: ro}, app_data]
  attaches: [uwsgi_log, app_log, uwsgi_socket]
  user: 2000
  permissions: u=rwX,g=rX,o=
volumes:
  nginx_config: /etc/nginx
  nginx_log: /var/log/nginx
  uwsgi_config: /etc/uwsgi
  uwsgi_socket: /var/lib/uwsgi/socket
  uwsgi_log: /var/log/uwsgi
  app_config: /var/lib/app/config
  app_log: /var/lib/app/log
  app_data: /var/lib/app/data
host:
  nginx_config: /var/lib/site/config/nginx
  uwsgi_config: /var/lib/site/config/uwsgi
  app_config: /var/lib/site/config/app
  app_data: /var/lib/site/data/app
"""

API_VERSION = "1.45"  # the engine's (26.1.5): what docker-py builds request bodies for
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
VOLUME_CREATED_AT = "2026-11-28T00:29:02Z"
_HOST_LIMIT_DEFAULTS: dict[str, Any] = {
    "BlkioWeight": 0,
    "CpuPeriod": 0,
    "CpuQuota": 0,
    "CpuShares": 0,
    "CpusetCpus": "",
    "CpusetMems": "",
    "Memory": 0,
    "MemoryReservation": 0,
    "MemorySwap": 0,
    "NanoCpus": 0,
    "PidsLimit": None,
}


def fixture(name: str) -> Json:
    """A fresh copy of a recorded engine answer (`tests/fixtures/engine/<name>.json`)."""
    data: Json = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def hex_id(*parts: str) -> str:
    """A 64-hex-digit engine id, stable for the same parts."""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def image_id(ref: str) -> str:
    return f"sha256:{hex_id('image', ref)}"


def container_id(name: str) -> str:
    return hex_id("container", name)


def image_json(
    ref: str,
    *,
    ident: str | None = None,
    env: Iterable[str] = (DEFAULT_PATH,),
    cmd: Iterable[str] | None = ("/bin/sh",),
    entrypoint: Iterable[str] | None = None,
    user: str = "",
    exposed: Iterable[str] = (),
    volumes: Iterable[str] = (),
    healthcheck: Mapping[str, Any] | None = None,
    labels: Mapping[str, str] | None = None,
    stop_signal: str | None = None,
) -> Json:
    """`GET /images/{ref}/json`, shaped like the recorded busybox image (which has only PATH and `/bin/sh`)."""
    config: Json = {
        "AttachStderr": False,
        "AttachStdin": False,
        "AttachStdout": False,
        "Cmd": None if cmd is None else list(cmd),
        "Domainname": "",
        "Entrypoint": None if entrypoint is None else list(entrypoint),
        "Env": list(env),
        "Hostname": "",
        "Image": "",
        "Labels": dict(labels) if labels else None,
        "OnBuild": None,
        "OpenStdin": False,
        "StdinOnce": False,
        "Tty": False,
        "User": user,
        "Volumes": {v: {} for v in volumes} or None,
        "WorkingDir": "",
    }
    if exposed:
        config["ExposedPorts"] = {p: {} for p in exposed}
    if healthcheck is not None:
        config["Healthcheck"] = dict(healthcheck)
    if stop_signal is not None:
        config["StopSignal"] = stop_signal
    return {
        "Architecture": "amd64",
        "Config": config,
        "Created": "2026-11-28T00:23:28.974550231Z",
        "Id": ident or image_id(ref),
        "Os": "linux",
        "RepoDigests": [],
        "RepoTags": [ref],
        "RootFS": {"Layers": [f"sha256:{hex_id('layer', ref)}"], "Type": "layers"},
        "Size": 1985626,
    }


def _env_list(image_env: Iterable[str], spec_env: Mapping[str, str]) -> list[str]:
    """The engine's merge: image variables in their order (replaced by the container's), then the new ones."""
    merged: dict[str, str] = {}
    for entry in image_env:
        key, _, value = entry.partition("=")
        merged[key] = value
    merged.update(spec_env)
    return [f"{k}={v}" for k, v in merged.items()]


def _mount(target: str, source: str, kind: str, read_only: bool) -> Json:
    if kind == "bind":
        return {
            "Destination": target,
            "Mode": "ro" if read_only else "rw",
            "Propagation": "rprivate",
            "RW": not read_only,
            "Source": source,
            "Type": "bind",
        }
    return {
        "Destination": target,
        "Driver": "local",
        "Mode": "ro" if read_only else "rw",
        "Name": source,
        "Propagation": "",
        "RW": not read_only,
        "Source": f"/var/lib/docker/volumes/{source}/_data",
        "Type": "volume",
    }


def _endpoint(network: str, aliases: Iterable[str] = (), links: Iterable[str] = (), ipv4: str | None = None) -> Json:
    alias_list = list(aliases)
    link_list = list(links)
    return {
        "Aliases": alias_list or None,
        "DNSNames": None,
        "DriverOpts": None,
        "EndpointID": hex_id("endpoint", network),
        "Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "IPAMConfig": {"IPv4Address": ipv4} if ipv4 else None,
        "IPAddress": ipv4 or "",
        "IPPrefixLen": 16,
        "IPv6Gateway": "",
        "Links": link_list or None,
        "MacAddress": "",
        "NetworkID": hex_id("network", network),
    }


def container_labels(spec: ContainerSpec) -> dict[str, str]:
    """User labels plus reconciler's own, as the executor sets them on create."""
    labels = dict(spec.labels)
    labels.update(naming.base_labels(Kind.CONTAINER.value, spec.map, spec.config, spec.instance))
    labels[naming.LABEL_SPEC_HASH] = spec.spec_hash
    labels[naming.LABEL_IMAGE] = spec.image
    return labels


def state_json(status: str = "running", exit_code: int = 0, *, health: str | None = None, oom: bool = False) -> Json:
    running = status in ("running", "restarting", "paused")
    state: Json = {
        "Dead": status == "dead",
        "Error": "",
        "ExitCode": exit_code,
        "FinishedAt": "0001-01-01T00:00:00Z" if running or status == "created" else "2026-11-28T00:30:00Z",
        "OOMKilled": oom,
        "Paused": status == "paused",
        "Pid": 4242 if running else 0,
        "Restarting": status == "restarting",
        "Running": running,
        "StartedAt": "0001-01-01T00:00:00Z" if status == "created" else "2026-11-28T00:29:02Z",
        "Status": status,
    }
    if health is not None:
        state["Health"] = {"FailingStreak": 0, "Log": [], "Status": health}
    return state


def container_json(
    spec: ContainerSpec,
    *,
    image: Mapping[str, Any] | None = None,
    status: str = "running",
    exit_code: int = 0,
    providers: Mapping[str, ContainerSpec] | None = None,
    ident: str | None = None,
) -> Json:
    """`GET /containers/{id}/json` of the container the executor creates from `spec`, on `image` (by default a
    busybox-like image tagged `spec.image`): the executor's create arguments (`translate.container_config`,
    exactly what it sends) run through `engine_container`. `providers` are the specs of the containers in
    `volumes_from`, whose mounts the engine copies."""
    providers = providers or {}
    provider_mounts: dict[str, list[Json]] = {}
    for source in spec.volumes_from:
        name = source.partition(":")[0]
        if name in providers and name != spec.name:
            provider_mounts[name] = container_json(
                providers[name], providers={k: v for k, v in providers.items() if k != spec.name}
            )["Mounts"]
    return engine_container(
        spec.name,
        container_config(spec),
        image=image if image is not None else image_json(spec.image),
        status=status,
        exit_code=exit_code,
        provider_mounts=provider_mounts,
        ident=ident,
    )


def _clean(path: str) -> str:
    """The engine stores container paths cleaned (Go's `filepath.Clean`): `/etc/app/` is `/etc/app`."""
    return posixpath.normpath(path) if path else path


_HEALTH_FIELDS = ("Test", "Interval", "Timeout", "StartPeriod", "StartInterval", "Retries")


def merged_healthcheck(sent: Mapping[str, Any] | None, image: Mapping[str, Any] | None) -> Json | None:
    """The engine's merge with the image's HEALTHCHECK: no healthcheck takes the image's; otherwise every field
    left empty or zero (the test included — also beside `Test: ["NONE"]`) comes from the image."""
    if not sent:
        return dict(image) if image else None
    merged = {k: v for k, v in sent.items() if v}
    for key in _HEALTH_FIELDS:
        if not merged.get(key) and image and image.get(key):
            merged[key] = image[key]
    return merged


def _bind_mount(entry: str) -> tuple[str, str, bool]:
    """A `Binds` entry `source:target[:mode]` (as sent, and as the engine keeps it in HostConfig.Binds)."""
    parts = entry.split(":")
    source, target = parts[0], parts[1]
    modes = parts[2].split(",") if len(parts) > 2 else []
    return source, target, "ro" in modes


def top_lines(cmd: str | Iterable[str]) -> list[str]:
    """The CMD column `GET /containers/{id}/top` shows for an exec'd command: the argv joined by spaces, no
    quotes (a string is split as docker-py splits it); a `sh -c` with one simple command is exec'd by the
    shell, so only that command shows; a shell script shows as `sh -c <script>` plus its running child."""
    argv = shlex.split(cmd) if isinstance(cmd, str) else list(cmd)
    if len(argv) >= 3 and posixpath.basename(argv[0]) == "sh" and argv[1] == "-c":
        script = argv[2]
        if not any(c in script for c in ";&|<>()$`\n"):
            return [" ".join(shlex.split(script))]
        first = script.split(";")[0].strip()
        return [" ".join(argv), *([" ".join(shlex.split(first))] if first else [])]
    return [" ".join(argv)]


def engine_container(
    name: str,
    args: Mapping[str, Any],
    *,
    image: Mapping[str, Any],
    status: str = "running",
    exit_code: int = 0,
    provider_mounts: Mapping[str, list[Json]] | None = None,
    ident: str | None = None,
    container_ids: Mapping[str, str] | None = None,
) -> Json:
    """The engine's answer for a container created with `args` (`DockerEngine.create_container`'s config:
    docker-py `create_container` kwargs plus `host_config` and `networking`), shaped like the recorded answers.

    docker-py turns the kwargs into the request body (`docker.types.ContainerConfig` / `HostConfig`, used here
    as they are); then the engine does what it does with a body (recorded in `normalisations.json`):
    - merges the image's config: environment (the container's wins), command and entrypoint (a new entrypoint
      drops the image's command), user, working dir, exposed ports, volumes, labels, and the healthcheck
      field by field (`merged_healthcheck`);
    - keeps `Config.Volumes` and `HostConfig.Binds` as sent, but cleans container paths in `Mounts` and the
      working dir (`/etc/app/` → `/etc/app`);
    - stores legacy links as a list `/<target>:/<name>/<alias>` (one per alias: two aliases of one target
      are two entries) and `network_mode: container:<name>` as `container:<id>` (`container_ids`, else
      the fake id of that name);
    - copies the mounts of `volumes_from` providers (`provider_mounts`, by container name); binds win over
      them, and both over the anonymous volumes the remaining `Config.Volumes` paths get;
    - sets MemorySwap to twice Memory when only Memory is set.
    """
    from docker.types import ContainerConfig, HostConfig

    ident = ident or container_id(name)
    kwargs = dict(args)
    host_kwargs = dict(kwargs.pop("host_config", None) or {})
    networking = kwargs.pop("networking", None) or {}
    kwargs.setdefault("command", None)
    body: Json = dict(ContainerConfig(API_VERSION, **kwargs))
    host_body: Json = dict(HostConfig(API_VERSION, **host_kwargs))
    image_config: Mapping[str, Any] = image.get("Config") or {}
    ids = dict(container_ids or {})

    cmd = body.get("Cmd")
    entrypoint = body.get("Entrypoint")
    if cmd is None and entrypoint is None:
        cmd = image_config.get("Cmd")
    if entrypoint is None:
        entrypoint = image_config.get("Entrypoint")
    env = _env_list(image_config.get("Env") or [], dict(e.partition("=")[::2] for e in body.get("Env") or []))
    labels = dict(image_config.get("Labels") or {})
    labels.update(body.get("Labels") or {})
    volumes = dict(body.get("Volumes") or {}) | dict(image_config.get("Volumes") or {})
    exposed = dict(image_config.get("ExposedPorts") or {}) | dict(body.get("ExposedPorts") or {})
    network_mode = str(host_body.get("NetworkMode") or "default")
    if network_mode == "default":  # docker-py's default; the engine stores the bridge it means
        network_mode = "bridge"
    if network_mode.startswith("container:"):
        other = network_mode.removeprefix("container:")
        network_mode = f"container:{ids.get(other) or container_id(other)}"
        hostname = network_mode.removeprefix("container:")[:12]  # it shares the other's UTS namespace
    elif network_mode == "host":
        hostname = "host"
    else:
        hostname = body.get("Hostname") or ident[:12]

    config: Json = {
        "AttachStderr": True,
        "AttachStdin": False,
        "AttachStdout": True,
        "Cmd": cmd,
        "Domainname": body.get("Domainname") or "",
        "Entrypoint": entrypoint,
        "Env": env,
        "Hostname": hostname,
        "Image": body["Image"],
        "Labels": labels,
        "OnBuild": None,
        "OpenStdin": False,
        "StdinOnce": False,
        "Tty": False,
        "User": body.get("User") or image_config.get("User", ""),
        "Volumes": volumes or None,
        "WorkingDir": _clean(body.get("WorkingDir") or "") or image_config.get("WorkingDir", ""),
    }
    if exposed:
        config["ExposedPorts"] = dict(sorted(exposed.items()))
    healthcheck = merged_healthcheck(body.get("Healthcheck"), image_config.get("Healthcheck"))
    if healthcheck:
        config["Healthcheck"] = healthcheck
    stop_signal = body.get("StopSignal") or image_config.get("StopSignal")
    if stop_signal:
        config["StopSignal"] = stop_signal
    if body.get("StopTimeout") is not None:
        config["StopTimeout"] = body["StopTimeout"]

    # Mounts: binds, then what volumes_from copies, then anonymous volumes for the remaining Config.Volumes.
    mounts: list[Json] = []
    taken: set[str] = set()
    for entry in host_body.get("Binds") or []:
        source, target, read_only = _bind_mount(entry)
        kind = "bind" if source.startswith("/") else "volume"
        mounts.append(_mount(_clean(target), source, kind, read_only))
        taken.add(_clean(target))
    for source in host_body.get("VolumesFrom") or []:
        provider, _, mode = source.partition(":")
        for mount in (provider_mounts or {}).get(provider, []):
            if mount["Destination"] not in taken:
                copied = dict(mount)
                if mode == "ro":
                    copied.update(RW=False, Mode="ro")
                mounts.append(copied)
                taken.add(mount["Destination"])
    for path in volumes:
        if _clean(path) not in taken:
            mounts.append(_mount(_clean(path), hex_id("anonymous", name, _clean(path)), "volume", False))
            taken.add(_clean(path))

    host: Json = dict(_HOST_LIMIT_DEFAULTS)
    for key in _HOST_LIMIT_DEFAULTS:
        if key in host_body:
            host[key] = host_body[key]
    if host.get("Memory") and "MemorySwap" not in host_body:
        host["MemorySwap"] = 2 * int(host["Memory"])
    policy = host_body.get("RestartPolicy") or {}
    host.update(
        {
            "AutoRemove": False,
            "Binds": host_body.get("Binds"),
            "Init": host_body.get("Init"),
            "IpcMode": "private",
            "Links": [_stored_link(link, name) for link in host_body.get("Links") or []] or None,
            "LogConfig": {"Config": {}, "Type": "json-file"},
            "NetworkMode": network_mode,
            "PortBindings": host_body.get("PortBindings"),
            "Privileged": False,
            "RestartPolicy": {
                "MaximumRetryCount": int(policy.get("MaximumRetryCount") or 0),
                "Name": policy.get("Name") or "no",
            },
            "Runtime": "runc",
            "ShmSize": 67108864,
            "VolumesFrom": host_body.get("VolumesFrom"),
        }
    )

    if network_mode.startswith("container:"):
        networks: Json = {}
    elif networking:
        networks = {}
        for net, endpoint in networking.items():
            ep_links = endpoint.get("links") or {}
            ep_links = ep_links.items() if isinstance(ep_links, Mapping) else ep_links
            networks[net] = _endpoint(
                net, endpoint.get("aliases") or (), [f"{n}:{a}" for n, a in ep_links], endpoint.get("ipv4_address")
            )
    else:
        networks = {network_mode: _endpoint(network_mode)}
    running = status in ("running", "restarting", "paused")
    return _as_json(
        {
            "AppArmorProfile": "",
            "Args": (cmd or [])[1:] if not entrypoint else [*entrypoint[1:], *(cmd or [])],
            "Config": config,
            "Created": "2026-11-28T00:29:02.499633718Z",
            "Driver": "overlay2",
            "ExecIDs": None,
            "HostConfig": host,
            "Id": ident,
            "Image": image["Id"],
            "Mounts": mounts,
            "Name": f"/{name}",
            "NetworkSettings": {"Networks": networks, "Ports": {}},
            "Path": (entrypoint or cmd or [""])[0],
            "Platform": "linux",
            "RestartCount": 0,
            "State": state_json(status, exit_code, health="healthy" if running and healthcheck else None),
        }
    )


def _stored_link(link: str, name: str) -> str:
    """docker-py sends `target:alias` (or `target`); the engine stores `/target:/name/alias`."""
    target, _, alias = link.partition(":")
    return f"/{target.lstrip('/')}:/{name}/{alias or target.lstrip('/')}"


def _as_json(data: Json) -> Json:
    """What the engine would send: JSON only (tuples of frozen specs become lists)."""
    result: Json = json.loads(json.dumps(data))
    return result


def volume_json(spec: VolumeSpec, *, created_at: str = VOLUME_CREATED_AT, labelled: bool = True) -> Json:
    """`GET /volumes/{name}` of an attached volume the executor created (`labelled=False`: a stranger's)."""
    labels: dict[str, str] | None = None
    if labelled:
        labels = naming.base_labels(Kind.VOLUME.value, spec.map, spec.config)
        labels[naming.LABEL_ALIAS] = spec.alias
        labels[naming.LABEL_SPEC_HASH] = spec.spec_hash
    return {
        "CreatedAt": created_at,
        "Driver": spec.driver,
        "Labels": labels,
        "Mountpoint": f"/var/lib/docker/volumes/{spec.name}/_data",
        "Name": spec.name,
        "Options": dict(spec.driver_options) or None,
        "Scope": "local",
    }


def init_json(
    spec: VolumeInitSpec, *, volume_created_at: str = VOLUME_CREATED_AT, exit_code: int = 0, status: str = "exited"
) -> Json:
    """The volume init container after it ran (exited 0), labelled with the volume's creation time."""
    labels = naming.base_labels(Kind.VOLUME_INIT.value, spec.map, spec.config)
    labels[naming.LABEL_ALIAS] = spec.alias
    labels[naming.LABEL_SPEC_HASH] = spec.spec_hash
    labels[LABEL_VOLUME_CREATED] = volume_created_at
    ident = container_id(spec.name)
    image = image_json(spec.image)
    return {
        "Config": {
            "Cmd": list(spec.command),
            "Entrypoint": None,
            "Env": [DEFAULT_PATH],
            "Hostname": ident[:12],
            "Image": spec.image,
            "Labels": labels,
            "User": "0",
            "Volumes": {spec.mount_path: {}},
        },
        "HostConfig": {
            "Binds": [f"{spec.volume}:{spec.mount_path}:rw"],
            "NetworkMode": "none",
            "RestartPolicy": {"MaximumRetryCount": 0, "Name": "no"},
        },
        "Id": ident,
        "Image": image["Id"],
        "Mounts": [_mount(spec.mount_path, spec.volume, "volume", False)],
        "Name": f"/{spec.name}",
        "NetworkSettings": {"Networks": {"none": _endpoint("none")}},
        "State": state_json(status, exit_code),
    }


def network_json(spec: NetworkSpec, *, containers: Iterable[str] = (), labelled: bool = True) -> Json:
    """`GET /networks/{id}` of a network the executor created, with the given container ids attached."""
    labels: dict[str, str] = {}
    if labelled:
        labels = naming.base_labels(Kind.NETWORK.value, spec.map)
        labels[naming.LABEL_SPEC_HASH] = spec.spec_hash
    return {
        "Attachable": False,
        "Containers": {c: {"Name": c} for c in containers},
        "Created": "2026-11-28T00:29:02.237999479Z",
        "Driver": spec.driver,
        "EnableIPv6": False,
        "Id": hex_id("network", spec.name),
        "Internal": spec.internal,
        "Labels": labels,
        "Name": spec.name,
        "Options": dict(spec.driver_options),
        "Scope": "local",
    }


def stranger_container_json(name: str, image_ref: str = "someone/else:1") -> Json:
    """A container someone else made that happens to hold one of our names: no reconciler labels."""
    spec = ContainerSpec(name=name, map="-", config="-", instance=None, image=image_ref)
    data = container_json(spec)
    data["Config"]["Labels"] = {"com.example.owner": "someone-else"}
    return data


@dataclass
class EngineSnapshot:
    """The inspect answers `observed_state` takes; tests change them, then call `observed()`."""

    containers: list[Json] = field(default_factory=list)
    images: dict[str, Json] = field(default_factory=dict)
    volumes: list[Json] = field(default_factory=list)
    networks: list[Json] = field(default_factory=list)
    processes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Running exec instances by container id, argv as sent (the engine's `ExecIDs` + `GET /exec/{id}/json`).
    execs: dict[str, tuple[tuple[str, ...], ...]] = field(default_factory=dict)
    # Containers outside the maps that a map names (`network_mode: container:vpn`), by name → id.
    peers: dict[str, str] = field(default_factory=dict)

    def observed(self) -> ObservedState:
        containers: list[Mapping[str, Any]] = list(self.containers)
        volumes: list[Mapping[str, Any]] = list(self.volumes)
        networks: list[Mapping[str, Any]] = list(self.networks)
        return observed_state(containers, self.images, volumes, networks, self.processes, self.execs, self.peers)

    def container(self, name: str) -> Json:
        """The inspect of the container named `name` (to change it in place)."""
        return next(c for c in self.containers if c["Name"] == f"/{name}")

    def drop_container(self, name: str) -> None:
        self.containers = [c for c in self.containers if c["Name"] != f"/{name}"]

    def copy(self) -> EngineSnapshot:
        return copy.deepcopy(self)


def synthesize(
    desired: DesiredState,
    *,
    images: Mapping[str, Json] | None = None,
    containers: Iterable[str] | None = None,
) -> EngineSnapshot:
    """An engine holding exactly what `desired` says: every image, network, volume, prepared init and container
    (only those named in `containers`, if given), all running. `images` overrides the default image per ref."""
    images = dict(images or {})
    for ref in desired.images:
        images.setdefault(ref, image_json(ref))
    for spec in desired.containers.values():
        images.setdefault(spec.image, image_json(spec.image))
    snapshot = EngineSnapshot(images=images)
    wanted = set(desired.containers) if containers is None else set(containers)
    for name, spec in sorted(desired.containers.items()):
        if name not in wanted:
            continue
        snapshot.containers.append(container_json(spec, image=images[spec.image], providers=desired.containers))
        running = [line for c in spec.exec_commands if c.policy == "restart" for line in top_lines(c.cmd)]
        if running:
            snapshot.execs[container_id(name)] = tuple(
                tuple(shlex.split(c.cmd)) if isinstance(c.cmd, str) else tuple(c.cmd)
                for c in spec.exec_commands
                if c.policy == "restart"
            )
            snapshot.processes[container_id(name)] = (
                " ".join(spec.command or ()) or "/bin/sh",
                *running,
            )
    for spec in desired.containers.values():
        peer = (spec.network_mode or "").removeprefix("container:")
        if spec.network_mode != peer and peer not in desired.containers:
            snapshot.peers[peer] = container_id(peer)  # running outside the maps, as the map expects
    for init in desired.inits.values():
        snapshot.containers.append(init_json(init))
    for volume in desired.volumes.values():
        snapshot.volumes.append(volume_json(volume))
    for network in desired.networks.values():
        attached = [
            container_id(c.name)
            for c in desired.containers.values()
            if c.name in wanted and any(e.network == network.name for e in c.endpoints)
        ]
        snapshot.networks.append(network_json(network, containers=attached))
    return snapshot
