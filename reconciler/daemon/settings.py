"""Daemon settings: flags > environment (`RECONCILER_*`) > a YAML config file > defaults (pydantic-settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, YamlConfigSettingsSource

from reconciler.executor.defaults import DEFAULT_CONCURRENCY
from reconciler.model.limits import Limits, limits_from
from reconciler.model.window import parse_window
from reconciler.watch.git import GitError, check_branch, check_path


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RECONCILER_", extra="forbid")

    paths: list[str] = Field(default_factory=list, description="Map files or folders of *.yml / *.yaml.")
    resync: float = Field(300.0, gt=0, description="Seconds between full relists and reconciles (safety net).")
    poll_images: float | None = Field(None, gt=0, description="Seconds between pulls of the tags in use.")
    http: str = Field("127.0.0.1:9105", description="host:port for /healthz, /readyz, /metrics; 'off' disables.")
    http_token: SecretStr | None = Field(
        None,
        description="Bearer token for everything on the status server but /healthz and /readyz; required when"
        " `http` is not a loopback address. Never logged.",
    )
    http_token_file: Path | None = Field(
        None, description="A file holding http_token (e.g. a systemd credential: %d/http-token)."
    )
    http_max_connections: int = Field(128, ge=1, le=10000, description="Status server connections open at once.")
    http_header_timeout: float = Field(
        10.0, gt=0, le=300, description="Seconds for a request's headers, from connect or the previous answer."
    )
    http_idle_timeout: float = Field(5.0, gt=0, le=300, description="Seconds an idle keep-alive connection stays.")
    http_body_timeout: float = Field(10.0, gt=0, le=300, description="Seconds for a whole request body to arrive.")
    http_body_limit: int = Field(
        1024 * 1024, ge=0, le=64 * 1024 * 1024, description="Largest request body in bytes (webhook payloads)."
    )
    map_max_bytes: int = Field(Limits().max_bytes, gt=0, description="Largest map file in bytes.")
    map_max_depth: int = Field(Limits().max_depth, gt=0, description="Deepest nesting of a map file.")
    map_max_values: int = Field(Limits().max_values, gt=0, description="Most YAML values, aliases expanded.")
    map_max_containers: int = Field(Limits().max_containers, gt=0, description="Most containers of one map.")
    workers: int = Field(
        4, ge=1, le=16, description="Keys reconciled at once (keys whose plans overlap never run together)."
    )
    concurrency: int = Field(
        DEFAULT_CONCURRENCY, ge=1, le=64, description="Actions run at once (each once what it depends on is done)."
    )
    health_gate: float = Field(60.0, ge=0, description="Seconds a recreated container has to become healthy.")
    crash_threshold: float = Field(10.0, gt=0, description="A container that dies sooner after starting crashes.")
    crash_backoff_max: float = Field(300.0, gt=0, description="Longest wait before restarting a crashing container.")
    prune_deleted_maps: bool = Field(False, description="Remove the containers of a map file that was deleted.")
    prune: bool = Field(
        False, description="Remove orphans: our containers and networks of configs no longer in a loaded map."
    )
    prune_volumes: bool = Field(False, description="With prune: orphaned attached volumes too (their data!).")
    update_persistent: bool = Field(False, description="Also move persistent containers to newer images.")
    engine_grace: float = Field(60.0, gt=0, description="/healthz fails once the engine is gone this long.")
    stuck_after: float = Field(120.0, gt=0, description="/healthz fails when the loop made no progress this long.")
    stop_timeout: float = Field(30.0, gt=0, description="On SIGTERM, how long in-flight actions may take.")
    rate: float = Field(20.0, gt=0, description="Keys handed out per second at most.")
    state_dir: str | None = Field(
        None,
        description="Where held-back state survives restarts (default: $STATE_DIRECTORY, else /var/lib/reconciler;"
        " 'off': memory only).",
    )
    update_window: str | None = Field(
        None,
        description="When auto image updates may run, for maps that set none: 'Sat 02:00-05:00' or '0 2 * * 6 3h'"
        " (daemon's time zone). Default: any time.",
    )
    notify: list[str] = Field(
        default_factory=list, description="Apprise URLs notified of updates, rollbacks, crash loops, map errors."
    )
    notify_interval: float = Field(10.0, ge=0, description="Seconds between notification messages at least.")
    git: str | None = Field(None, description="A git repository (URL or path) to read the maps from.")
    git_branch: str | None = Field(None, description="Its branch (default: the remote's HEAD).")
    git_path: str = Field(".", description="The folder of the maps inside the repository.")
    git_interval: float = Field(60.0, gt=0, description="Seconds between fetches (a signed webhook: at once).")
    git_secret_file: Path | None = Field(
        None, description="A file holding the webhook secret (X-Hub-Signature-256); without one, hooks get 403."
    )
    git_timeout: float = Field(60.0, gt=0, le=3600, description="Seconds any one git call may take.")
    clients_file: Path | None = Field(
        None, description="docker-map client configurations (one engine per client); none: one engine, __default__."
    )
    client: list[str] = Field(
        default_factory=list, description="Keep only these clients' share of the maps (the per-host mode)."
    )
    engine_retry: float = Field(
        10.0, ge=0, description="Seconds a transient engine error is retried before a step fails."
    )

    @field_validator("update_window")
    @classmethod
    def _window(cls, value: str | None) -> str | None:
        if value is not None:
            parse_window(value)  # a WindowError is a ValueError: reported as a bad setting
        return value

    @field_validator("git_branch")
    @classmethod
    def _git_branch(cls, value: str | None) -> str | None:
        try:
            return None if value is None else check_branch(value)
        except GitError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("git_path")
    @classmethod
    def _git_path(cls, value: str) -> str:
        try:
            return check_path(value)
        except GitError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("notify")
    @classmethod
    def _notify(cls, value: list[str]) -> list[str]:
        for url in value:
            if "://" not in url:
                raise ValueError(f"notification URLs are Apprise URLs (scheme://…), not {url.partition(':')[0]!r}…")
        return value

    @field_validator("http")
    @classmethod
    def _http(cls, value: str) -> str:
        if value != "off":
            host, _, port = value.rpartition(":")
            if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
                raise ValueError(f"{value!r} is not host:port (or 'off')")
        return value

    @property
    def map_limits(self) -> Limits:
        """The bounds on loading one map file (README: Limits and hardening)."""
        return limits_from({name: getattr(self, name) for name in type(self).model_fields if name.startswith("map_")})

    @property
    def http_address(self) -> tuple[str, int] | None:
        if self.http == "off":
            return None
        host, _, port = self.http.rpartition(":")
        return host.strip("[]"), int(port)


def load_settings(config_file: Path | None = None, **flags: Any) -> Settings:
    """Settings from flags (those not None), the environment, and an optional YAML config file."""
    given = {k: v for k, v in flags.items() if v is not None}

    class _WithFile(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
            if config_file is not None:
                sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
            return tuple(sources)

    return Settings.model_validate(_WithFile(**given).model_dump())
