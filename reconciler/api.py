"""The docker-map style Python API: change `dockermap.api` to `reconciler.api` and keep your scripts.

    from reconciler.api import ContainerMap, DockerClientWrapper, DockerFile, MappingDockerClient

`ContainerMap`, `MappingDockerClient` (startup, update, create, start, restart, stop, remove, shutdown,
signal, pull_images, run_script; and `plan`, which docker-map lacks), `DockerFile`, `DockerContext`,
`DockerClientWrapper`, and the YAML helpers `load_map`, `load_map_file`, `load_clients`, `load_clients_file`.
They run on the same model, planner and executor as the command line and the daemon. To test maps without
an engine, give `MappingDockerClient(…, engine=reconciler.testing.FakeEngine(…))`.
"""

from reconciler.compat.build import DockerContext, DockerFile
from reconciler.compat.mapping import (
    ContainerMap,
    MapIntegrityError,
    MappingDockerClient,
    MapResult,
    load_clients,
    load_clients_file,
    load_map,
    load_map_file,
)
from reconciler.compat.wrapper import DockerClientWrapper

__all__ = [
    "ContainerMap",
    "DockerClientWrapper",
    "DockerContext",
    "DockerFile",
    "MapIntegrityError",
    "MapResult",
    "MappingDockerClient",
    "load_clients",
    "load_clients_file",
    "load_map",
    "load_map_file",
]
