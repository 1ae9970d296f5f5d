"""A loaded map with everything docker-map resolves at use time made explicit.

`ResolvedMap` holds the configs with `extends` merged in (abstract ones left out) and answers the questions
the planner asks: which instances a config has, which image a config runs (`repository` / `default_tag`
applied as docker-map does), where an alias lives on the host for an instance (`host_root` joined), where
an alias is mounted, which config provides a used volume, and what a config depends on. It is pure data plus
pure functions; naming of engine objects lives in `reconciler.plan.naming`.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from .errors import KeyPath, MapProblem
from .schema import PRESET_NETWORKS, ContainerConfig, ContainerMapModel, NetworkModeKind, Use
from .yamlfile import Positions


def resolve_image(image: str, repository: str | None, default_tag: str) -> str:
    """docker-map's image name rules: a `/`-less name gets `repository/`, a leading `/` opts out of it, and a
    name without a tag gets `default_tag`."""
    if image.startswith("/"):
        name = image[1:]
    elif "/" in image or not repository:
        name = image
    else:
        name = f"{repository}/{image}"
    last = name.rsplit("/", 1)[-1]
    if ":" in last or "@" in last:
        return name
    return f"{name}:{default_tag}"


@dataclass(frozen=True)
class UsedVolumeSource:
    """Where a `uses` entry gets its volume from: an attached volume of a config, a whole container, or an
    external volume (`config` is empty then, `external` the engine name)."""

    config: str
    alias: str | None  # None: `volumes_from` the container config
    instance: str | None = None
    external: str | None = None


@dataclass
class ResolvedMap:
    model: ContainerMapModel
    file: str
    base_dir: str
    positions: Positions
    configs: dict[str, ContainerConfig] = field(default_factory=dict)  # extended, non-abstract
    extended: dict[str, ContainerConfig] = field(default_factory=dict)  # extended, all
    notes: list[MapProblem] = field(default_factory=list)  # warnings found while loading (legacy keys)
    # Indexes over `configs`, built on first use: every config asks them, so rebuilding them per question
    # made loading, planning and `validate` quadratic in the number of configs (issue 17). `configs` is
    # fixed once loaded (a config may be replaced by one with other values, not other attached volumes).
    _attached: dict[str, str] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def name(self) -> str:
        return self.model.name

    def __iter__(self) -> Iterator[tuple[str, ContainerConfig]]:
        return iter(self.configs.items())

    # --- instances and images ------------------------------------------------------------------------

    def instances(self, config: str) -> list[str | None]:
        """docker-map: a config without `instances` has one unnamed instance."""
        names = self.configs[config].instances
        return list(names) if names else [None]

    def image(self, config: str) -> str:
        image = self.configs[config].image or config
        return resolve_image(image, self.model.repository, self.model.default_tag)

    # --- volumes -------------------------------------------------------------------------------------

    def host_path(self, alias: str, instance: str | None) -> str | None:
        entry = self.model.host.get(alias)
        if entry is None:
            return None
        path = entry.for_instance(instance)
        return None if path is None else self.absolute_host_path(path)

    def absolute_host_path(self, path: str) -> str:
        """Relative host paths are joined to `host_root`, or to the map file's folder when there is none."""
        if posixpath.isabs(path):
            return posixpath.normpath(path)
        root = self.model.host_root or self.base_dir
        if not posixpath.isabs(root):
            root = posixpath.join(self.base_dir, root)
        return posixpath.normpath(posixpath.join(root, path))

    def volume_path(self, alias: str) -> str | None:
        volume = self.model.volumes.get(alias)
        return None if volume is None else volume.default_path

    def attached_aliases(self) -> Mapping[str, str]:
        """Attached alias → the config that attaches it (without `use_attached_parent_name`)."""
        if self._attached is None:
            self._attached = {a.alias: name for name, cfg in self.configs.items() for a in cfg.attaches}
        return self._attached

    def attach_path(self, config: str, alias: str) -> str | None:
        for attach in self.configs[config].attaches:
            if attach.alias == alias:
                return attach.path or self.volume_path(alias)
        return None

    def use_source(self, use: Use) -> UsedVolumeSource | None:
        """Which config (and attached alias) a `uses` entry refers to; None if nothing matches."""
        name = use.name
        volume = self.model.volumes.get(name)
        if volume is not None and volume.external is not None:
            return UsedVolumeSource("", name, external=volume.external)
        if self.model.use_attached_parent_name:
            parent, _, alias = name.partition(".")
            cfg = self.configs.get(parent)
            if cfg is not None and alias and any(a.alias == alias for a in cfg.attaches):
                return UsedVolumeSource(parent, alias)
        else:
            provider = self.attached_aliases().get(name)
            if provider is not None:
                return UsedVolumeSource(provider, name)
        config, _, instance = name.partition(".")
        if config in self.configs and (not instance or instance in self.configs[config].instances):
            return UsedVolumeSource(config, None, instance or None)
        return None

    def use_path(self, use: Use) -> str | None:
        """Mount path of a used attached volume: explicit, else the attaching config's, else `volumes`."""
        if use.path:
            return use.path
        source = self.use_source(use)
        if source is None or source.alias is None:
            return None
        if source.external is not None:
            return self.volume_path(source.alias)
        return self.attach_path(source.config, source.alias)

    # --- dependencies --------------------------------------------------------------------------------

    def dependencies(self, config: str) -> set[str]:
        """Configs that must exist before `config` (links, uses, network_mode, endpoint links, depends_on)."""
        cfg = self.configs[config]
        deps: set[str] = set(cfg.depends_on)
        for link in cfg.links:
            deps.add(link.container.partition(".")[0])
        for endpoint in cfg.networks:
            for link in endpoint.links:
                deps.add(link.container.partition(".")[0])
        for use in cfg.uses:
            source = self.use_source(use)
            if source is not None:
                deps.add(source.config)
        mode = cfg.network_mode
        if mode is not None and mode.kind is NetworkModeKind.CONTAINER:
            deps.add(mode.value)
        return {d for d in deps if d in self.configs}

    def network_names(self) -> list[str]:
        """Networks the map creates (presets excluded)."""
        return [n for n in self.model.networks if n not in PRESET_NETWORKS]

    # --- where a value was written (for problems found after `extends`) ------------------------------

    def written_path(self, config: str) -> KeyPath:
        """The config's own key path in the file: top level, or under `containers`."""
        return (config,) if (config,) in self.positions.where else ("containers", config)

    def source_path(self, config: str, key: KeyPath) -> KeyPath:
        """Where `key` of the *extended* config was written: in the config itself or the base it came from
        (nearest first, as a later source wins in docker-map's merge). A list item (`("exposes", 2, …)`) is
        found by its value, since its index in the merged list is not its index in the file."""
        for name in self._sources(config, set()):
            own = self.model.containers.get(name)
            if own is None:
                continue
            found = _own_key(own, self.extended[config], key)
            if found is not None:
                return (*self.written_path(name), *found)
        return self.written_path(config)

    def problem_at(self, config: str, key: KeyPath, message: str) -> MapProblem:
        """A problem with the extended config's `key`, shown where it was written — at the scalar itself when
        a short form hides the canonical key (`exposes: {8080: [80, private]}`)."""
        path = self.source_path(config, key)
        value = _value_at(self.extended[config], key)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and len(path) > len(key):
            field = path[: len(path) - len(key) + 1]  # the config's field (`web.exposes`)
            for at, (_, _, text) in self.positions.values.items():
                if at[: len(field)] == field and text == str(value):
                    return self.positions.value_problem(at, message)
        return self.positions.problem(path, message)

    def _sources(self, config: str, seen: set[str]) -> Iterator[str]:
        if config in seen:
            return
        seen.add(config)
        yield config
        own = self.model.containers.get(config)
        for base in reversed(own.extends if own else []):
            yield from self._sources(base, seen)


def _own_key(own: ContainerConfig, merged: ContainerConfig, key: KeyPath) -> KeyPath | None:
    """`key` as written in `own`, or None when `own` does not hold that value."""
    if not key or not isinstance(key[0], str):
        return None
    field, rest = key[0], key[1:]
    value = getattr(own, field, None)
    if rest and isinstance(rest[0], int) and isinstance(value, list):
        items = getattr(merged, field)
        item = items[rest[0]] if rest[0] < len(items) else None
        return (field, value.index(item), *rest[1:]) if item in value else None
    if rest and isinstance(value, dict):
        return key if rest[0] in value else None
    return (field,) if field in own.model_fields_set else None


def _value_at(cfg: ContainerConfig, key: KeyPath) -> object:
    """The merged config's value at `key` (attributes, list indexes, dict keys), or None."""
    value: object = cfg
    for part in key:
        if isinstance(part, int) and isinstance(value, list) and part < len(value):
            value = value[part]
        elif isinstance(value, dict):
            value = value.get(part)
        elif isinstance(part, str) and hasattr(value, part):
            value = getattr(value, part)
        else:
            return None
    return value
