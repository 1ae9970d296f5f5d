"""docker-map's `DockerClientWrapper`: docker-py's low-level client plus build and clean-up helpers.

It *is* a `docker.APIClient` (so every docker-py call works on it) and adds docker-map's conveniences:
building from a `DockerFile` or `DockerContext` (with extra tags), removing stopped containers or unused
images, listing container names and image tags. Build and pull output goes to `push_log` — a hook to
override or replace (`log_hook`) — and to the structured log.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

import docker

from reconciler.executor.engine import split_reference
from reconciler.logs import get_logger
from reconciler.plan import naming
from reconciler.plan.resources import Kind

from .build import DockerContext, DockerFile

log = get_logger(__name__)
_IMAGE_ID = re.compile(r"(?:Successfully built |sha256:)([0-9a-f]{12,64})")


class DockerClientWrapper(docker.APIClient):  # type: ignore[misc]
    def __init__(
        self, base_url: str | None = None, *args: Any, log_hook: Callable[[str, str], None] | None = None, **kwargs: Any
    ) -> None:
        if base_url is not None and base_url.startswith("unix://") and not base_url.startswith("unix:///"):
            base_url = "unix:///" + base_url.removeprefix("unix://")  # docker-map's docs write unix://var/run/…
        if base_url is None:
            kwargs.setdefault("version", "auto")
            env = docker.utils.kwargs_from_env()
            base_url = env.get("base_url")
            kwargs.setdefault("tls", env.get("tls"))
        kwargs.setdefault("version", "auto")
        super().__init__(base_url, *args, **kwargs)
        self.log_hook = log_hook

    # --- output --------------------------------------------------------------------------------------

    def push_log(self, info: str, level: str = "info") -> None:
        """Where build and pull output goes; override it, or pass `log_hook=`."""
        if self.log_hook is not None:
            self.log_hook(info, level)
        getattr(log, "error" if level == "error" else "info")("docker output", output=info)

    def _consume(self, stream: Iterable[dict[str, Any]], raise_on_error: bool) -> str | None:
        image_id = None
        for event in stream:
            if "stream" in event:
                text = str(event["stream"]).rstrip()
                if text:
                    self.push_log(text)
                match = _IMAGE_ID.search(text)
                if match:
                    image_id = match.group(1)
            if "aux" in event and isinstance(event["aux"], dict) and "ID" in event["aux"]:
                image_id = str(event["aux"]["ID"])
            if "status" in event:
                self.push_log(" ".join(str(event[k]) for k in ("status", "progress") if event.get(k)))
            if "error" in event:
                self.push_log(str(event["error"]), "error")
                if raise_on_error:
                    raise docker.errors.BuildError(event["error"], [])
                return None
        return image_id

    # --- building ------------------------------------------------------------------------------------

    def build_from_context(
        self,
        ctx: DockerContext,
        tag: str,
        add_latest_tag: bool = False,
        add_tags: Iterable[str] | None = None,
        raise_on_error: bool = True,
        **kwargs: Any,
    ) -> str | None:
        """Build from a `DockerContext`; returns the new image's full id (None after a failure when not raising)."""
        kwargs.setdefault("rm", True)  # as the docker CLI: no intermediate containers left behind
        stream = self.build(
            fileobj=ctx.fileobj, custom_context=True, tag=tag, encoding=ctx.stream_encoding, decode=True, **kwargs
        )
        if not self._consume(stream, raise_on_error):
            return None
        image_id = str(self.inspect_image(tag)["Id"])  # the full id, whatever the build output printed
        self._extra_tags(image_id, tag, add_latest_tag, add_tags)
        return image_id

    def build_from_file(
        self,
        dockerfile: DockerFile,
        tag: str,
        add_latest_tag: bool = False,
        add_tags: Iterable[str] | None = None,
        raise_on_error: bool = True,
        **kwargs: Any,
    ) -> str | None:
        """Build a `DockerFile` (with everything it adds); returns the new image id."""
        with DockerContext(dockerfile) as ctx:
            return self.build_from_context(ctx, tag, add_latest_tag, add_tags, raise_on_error, **kwargs)

    def _extra_tags(self, image_id: str, tag: str, add_latest_tag: bool, add_tags: Iterable[str] | None) -> None:
        repository, _ = split_reference(tag)
        extra = list(add_tags or [])
        if add_latest_tag:
            extra.append("latest")
        for name in extra:
            repo, extra_tag = split_reference(name) if ":" in name.rsplit("/", 1)[-1] else (repository, name)
            self.tag(image_id, repo, extra_tag)

    def pull(self, repository: str, tag: str | None = None, stream: bool = False, **kwargs: Any) -> Any:
        """docker-py's pull; unless the caller streams it, the progress goes to `push_log` as it comes."""
        if stream:
            return super().pull(repository, tag=tag, stream=True, **kwargs)
        kwargs.pop("decode", None)
        lines = []
        for event in super().pull(repository, tag=tag, stream=True, decode=True, **kwargs):
            if "error" in event:
                self.push_log(str(event["error"]), "error")
                raise docker.errors.APIError(str(event["error"]))
            text = " ".join(str(event[k]) for k in ("id", "status", "progress") if event.get(k))
            if text:
                self.push_log(text)
                lines.append(text)
        return "\n".join(lines)

    # --- clean-up ------------------------------------------------------------------------------------

    def cleanup_containers(
        self,
        include_initial: bool = False,
        exclude: Iterable[str] | None = None,
        raise_on_error: bool = False,
        list_only: bool = False,
    ) -> list[str]:
        """Remove stopped containers (exited, or never started with `include_initial`), except `exclude`
        (names). Returns the names removed (or that would be, with `list_only`)."""
        skip = {n.lstrip("/") for n in exclude or ()}
        states = ["exited", "dead"] + (["created"] if include_initial else [])
        removed: list[str] = []
        for container in self.containers(all=True, filters={"status": states}):
            name = container["Names"][0].lstrip("/") if container.get("Names") else container["Id"]
            if name in skip or (container.get("Labels") or {}).get(naming.LABEL_KIND) == Kind.VOLUME_INIT.value:
                continue  # (a volume init is the record that its volume is prepared: never cleaned up)
            removed.append(name)
            if list_only:
                continue
            try:
                self.remove_container(container["Id"])
            except docker.errors.APIError as exc:
                self.push_log(f"could not remove {name}: {exc}", "error")
                if raise_on_error:
                    raise
        return removed

    def cleanup_images(
        self,
        remove_old: bool = False,
        keep_tags: Iterable[str] | None = None,
        force: bool = False,
        raise_on_error: bool = False,
        list_only: bool = False,
    ) -> list[str]:
        """Remove dangling images; with `remove_old`, also tagged images no container uses, except those
        with a tag in `keep_tags` (e.g. `latest`). Returns the ids removed (or that would be)."""
        keep = set(keep_tags or ())
        used = {c["ImageID"] for c in self.containers(all=True)}
        targets: list[str] = [i["Id"] for i in self.images(filters={"dangling": True}) if i["Id"] not in used]
        if remove_old:
            for image in self.images():
                tags = image.get("RepoTags") or []
                if image["Id"] in used or not tags or image["Id"] in targets:
                    continue
                if any(t.rsplit(":", 1)[-1] in keep or t in keep for t in tags):
                    continue
                targets.append(image["Id"])
        removed = []
        for image_id in targets:
            if not list_only:
                try:
                    self.remove_image(image_id, force=force)
                except docker.errors.APIError as exc:
                    self.push_log(f"could not remove image {image_id[:19]}: {exc}", "error")
                    if raise_on_error:
                        raise
                    continue
            removed.append(image_id)
        return removed

    def remove_all_containers(self, stop_timeout: int = 10, list_only: bool = False) -> list[str]:
        """Stop and remove every container on the engine (docker-map's helper; think twice)."""
        names = []
        for container in self.containers(all=True):
            name = container["Names"][0].lstrip("/") if container.get("Names") else container["Id"]
            names.append(name)
            if not list_only:
                if container.get("State") == "running":
                    self.stop(container["Id"], timeout=stop_timeout)
                self.remove_container(container["Id"], force=True)
        return names

    def get_container_names(self) -> set[str]:
        return {n.lstrip("/") for c in self.containers(all=True) for n in c.get("Names") or []}

    def get_image_tags(self) -> dict[str, str]:
        """Every tag on the engine → the image id it points at."""
        return {
            tag: image["Id"] for image in self.images() for tag in image.get("RepoTags") or [] if tag != "<none>:<none>"
        }
