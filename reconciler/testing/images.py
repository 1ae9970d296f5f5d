"""Image inspect JSON (`GET /images/{ref}/json`) for the fake engine.

`image_json(ref, env=…, cmd=…, healthcheck=…)` is an image as the engine answers for it, shaped like the
recorded busybox image (only `PATH` in its environment and `/bin/sh` as its command) unless told otherwise.
References are kept as the engine's tag list has them (`normal_reference`: `nginx` is `nginx:latest`).
What a container inherits from its image — environment, command, entrypoint, user, exposed ports, volumes,
healthcheck, stop signal — is merged in by `containers.engine_container`, so declaring an image's defaults
here is what makes a fake container look like the engine's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from reconciler.executor.engine import Json, split_reference

from .ids import hex_id, image_id

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


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


def normal_reference(ref: str) -> str:
    """The reference as the engine's tag list holds it: `nginx` is `nginx:latest`, `docker.io/library/nginx:1`
    is `nginx:1`; a digest stays as written."""
    for prefix in ("docker.io/library/", "index.docker.io/library/", "docker.io/", "index.docker.io/"):
        if ref.startswith(prefix):
            ref = ref.removeprefix(prefix)
            break
    repository, tag = split_reference(ref)
    return ref if tag is None else f"{repository}:{tag}"
