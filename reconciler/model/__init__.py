"""What the user declared: the container map format, its loader and its integrity check.

Pure: no engine, no file watching, no network. `load_map_files` / `load_map_text` / `load_map_dict` are the
ways in; they return `ResolvedMap`s (configs with `extends` merged) or raise `MapError` with one
`MapProblem` per problem, each naming file, line, column and key path.
"""

from .errors import MapError, MapProblem, Severity
from .loader import MapSet, combine_maps, load_map_dict, load_map_files, load_map_text, model_json_schema
from .resolved import ResolvedMap, UsedVolumeSource, resolve_image
from .schema import (
    PRESET_NETWORKS,
    Attach,
    Bind,
    ContainerConfig,
    ContainerMapModel,
    ExecCommand,
    ExecPolicy,
    HealthCheck,
    Link,
    NetworkConfig,
    NetworkEndpoint,
    NetworkMode,
    NetworkModeKind,
    PortBinding,
    StartCondition,
    Use,
    VolumeConfig,
)

__all__ = [
    "PRESET_NETWORKS",
    "Attach",
    "Bind",
    "ContainerConfig",
    "ContainerMapModel",
    "ExecCommand",
    "ExecPolicy",
    "HealthCheck",
    "Link",
    "MapError",
    "MapProblem",
    "MapSet",
    "NetworkConfig",
    "NetworkEndpoint",
    "NetworkMode",
    "NetworkModeKind",
    "PortBinding",
    "ResolvedMap",
    "Severity",
    "StartCondition",
    "Use",
    "UsedVolumeSource",
    "VolumeConfig",
    "combine_maps",
    "load_map_dict",
    "load_map_files",
    "load_map_text",
    "model_json_schema",
    "resolve_image",
]
