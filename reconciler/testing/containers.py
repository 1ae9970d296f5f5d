"""Container inspect JSON (`GET /containers/{id}/json`) for what the executor sends.

`engine_container(name, args, image=…)` is the engine's answer for a container created with `args`, the
config `DockerEngine.create_container` takes (docker-py `create_container` kwargs plus `host_config` and
`networking`): docker-py's own `ContainerConfig`/`HostConfig` build the request body, as they do on the
way to the engine, then the engine's normalisations (`normalise`) and the image's defaults (`images`) are
applied. `container_json(spec)` does that for a `ContainerSpec`, through `translate.container_config` —
exactly what the executor sends — so a fake container differs from the map only where the engine's would.

`FakeEngine.create_container` (in `engine`) stores what `engine_container` answers; `snapshot.synthesize`
builds a whole engine from a desired state with `container_json`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from docker.types import ContainerConfig, HostConfig

from reconciler.executor.engine import Json
from reconciler.executor.translate import container_config
from reconciler.plan import naming
from reconciler.plan.resources import ContainerSpec, Kind

from .ids import container_id, hex_id
from .images import image_json
from .normalise import (
    HOST_LIMIT_DEFAULTS,
    as_json,
    bind_parts,
    clean_path,
    endpoint_json,
    env_list,
    merged_healthcheck,
    mount_json,
    stored_link,
)
from .states import state_json

API_VERSION = "1.45"  # the engine's (26.1.5): what docker-py builds request bodies for


def container_labels(spec: ContainerSpec) -> dict[str, str]:
    """User labels plus reconciler's own, as the executor sets them on create."""
    labels = dict(spec.labels)
    labels.update(naming.base_labels(Kind.CONTAINER.value, spec.map, spec.config, spec.instance))
    labels[naming.LABEL_SPEC_HASH] = spec.spec_hash
    labels[naming.LABEL_IMAGE] = spec.image
    return labels


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
    ident = ident or container_id(name)
    kwargs = dict(args)
    host_kwargs = dict(kwargs.pop("host_config", None) or {})
    networking = kwargs.pop("networking", None) or {}
    kwargs.setdefault("command", None)
    body: Json = dict(ContainerConfig(API_VERSION, **kwargs))
    host_body: Json = dict(HostConfig(API_VERSION, **host_kwargs))
    image_config: Mapping[str, Any] = image.get("Config") or {}
    network_mode = _network_mode(host_body, container_ids or {})
    config = _config(body, image_config, _hostname(network_mode, body, ident))
    cmd, entrypoint = config["Cmd"], config["Entrypoint"]
    running = status in ("running", "restarting", "paused")
    return as_json(
        {
            "AppArmorProfile": "",
            "Args": (cmd or [])[1:] if not entrypoint else [*entrypoint[1:], *(cmd or [])],
            "Config": config,
            "Created": "2026-11-28T00:29:02.499633718Z",
            "Driver": "overlay2",
            "ExecIDs": None,
            "HostConfig": _host_config(host_body, name, network_mode),
            "Id": ident,
            "Image": image["Id"],
            "Mounts": _mounts(name, host_body, config["Volumes"] or {}, provider_mounts or {}),
            "Name": f"/{name}",
            "NetworkSettings": {"Networks": _networks(network_mode, networking), "Ports": {}},
            "Path": (entrypoint or cmd or [""])[0],
            "Platform": "linux",
            "RestartCount": 0,
            "State": state_json(status, exit_code, health="healthy" if running and "Healthcheck" in config else None),
        }
    )


def _network_mode(host_body: Mapping[str, Any], container_ids: Mapping[str, str]) -> str:
    """`default` is docker-py's word for the bridge; `container:<name>` is stored with the other's id."""
    network_mode = str(host_body.get("NetworkMode") or "default")
    if network_mode == "default":
        return "bridge"
    if network_mode.startswith("container:"):
        other = network_mode.removeprefix("container:")
        return f"container:{container_ids.get(other) or container_id(other)}"
    return network_mode


def _hostname(network_mode: str, body: Mapping[str, Any], ident: str) -> str:
    if network_mode.startswith("container:"):
        return network_mode.removeprefix("container:")[:12]  # it shares the other's UTS namespace
    if network_mode == "host":
        return "host"
    return str(body.get("Hostname") or ident[:12])


def _config(body: Mapping[str, Any], image_config: Mapping[str, Any], hostname: str) -> Json:
    """`Config`: the body merged with the image's config."""
    cmd = body.get("Cmd")
    entrypoint = body.get("Entrypoint")
    if cmd is None and entrypoint is None:
        cmd = image_config.get("Cmd")
    if entrypoint is None:
        entrypoint = image_config.get("Entrypoint")
    env = env_list(image_config.get("Env") or [], dict(e.partition("=")[::2] for e in body.get("Env") or []))
    labels = dict(image_config.get("Labels") or {})
    labels.update(body.get("Labels") or {})
    volumes = dict(body.get("Volumes") or {}) | dict(image_config.get("Volumes") or {})
    exposed = dict(image_config.get("ExposedPorts") or {}) | dict(body.get("ExposedPorts") or {})
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
        "WorkingDir": clean_path(body.get("WorkingDir") or "") or image_config.get("WorkingDir", ""),
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
    return config


def _mounts(
    name: str, host_body: Mapping[str, Any], volumes: Mapping[str, Any], provider_mounts: Mapping[str, list[Json]]
) -> list[Json]:
    """Binds, then what `volumes_from` copies, then anonymous volumes for the remaining `Config.Volumes`."""
    mounts: list[Json] = []
    taken: set[str] = set()
    for entry in host_body.get("Binds") or []:
        source, target, read_only = bind_parts(entry)
        kind = "bind" if source.startswith("/") else "volume"
        mounts.append(mount_json(clean_path(target), source, kind, read_only))
        taken.add(clean_path(target))
    for source in host_body.get("VolumesFrom") or []:
        provider, _, mode = source.partition(":")
        for mount in provider_mounts.get(provider, []):
            if mount["Destination"] not in taken:
                copied = dict(mount)
                if mode == "ro":
                    copied.update(RW=False, Mode="ro")
                mounts.append(copied)
                taken.add(mount["Destination"])
    for path in volumes:
        if clean_path(path) not in taken:
            mounts.append(mount_json(clean_path(path), hex_id("anonymous", name, clean_path(path)), "volume", False))
            taken.add(clean_path(path))
    return mounts


def _host_config(host_body: Mapping[str, Any], name: str, network_mode: str) -> Json:
    """`HostConfig`: limits with the engine's defaults, links and the restart policy as the engine stores them."""
    host: Json = dict(HOST_LIMIT_DEFAULTS)
    for key in HOST_LIMIT_DEFAULTS:
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
            "Links": [stored_link(link, name) for link in host_body.get("Links") or []] or None,
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
    return host


def _networks(network_mode: str, networking: Mapping[str, Any]) -> Json:
    """`NetworkSettings.Networks`: none when sharing another's stack, else the endpoints sent (or the mode's)."""
    if network_mode.startswith("container:"):
        return {}
    if not networking:
        return {network_mode: endpoint_json(network_mode)}
    networks: Json = {}
    for net, endpoint in networking.items():
        ep_links = endpoint.get("links") or {}
        ep_links = ep_links.items() if isinstance(ep_links, Mapping) else ep_links
        networks[net] = endpoint_json(
            net, endpoint.get("aliases") or (), [f"{n}:{a}" for n, a in ep_links], endpoint.get("ipv4_address")
        )
    return networks


def stranger_container_json(name: str, image_ref: str = "someone/else:1") -> Json:
    """A container someone else made that happens to hold one of our names: no reconciler labels."""
    spec = ContainerSpec(name=name, map="-", config="-", instance=None, image=image_ref)
    data = container_json(spec)
    data["Config"]["Labels"] = {"com.example.owner": "someone-else"}
    return data
