"""docker-map's integrity check, made stricter and made to say where.

Checked where each value was written (configs as declared, abstract ones included, so an error points at the
line that holds the bad reference), then once more over the extended configs for dependency cycles:
- every volume alias has a path (`volumes`), every alias bind a host path (`host`);
- every `uses` names an attached volume, an external volume or a container config that provides volumes;
  an external volume is only used, never attached; every `depends_on` names a config;
- every link names an existing instance, and no two linked containers are known by one alias (`a_b` and
  `a-b` both default to `a-b`); every network and `network_mode` reference resolves;
- group members exist and group names do not clash with config names;
- no two configs attach the same alias (their volumes would share a name);
- no container is named like the init container of an attached volume: `<volume>.init` is a container
  name too (config `data`, instance `init` against volume `data`'s init, both `<map>.data.init`) — and so
  would be their `..next` replacements;
- no dependency cycle (the error shows it).
Each problem carries a did-you-mean where a close name exists.
"""

from __future__ import annotations

import graphlib
from collections.abc import Callable

from .errors import KeyPath, MapProblem, Severity, did_you_mean, format_key_path
from .resolved import ResolvedMap
from .schema import PRESET_NETWORKS, ContainerConfig, Link, NetworkModeKind, Use
from .shortforms import is_path

Origin = Callable[[str], KeyPath]


def check_integrity(resolved: ResolvedMap, origin: Origin) -> list[MapProblem]:
    checker = _Checker(resolved, origin)
    for name, cfg in resolved.model.containers.items():
        checker.config(name, cfg)
    checker.volume_paths()
    checker.groups()
    checker.duplicate_attaches()
    checker.link_alias_clashes()
    checker.init_name_clashes()
    if not checker.problems:
        checker.cycles()
    return checker.problems


class _Checker:
    def __init__(self, resolved: ResolvedMap, origin: Origin) -> None:
        self.m = resolved
        self.origin = origin
        self.problems: list[MapProblem] = []

    def error(self, path: KeyPath, message: str) -> None:
        self.problems.append(self.m.positions.problem(path, message))

    # --- per config ----------------------------------------------------------------------------------

    def config(self, name: str, cfg: ContainerConfig) -> None:
        at = self.origin(name)
        volumes = self.m.model.volumes
        for i, bind in enumerate(cfg.binds):
            if bind.host_path is not None:
                if not is_path(bind.path):
                    self.error((*at, "binds", i), f"container path '{bind.path}' must be absolute")
                continue
            if is_path(bind.path):
                self.error((*at, "binds", i), f"bind '{bind.path}' has no host path")
                continue
            if bind.path not in volumes:
                self.error((*at, "binds", i), f"unknown volume alias '{bind.path}'{did_you_mean(bind.path, volumes)}")
                continue
            if volumes[bind.path].default_path is None:
                self.error((*at, "binds", i), f"volume alias '{bind.path}' has no path in 'volumes'")
            if bind.path not in self.m.model.host:
                self.error(
                    (*at, "binds", i),
                    f"volume alias '{bind.path}' has no host path in 'host'"
                    + did_you_mean(bind.path, self.m.model.host),
                )
        for i, share in enumerate(cfg.shares):
            if not share.startswith("/"):
                # The engine takes a relative path at create (26.1.5) but refuses it at every later create:
                # such a container could never be recreated or updated.
                self.error((*at, "shares", i), f"shared volume path '{share}' must be absolute (a container path)")
        for i, attach in enumerate(cfg.attaches):
            if attach.path is not None:
                if not attach.path.startswith("/"):
                    self.error((*at, "attaches", i), f"mount path '{attach.path}' must be absolute")
                continue
            if attach.alias not in volumes:
                self.error(
                    (*at, "attaches", i),
                    f"unknown volume alias '{attach.alias}'{did_you_mean(attach.alias, volumes)}",
                )
            elif volumes[attach.alias].external is not None:
                self.error(
                    (*at, "attaches", i),
                    f"volume '{attach.alias}' is external (it exists already and is never created): `uses` it",
                )
            elif volumes[attach.alias].default_path is None:
                self.error((*at, "attaches", i), f"volume alias '{attach.alias}' has no path in 'volumes'")
        for i, use in enumerate(cfg.uses):
            self.use((*at, "uses", i), use)
        for i, link in enumerate(cfg.links):
            self.link((*at, "links", i), link)
        for dependency in cfg.depends_on:
            self.depends_on((*at, "depends_on", dependency), dependency)
        for i, endpoint in enumerate(cfg.networks):
            net = endpoint.network_name
            if net not in PRESET_NETWORKS and net not in self.m.model.networks:
                self.error((*at, "networks", i), f"unknown network '{net}'{did_you_mean(net, self.m.model.networks)}")
            for j, link in enumerate(endpoint.links):
                self.link((*at, "networks", i, "links", j), link)
        mode = cfg.network_mode
        if mode is not None and mode.kind is NetworkModeKind.CONTAINER:
            self.instance_ref((*at, "network_mode"), mode.value, mode.instance, "network_mode")
            if cfg.networks:
                self.error((*at, "networks"), "a container sharing another's network stack cannot join networks")
        for i, command in enumerate(cfg.exec_commands):
            if not command.cmd:
                self.error((*at, "exec_commands", i), "empty command")

    def volume_paths(self) -> None:
        """The container paths that volume aliases stand for must be absolute (the engine refuses others)."""
        for alias, volume in self.m.model.volumes.items():
            path = volume.default_path
            if path is not None and not path.startswith("/"):
                self.error(("volumes", alias), f"volume '{alias}': container path '{path}' must be absolute")

    def use(self, path: KeyPath, use: Use) -> None:
        source = self.m.use_source(use)
        if source is None:
            candidates = [*self.m.configs]
            if self.m.model.use_attached_parent_name:
                candidates += [f"{c}.{a.alias}" for c, cfg in self.m.configs.items() for a in cfg.attaches]
            else:
                candidates += list(self.m.attached_aliases())
            self.error(
                path,
                f"'{use.name}' is neither an attached volume nor a container config"
                f"{did_you_mean(use.name, candidates)}",
            )
            return
        if source.alias is None:
            provider = self.m.configs[source.config]
            if not (provider.shares or provider.binds or provider.attaches or provider.uses):
                self.error(
                    path,
                    f"config '{source.config}' provides no volumes to use (it has no shares, binds, attaches or uses)",
                )
            elif use.path:
                self.error(
                    path,
                    "a mount path can only be given for an attached volume, "
                    f"not for the whole container '{source.config}'",
                )
        elif self.m.use_path(use) is None:
            what = "external" if source.external is not None else "attached"
            self.error(path, f"{what} volume '{use.name}' has no mount path (give one, or a path in 'volumes')")

    def depends_on(self, path: KeyPath, config: str) -> None:
        if config in self.m.configs:
            return
        what = "abstract config" if config in self.m.extended else "unknown config"
        self.error(path, f"depends_on {what} '{config}'{did_you_mean(config, self.m.configs)}")

    def link(self, path: KeyPath, link: Link) -> None:
        config, _, instance = link.container.partition(".")
        self.instance_ref(path, config, instance or None, "link")

    def instance_ref(self, path: KeyPath, config: str, instance: str | None, what: str) -> None:
        target = self.m.configs.get(config)
        if target is None:
            if config in self.m.extended:
                self.error(path, f"{what} to abstract config '{config}'")
            else:
                self.error(path, f"{what} to unknown config '{config}'{did_you_mean(config, self.m.configs)}")
            return
        if instance is None:
            if target.instances:
                self.error(
                    path,
                    f"{what} to '{config}' must name one of its instances: "
                    + ", ".join(f"'{config}.{i}'" for i in target.instances),
                )
        elif instance not in target.instances:
            known = ", ".join(target.instances) or "none"
            self.error(
                path,
                f"{what} to unknown instance '{config}.{instance}' (instances: {known})"
                f"{did_you_mean(instance, target.instances)}",
            )

    # --- map level -----------------------------------------------------------------------------------

    def groups(self) -> None:
        for group, members in self.m.model.groups.items():
            if group in self.m.model.containers:
                self.error(("groups", group), f"group '{group}' has the same name as a container config")
            for i, member in enumerate(members):
                config, _, instance = member.partition(".")
                target = self.m.configs.get(config)
                if target is None:
                    self.error(
                        ("groups", group, i),
                        f"group member '{member}' is not a config{did_you_mean(config, self.m.configs)}",
                    )
                elif instance and instance not in target.instances:
                    self.error(("groups", group, i), f"group member '{member}': unknown instance '{instance}'")

    def duplicate_attaches(self) -> None:
        if self.m.model.use_attached_parent_name:
            return
        owner: dict[str, str] = {}
        for name, cfg in self.m.configs.items():
            for attach in cfg.attaches:
                first = owner.setdefault(attach.alias, name)
                if first != name:
                    self.error(
                        (*self.origin(name), "attaches"),
                        f"attached volume '{attach.alias}' is already attached by '{first}' "
                        "(set use_attached_parent_name to give each its own volume)",
                    )

    def link_alias_clashes(self) -> None:
        """Over the extended configs, since links are inherited: one alias, one linked container."""
        for name, cfg in self.m.configs.items():
            self.alias_clash((*self.origin(name), "links"), cfg.links)
            for i, endpoint in enumerate(cfg.networks):
                self.alias_clash((*self.origin(name), "networks", i, "links"), endpoint.links)

    def alias_clash(self, path: KeyPath, links: list[Link]) -> None:
        first: dict[str, str] = {}
        for link in links:
            other = first.setdefault(link.known_as, link.container)
            if other != link.container:
                self.error(
                    path,
                    f"links to '{other}' and '{link.container}' are both known as '{link.known_as}' "
                    "(a link without an alias is known by its name with '.' and '_' as '-'): give one an alias",
                )

    def init_name_clashes(self) -> None:
        """Names relative to the map, as `reconciler.plan.naming` builds them (the model cannot import it):
        containers `config[.instance]`, attached volumes `alias` (or `config.alias` with
        use_attached_parent_name), their inits `<volume>.init`. Reserved whether or not the volume needs
        preparing, so that adding a `user` never makes a valid map invalid."""
        containers = {f"{c}.{i}" if i else c: (c, i) for c in self.m.configs for i in self.m.instances(c)}
        parent = self.m.model.use_attached_parent_name
        seen: set[str] = set()
        for config, cfg in self.m.configs.items():
            for attach in cfg.attaches:
                volume = f"{config}.{attach.alias}" if parent else attach.alias
                clash = containers.get(f"{volume}.init")
                if clash is not None and volume not in seen:
                    seen.add(volume)
                    self.init_clash(clash, config, attach.alias, volume)

    def init_clash(self, container: tuple[str, str | None], attacher: str, alias: str, volume: str) -> None:
        config, instance = container
        at = self.origin(config)
        declared = self.m.model.containers[config].instances
        where: KeyPath = (*at, "instances", declared.index(instance)) if instance in declared else at
        # Located like any problem (a short form `attaches: data` is shown as `store.attaches`).
        ref = self.m.positions.problem((*self.origin(attacher), "attaches", self._attach_index(attacher, alias)), "")
        other = f"{ref.file}:{ref.line}:{ref.column}: " if ref.line is not None else ""
        self.error(
            where,
            f"container '{self.m.name}.{volume}.init' has the same name as the init container of attached volume "
            f"'{self.m.name}.{volume}' ({other}{format_key_path(ref.key_path)}); rename the instance or the alias",
        )

    def _attach_index(self, config: str, alias: str) -> int:
        """Where `alias` is attached in `config` as declared (0 when it is inherited through extends)."""
        declared = [a.alias for a in self.m.model.containers[config].attaches]
        return declared.index(alias) if alias in declared else 0

    def cycles(self) -> None:
        graph = {name: self.m.dependencies(name) for name in self.m.configs}
        try:
            graphlib.TopologicalSorter(graph).prepare()
        except graphlib.CycleError as exc:
            cycle: list[str] = list(exc.args[1])
            shown = " → ".join(reversed(cycle))
            self.error(self.origin(cycle[0]), f"dependency cycle: {shown}")


def warnings_for(resolved: ResolvedMap) -> list[MapProblem]:
    """Things docker-map let pass that will fail later for some instance (and the loader's notes on old
    keys): say so at load time."""
    found: list[MapProblem] = list(resolved.notes)
    for name, cfg in resolved.configs.items():
        for bind in cfg.binds:
            if bind.host_path is not None or is_path(bind.path) or bind.path not in resolved.model.host:
                continue
            for instance in resolved.instances(name):
                if resolved.host_path(bind.path, instance) is None:
                    found.append(
                        resolved.positions.problem(
                            ("host", bind.path),
                            f"no host path for '{bind.path}' for instance '{name}.{instance}' "
                            "(add it or a 'default'); that container cannot be created",
                            severity=Severity.WARNING,
                        )
                    )
    return found
