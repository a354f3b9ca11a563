"""All configuration, read once from the environment at the edge (CLI / ``create_app``).

Below this module nothing reads ``os.environ``: the pieces get plain config models built here,
and each such model holds the defaults of the settings that feed it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from runtime.engine.loop import LoopConfig
from runtime.engine.model_client import ModelConfig
from runtime.engine.model_registry import ModelEntry
from runtime.engine.tools import ToolConfig
from runtime.features.capabilities import (
    Capability,
    CapabilitySpec,
    global_capabilities,
    load_capabilities_file,
)
from runtime.features.library import NAME_PATTERN
from runtime.features.rate_limits import RateLimit
from runtime.platform.config import PlatformConfig
from runtime.tasks.leases import LeaseConfig
from runtime.tasks.manager import TaskLimits
from runtime.workspaces.records import WorkspaceConfig
from sandbox.base import SandboxLimits
from sandbox.docker_engine.engines import EngineConfig

__all__ = ["SINGLE_MODEL_KEY", "ModelSetting", "Settings"]

SINGLE_MODEL_KEY = "default"  # the key of AGENT_MODEL when AGENT_MODELS is empty


class ModelSetting(BaseModel):
    """One entry of ``AGENT_MODELS``; unset ``base_url`` / ``api_key`` fall back to the OPENAI_ ones."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(pattern=NAME_PATTERN, description="Name requests choose the model by.")
    model: str = Field(min_length=1, description="Model name sent to the server.")
    base_url: str | None = Field(None, description="API base URL (default: OPENAI_BASE_URL).")
    api_key: str | None = Field(None, description="API key (default: OPENAI_API_KEY).")
    reasoning_effort: str | None = Field(None, description="Sent as reasoning_effort when set.")
    description: str = Field("", description="Shown in GET /api/v1/models.")


def _from(model: type[BaseModel], name: str, **changes: Any) -> Any:
    """The setting for ``model``'s field ``name``: its default, bounds and description live there, once."""
    return FieldInfo.merge_field_infos(model.model_fields[name], **changes)


class Settings(BaseSettings):
    """Every setting, with the environment variable that sets it (see the README's table).

    A setting that feeds a component's config model is that model's field (:func:`_from`), so its
    default is written once, in the component; the rest are the worker's own.
    """

    # Errors name the variable and the problem but never echo the value: AGENT_MODELS and
    # AGENT_API_KEYS carry secrets, and the CLI prints configuration errors.
    model_config = SettingsConfigDict(
        env_prefix="AGENT_", extra="ignore", populate_by_name=True, hide_input_in_errors=True
    )

    openai_base_url: str | None = _from(
        ModelConfig, "base_url", validation_alias=AliasChoices("OPENAI_BASE_URL", "openai_base_url")
    )
    openai_api_key: str = _from(
        ModelConfig, "api_key", validation_alias=AliasChoices("OPENAI_API_KEY", "openai_api_key")
    )
    model: str = _from(ModelConfig, "model")
    models: Annotated[list[ModelSetting], NoDecode] = Field(
        default_factory=list,
        description="JSON list of models (see ModelSetting); empty: AGENT_MODEL alone, keyed 'default'.",
    )
    default_model: str | None = Field(None, description="Key of the model used when none is asked for.")
    model_timeout: float = _from(ModelConfig, "request_timeout")
    model_max_retries: int = _from(ModelConfig, "max_retries")
    model_retry_base_delay: float = _from(ModelConfig, "retry_base_delay")
    model_retry_max_delay: float = _from(ModelConfig, "retry_max_delay")
    data_dir: Path = Field(
        Path("./data"), description="SQLite file (unless database_url is set) and workspaces."
    )
    database_url: str | None = Field(
        None,
        description="postgresql://user:password@host:port/dbname to keep the store in PostgreSQL; unset: "
        "the embedded SQLite file in data_dir.",
    )
    api_keys: str = Field("", description="user:token,user2:token2 — Bearer tokens, each mapped to a user.")
    sandbox_image: str | None = Field(
        None,
        description="Sandbox image tag; unset: agent-worker-sandbox:<recipe>, one per base and Dockerfile.",
    )
    sandbox_base_image: str | None = Field(
        None,
        description="Base the sandbox image is built from; unset: agent-worker-base:bookworm if present, "
        "else python:3.12-slim.",
    )
    sandbox_memory_mb: int = _from(SandboxLimits, "memory_mb")
    sandbox_cpus: float = _from(SandboxLimits, "cpus")
    sandbox_pids: int = _from(SandboxLimits, "pids")
    sandbox_network: str = _from(SandboxLimits, "network")
    sandbox_tmp_mb: int = _from(SandboxLimits, "tmp_size_mb")
    sandbox_workspace_mb: int = _from(SandboxLimits, "workspace_size_mb")
    docker_hosts: Annotated[list[EngineConfig] | None, NoDecode] = Field(
        None,
        description="JSON list of Docker engines sandboxes run on (see EngineConfig); unset: the one "
        "engine of the environment (DOCKER_HOST or the local socket).",
    )
    sandbox_pool_size: int = Field(
        2, ge=0, le=64, description="Warm spare sandboxes kept started for /chat runs; 0 turns the pool off."
    )
    tool_timeout: float = _from(ToolConfig, "default_timeout")
    tool_max_timeout: float = _from(ToolConfig, "max_timeout")
    output_limit: int = _from(SandboxLimits, "output_limit_bytes")
    system_prompt: str = _from(LoopConfig, "system_prompt")
    capabilities_file: Path | None = Field(
        None,
        description="JSON list of the global capabilities; unset: the built-in ones (docs/capabilities.md).",
    )
    public_url: str | None = Field(
        None,
        pattern=r"^https?://[^/?#]+(/[^?#]*)?$",
        description="URL clients reach the worker at, for the A2A agent card; unset: each request's Host.",
    )
    instance_id: str | None = Field(
        None,
        description="Names this worker's containers and its lease; default derived from the data "
        "directory. Each worker on one database needs its own.",
    )
    task_max_per_user: int = _from(TaskLimits, "max_per_user")
    max_running_tasks: int = _from(TaskLimits, "max_running")
    workspace_idle_timeout: float = Field(
        600.0, gt=0, description="Seconds a workspace's sandbox stays up after its last task."
    )
    workspace_max_mb: int = Field(
        1024,
        ge=0,
        description="Disk quota of each workspace in MiB (a loop-mounted filesystem each; needs root); 0: none.",
    )
    mcp_wait_seconds: float = Field(
        50.0, ge=0, description="Longest an MCP run_agent / get_task call waits for the answer."
    )
    mcp_sandbox_idle_timeout: float = Field(
        600.0, gt=0, description="Seconds an MCP session's sandbox stays up after its last command."
    )
    mcp_sandboxes_per_user: int = Field(4, ge=1, description="MCP session sandboxes a user may have at once.")
    mcp_max_file_bytes: int = Field(
        512 * 1024, ge=1, description="Largest file an MCP write_file writes, and read_file reads per call."
    )
    mcp_allowed_origins: str = Field(
        "",
        description="Comma-separated Origin values a browser may call /mcp from; any other Origin is a 403.",
    )
    shutdown_grace: float = _from(TaskLimits, "shutdown_grace")
    worker_lease_seconds: float = _from(LeaseConfig, "lease_seconds")
    worker_heartbeat_seconds: float = _from(LeaseConfig, "heartbeat_seconds")
    max_request_bytes: int = Field(1_048_576, ge=1024, description="Largest accepted request body.")
    max_upload_bytes: int = Field(
        50 * 1024 * 1024, ge=1, description="Largest file accepted by the files API."
    )
    idempotency_ttl: float = Field(
        86_400.0, gt=0, description="Seconds an Idempotency-Key is kept after its request was answered."
    )
    rate_limit_per_minute: int = Field(
        120, ge=0, description="Requests a minute per API user (a burst may use the whole minute); 0: off."
    )
    rate_limit_concurrency: int = Field(
        10, ge=0, description="Requests an API user may have open at once, streams included; 0: off."
    )
    public_rate_limit_per_minute: int = Field(
        60, ge=0, description="Requests a minute per client address to the endpoints without a token; 0: off."
    )
    public_rate_limit_concurrency: int = Field(
        4, ge=0, description="Requests a client address may have open at once to those endpoints; 0: off."
    )
    registration: Literal["open", "closed"] = _from(PlatformConfig, "registration")
    signup_credits: int = _from(PlatformConfig, "signup_credits")
    registrations_per_day: int = _from(PlatformConfig, "registrations_per_day")
    task_expiry_interval: float = _from(PlatformConfig, "task_expiry_interval")
    trusted_proxy_hops: int = Field(
        0, ge=0, description="Proxies in front that append to X-Forwarded-For; 0: the header is ignored."
    )
    metrics_public: bool = Field(
        False, description="GET /metrics without a key (for a scraper on a private network); false: a key."
    )
    ready_timeout: float = Field(
        3.0, gt=0, le=60, description="Seconds GET /ready waits for each check (the model server's answer)."
    )
    otel_exporter_otlp_endpoint: str | None = Field(
        None,
        pattern=r"^https?://",
        validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_ENDPOINT", "otel_exporter_otlp_endpoint"),
        description="OTLP/HTTP collector (e.g. http://localhost:4318): traces go to its /v1/traces; unset: off.",
    )
    otel_exporter_otlp_traces_endpoint: str | None = Field(
        None,
        pattern=r"^https?://",
        validation_alias=AliasChoices(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "otel_exporter_otlp_traces_endpoint"
        ),
        description="The traces URL itself, as is (the standard's signal-specific variable, which wins).",
    )
    log_format: str = Field("auto", pattern="^(auto|json|console)$", description="auto: console on a TTY.")
    log_level: str = Field("info", description="Minimum log level.")

    _capabilities: list[CapabilitySpec] | None = PrivateAttr(None)

    @field_validator("otel_exporter_otlp_endpoint", "otel_exporter_otlp_traces_endpoint", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value  # VAR= in a compose file

    @field_validator("api_keys")
    @classmethod
    def _check_api_keys(cls, value: str) -> str:
        for number, pair in enumerate(filter(None, (p.strip() for p in value.split(","))), start=1):
            user, sep, token = pair.partition(":")
            if not sep or not user.strip() or not token.strip():
                # The entry itself may be a bare token: name its position, never its text.
                raise ValueError(f"AGENT_API_KEYS entry #{number} is not user:token")
        return value

    @field_validator("models", mode="before")
    @classmethod
    def _parse_models(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if not value.strip():
            return []
        try:
            return json.loads(value)
        except json.JSONDecodeError as e:
            raise ValueError(f"AGENT_MODELS is not valid JSON: {e}") from None

    @field_validator("docker_hosts", mode="before")
    @classmethod
    def _parse_docker_hosts(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if not value.strip():
            return None
        try:
            return json.loads(value)
        except json.JSONDecodeError as e:
            raise ValueError(f"AGENT_DOCKER_HOSTS is not valid JSON: {e}") from None

    @field_validator("docker_hosts")
    @classmethod
    def _check_docker_hosts(cls, value: list[EngineConfig] | None) -> list[EngineConfig] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("AGENT_DOCKER_HOSTS lists no engine; leave it unset for the local one")
        names = [engine.name for engine in value]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"AGENT_DOCKER_HOSTS has duplicate names: {', '.join(duplicates)}")
        return value

    @field_validator("models")
    @classmethod
    def _check_model_keys(cls, value: list[ModelSetting]) -> list[ModelSetting]:
        keys = [entry.key for entry in value]
        duplicates = sorted({key for key in keys if keys.count(key) > 1})
        if duplicates:
            raise ValueError(f"AGENT_MODELS has duplicate keys: {', '.join(duplicates)}")
        return value

    @field_validator("default_model")
    @classmethod
    def _check_default_model(cls, value: str | None, info: ValidationInfo) -> str | None:
        if not value or "models" not in info.data:  # an invalid AGENT_MODELS is reported on its own
            return value or None
        keys = [entry.key for entry in info.data["models"]] or [SINGLE_MODEL_KEY]
        if value not in keys:
            raise ValueError(f"AGENT_DEFAULT_MODEL {value!r} is not one of the model keys: {', '.join(keys)}")
        return value

    @model_validator(mode="after")
    def _load_capabilities(self) -> Settings:
        if self.capabilities_file is None:
            return self
        try:
            specs = load_capabilities_file(self.capabilities_file)
        except ValueError as e:
            raise ValueError(f"AGENT_CAPABILITIES_FILE: {e}") from None
        keys = [entry.key for entry in self.registered_models()]
        for spec in specs:
            if spec.model_key is not None and spec.model_key not in keys:
                raise ValueError(
                    f"AGENT_CAPABILITIES_FILE: capability {spec.id!r} names model {spec.model_key!r}, "
                    f"which is not one of the model keys: {', '.join(keys)}"
                )
        self._capabilities = specs
        return self

    @model_validator(mode="after")
    def _check_sandbox_limits(self) -> Settings:
        # At load, so that the CLI reports it as configuration: tmpfs mounts too large for the memory.
        try:
            self.sandbox_limits()
        except ValidationError as e:
            raise ValueError(
                "; ".join(str(err.get("ctx", {}).get("error", err["msg"])) for err in e.errors())
            ) from None
        return self

    @model_validator(mode="after")
    def _check_lease(self) -> Settings:
        if self.worker_heartbeat_seconds >= self.worker_lease_seconds:
            raise ValueError("AGENT_WORKER_HEARTBEAT_SECONDS must be less than AGENT_WORKER_LEASE_SECONDS")
        return self

    @property
    def tokens(self) -> dict[str, str]:
        """Bearer token → user."""
        pairs = (p.strip().partition(":") for p in self.api_keys.split(",") if p.strip())
        return {token.strip(): user.strip() for user, _, token in pairs}

    @property
    def db_path(self) -> Path:
        return self.data_dir / "agent-worker.sqlite3"

    @property
    def database(self) -> str | Path:
        """Where the store is, as :meth:`runtime.store.Store.open` takes it: a URL, or the SQLite file."""
        return self.database_url or self.db_path

    @property
    def worker_instance(self) -> str:
        """Stable across restarts on the same data directory, so orphans can be found and removed."""
        if self.instance_id:
            return self.instance_id
        return hashlib.sha256(str(self.data_dir.resolve()).encode()).hexdigest()[:12]

    def model_settings(self) -> ModelConfig:
        return ModelConfig(
            base_url=self.openai_base_url,
            api_key=self.openai_api_key,
            model=self.model,
            request_timeout=self.model_timeout,
            max_retries=self.model_max_retries,
            retry_base_delay=self.model_retry_base_delay,
            retry_max_delay=self.model_retry_max_delay,
        )

    def registered_models(self) -> list[ModelEntry]:
        """Each AGENT_MODELS entry on the shared timeouts and retries; without any, AGENT_MODEL."""
        base = self.model_settings()
        if not self.models:
            return [ModelEntry(key=SINGLE_MODEL_KEY, config=base)]
        return [
            ModelEntry(
                key=entry.key,
                description=entry.description,
                config=base.model_copy(
                    update=entry.model_dump(exclude={"key", "description"}, exclude_none=True)
                ),
            )
            for entry in self.models
        ]

    def global_capabilities(self) -> list[Capability]:
        """The capabilities of AGENT_CAPABILITIES_FILE (read once, at validation), else the built-ins."""
        return global_capabilities(self._capabilities)

    def loop_settings(self) -> LoopConfig:
        return LoopConfig(
            system_prompt=self.system_prompt,
            tools=ToolConfig(
                default_timeout=self.tool_timeout,
                max_timeout=self.tool_max_timeout,
                output_limit=self.output_limit,
            ),
        )

    def lease_settings(self) -> LeaseConfig:
        return LeaseConfig(
            lease_seconds=self.worker_lease_seconds, heartbeat_seconds=self.worker_heartbeat_seconds
        )

    def task_limits(self) -> TaskLimits:
        return TaskLimits(
            max_per_user=self.task_max_per_user,
            max_running=self.max_running_tasks,
            shutdown_grace=self.shutdown_grace,
        )

    def platform_settings(self) -> PlatformConfig:
        return PlatformConfig(
            registration=self.registration,
            signup_credits=self.signup_credits,
            registrations_per_day=self.registrations_per_day,
            task_expiry_interval=self.task_expiry_interval,
        )

    def traces_endpoint(self) -> str | None:
        """Where spans are exported, as the OTLP exporter specification derives it; None: traces off."""
        if self.otel_exporter_otlp_traces_endpoint:
            return self.otel_exporter_otlp_traces_endpoint
        if self.otel_exporter_otlp_endpoint:
            return self.otel_exporter_otlp_endpoint.rstrip("/") + "/v1/traces"
        return None

    def user_rate_limit(self) -> RateLimit:
        return RateLimit(per_minute=self.rate_limit_per_minute, concurrency=self.rate_limit_concurrency)

    def public_rate_limit(self) -> RateLimit:
        return RateLimit(
            per_minute=self.public_rate_limit_per_minute, concurrency=self.public_rate_limit_concurrency
        )

    def workspace_settings(self) -> WorkspaceConfig:
        return WorkspaceConfig(
            root=self.data_dir / "workspaces",
            max_mb=self.workspace_max_mb,
            required="workspace_max_mb" in self.model_fields_set,
        )

    def sandbox_limits(self) -> SandboxLimits:
        return SandboxLimits(
            memory_mb=self.sandbox_memory_mb,
            cpus=self.sandbox_cpus,
            pids=self.sandbox_pids,
            tmp_size_mb=self.sandbox_tmp_mb,
            workspace_size_mb=self.sandbox_workspace_mb,
            network=self.sandbox_network,
            output_limit_bytes=self.output_limit,
        )
