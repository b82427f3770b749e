"""ConvAssist settings: one pydantic-settings class, every environment variable documented once.

| variable                        | default                  | meaning                                              |
|---------------------------------|--------------------------|------------------------------------------------------|
| CONVASSIST_ENV                  | dev                      | `dev` or `prod`; prod requires JWT_SECRET            |
| CONVASSIST_DATA_DIR             | ./data                   | where dev secrets, the private database and Redis live |
| CONVASSIST_CACHE_DIR            | ~/.cache/convassist      | `make run/test`: the venv, built wheels and bun      |
| CONVASSIST_PORT                 | 3000                     | `make run`: the app's one port                       |
| CONVASSIST_PYTHON               | python3                  | `make run/test`: the interpreter the venv is made from |
| DATABASE_URL                    | (built, see below)       | SQLAlchemy URL; `postgresql://` means psycopg 3      |
| DATABASE_POSTGRES_USER/PASSWORD/NAME/HOST/PORT | -         | used to build the URL when DATABASE_URL is unset     |
| REDIS_URL                       | redis://127.0.0.1:6379/0 | arq queue, reply cache, Reflex state                 |
| JWT_SECRET                      | dev: generated and kept  | signs provider and device tokens                     |
| JWT_EXPIRES_IN                  | 7d                       | a login's token lifetime: `30s`, `15m`, `12h`, `7d`, or seconds |
| JWT_DEVICE_EXPIRES_IN           | 90d                      | a Mac's token lifetime (renewed while it syncs)      |
| ALLOW_SIGNUP                    | dev: true, prod: false   | whether anyone may sign up (else: `python -m convassist create-account`) |
| CONVASSIST_PUBLIC_URL           | http://localhost:PORT    | the address browsers and Macs use; CORS allows only its origin |
| CONVASSIST_OPS_TOKEN            | -                        | a secret that unlocks GET /api/health/details for monitoring |
| CONVASSIST_TRUSTED_PROXY_HOPS   | 0                        | reverse proxies in front adding X-Forwarded-For (the per-address limits' address) |
| ML_SERVICE_MODEL_ID             | smollm2-135m-instruct    | a model registry id (ml/registry.py)                 |
| ML_SERVICE_MODEL_PATH           | -                        | a GGUF file; overrides the registry                  |
| ML_SERVICE_GPU_LAYERS           | -1                       | layers offloaded to a GPU (-1 all, 0 none)           |
| ML_SERVICE_CONTEXT_SIZE         | 4096                     | llama.cpp context window                             |
| ML_SERVICE_THREADS              | cores it may use         | llama.cpp threads per worker (they barely spin while idle: workers can share cores) |
| ML_SERVICE_REDIS_ENABLED        | true                     | cache replies in Redis                               |
| ML_SERVICE_REDIS_CACHE_TTL      | 3600                     | cache lifetime in seconds                            |
| ML_SERVICE_QUEUE                | convassist:queue         | arq queue name shared by app and worker              |
| ML_SERVICE_TRAIN_THREADS        | 1                        | torch threads for LoRA training (the rest serve replies) |
| ML_SERVICE_GENERATIONS_PER_MINUTE | 120                    | new generations one provider may start per minute (429 past it) |
| ML_SERVICE_MAX_IN_FLIGHT        | 4                        | generations one provider may have queued or running at once (429) |
| ML_SERVICE_REQUESTS_PER_MINUTE  | 600                      | suggestion requests of one provider per minute, cache hits included (429) |
| ML_SERVICE_TRAINING_QUEUE       | QUEUE + `:training`      | arq queue of training jobs (one at a time per worker; never blocks replies) |
| ML_SERVICE_HEARTBEAT_SECONDS    | 10                       | how often a worker refreshes its health entry (gone after 3 missed) |
| ML_SERVICE_ENGINE               | llama                    | `llama` (the model) or `fake` (a fixed reply: fast tests of all around it) |

Unknown variables with one of our prefixes, and invalid values, fail at start naming the variable.
"""

from __future__ import annotations

import os
import re
import secrets
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Environment variables with these prefixes belong to us: a misspelt one is an error, not a no-op.
OWNED_PREFIXES = ("CONVASSIST_", "DATABASE_", "JWT_", "ML_SERVICE_")

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class SettingsError(ValueError):
    """Configuration that cannot work, with the variable named."""


def parse_duration(value: str | int | timedelta) -> timedelta:
    """'7d' / '12h' / '15m' / '30s' / '3600' → timedelta."""
    if isinstance(value, timedelta):
        return value
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError("expected a duration such as 7d, 12h, 15m, 30s or a number of seconds")
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise ValueError("must be positive")
    return timedelta(seconds=seconds)


class Settings(BaseSettings):
    """Every setting of the app and the worker."""

    model_config = SettingsConfigDict(env_file=".env", extra="forbid", case_sensitive=False)

    convassist_env: Literal["dev", "prod"] = "dev"
    convassist_data_dir: Path = PROJECT_ROOT / "data"
    convassist_cache_dir: Path = Path.home() / ".cache" / "convassist"
    convassist_port: int = Field(3000, ge=1, le=65535)
    convassist_python: str = "python3"

    database_url: str | None = None
    database_postgres_user: str | None = None
    database_postgres_password: str | None = None
    database_postgres_name: str | None = None
    database_postgres_host: str = "127.0.0.1"
    database_postgres_port: int = Field(5432, ge=1, le=65535)

    redis_url: str = "redis://127.0.0.1:6379/0"

    jwt_secret: str | None = None
    jwt_expires_in: timedelta = timedelta(days=7)
    # a Mac off for a holiday must not come back unpaired; a token is checked against its device (Deactivate)
    # on every request, so a long life costs no control
    jwt_device_expires_in: timedelta = timedelta(days=90)
    allow_signup: bool | None = None
    convassist_public_url: str | None = None
    # reverse proxies in front that append the client's address to X-Forwarded-For (0: none, the header is
    # ignored: anyone could write it); behind one proxy and set to 0, every client counts as the proxy
    convassist_trusted_proxy_hops: int = Field(0, ge=0, le=5)
    convassist_ops_token: str | None = Field(default=None, min_length=32)

    ml_service_model_id: str = "smollm2-135m-instruct"
    ml_service_model_path: Path | None = None
    ml_service_gpu_layers: int = Field(-1, ge=-1)
    ml_service_context_size: int = Field(4096, ge=256, le=131072)
    # the cores this process may run on (taskset, cgroup cpusets), not every core of the machine
    ml_service_threads: int = Field(default_factory=lambda: len(os.sched_getaffinity(0)), ge=1)
    ml_service_redis_enabled: bool = True
    ml_service_redis_cache_ttl: int = Field(3600, ge=1)
    ml_service_queue: str = "convassist:queue"
    ml_service_train_threads: int = Field(1, ge=1, le=64)
    # switch a new adapter on by itself when it beats the base model and the adapter serving (never if worse)
    ml_service_training_auto_activate: bool = False
    ml_service_generations_per_minute: int = Field(120, ge=1)
    ml_service_max_in_flight: int = Field(4, ge=1)
    # every request, a cache hit or a join too: each stores a response row or a result for an hour
    ml_service_requests_per_minute: int = Field(600, ge=1)
    ml_service_training_queue: str | None = None
    ml_service_heartbeat_seconds: int = Field(10, ge=1, le=300)
    ml_service_engine: Literal["llama", "fake"] = "llama"
    # a model of a type slow on CPU (the embedded Q4_1) is served as this type, converted once (ml/quantize.py)
    ml_service_requantize: Literal["Q8_0", "Q4_0", "off"] = "Q8_0"
    # what the worker keeps of recent conversations' reading (llama.cpp sequence states), at most
    ml_service_kv_memory_mb: int = Field(256, ge=0, le=65536)
    # suggestions of one request decoded together (ml.engine._Sequences); each holds its own KV cache of
    # CONTEXT_SIZE tokens (SmolLM2: ≈94 MB at 4096; a 7B model ≈0.5 GB), 1: one after another
    ml_service_parallel_replies: int = Field(3, ge=1, le=3)
    # the provider's past exchanges most like the client's message, put in the prompt as examples
    # (services/examples.py; PostgreSQL full-text search), at most; 0: none
    ml_service_examples: int = Field(3, ge=0, le=8)
    # suggestions computed when a client's message arrives (services/ahead.py), per provider per minute
    ml_service_ahead: bool = True
    ml_service_ahead_per_minute: int = Field(20, ge=1)

    @field_validator("jwt_expires_in", "jwt_device_expires_in", mode="before")
    @classmethod
    def _duration(cls, value):
        return parse_duration(value)

    @field_validator("convassist_public_url")
    @classmethod
    def _public_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_scheme(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.startswith(("postgres://", "postgresql://")):
            return "postgresql+psycopg://" + value.split("://", 1)[1]
        if not value.startswith(("postgresql+psycopg://", "sqlite://")):
            raise ValueError("must be a postgresql:// or sqlite:// URL")
        return value

    @model_validator(mode="after")
    def _prod_needs_secret(self) -> "Settings":
        if self.convassist_env == "prod" and not self.jwt_secret:
            raise SettingsError("JWT_SECRET is required when CONVASSIST_ENV=prod")
        if self.jwt_secret is not None and len(self.jwt_secret) < 32:
            raise SettingsError("JWT_SECRET must be at least 32 characters")
        return self

    # -- derived values ---------------------------------------------------------------------
    @property
    def is_dev(self) -> bool:
        return self.convassist_env == "dev"

    @property
    def signup_open(self) -> bool:
        """ALLOW_SIGNUP, else open in dev and closed in prod."""
        return self.is_dev if self.allow_signup is None else self.allow_signup

    @property
    def training_queue(self) -> str:
        return self.ml_service_training_queue or f"{self.ml_service_queue}:training"

    @property
    def public_url(self) -> str:
        """Where browsers and Macs reach this server (no trailing slash)."""
        return (self.convassist_public_url or f"http://localhost:{self.convassist_port}").rstrip("/")

    @property
    def allowed_origins(self) -> list[str]:
        """The only origins whose pages may call the API or open the app's socket (CORS): the public
        URL's; without one, this machine's own on the app's port."""
        if self.convassist_public_url:
            return [self.public_url]
        return [f"http://localhost:{self.convassist_port}", f"http://127.0.0.1:{self.convassist_port}"]

    @property
    def resolved_database_url(self) -> str:
        """DATABASE_URL, else one built from DATABASE_POSTGRES_*, else dev SQLite in the data dir."""
        if self.database_url:
            return self.database_url
        if self.database_postgres_user and self.database_postgres_name:
            password = f":{self.database_postgres_password}" if self.database_postgres_password else ""
            return (f"postgresql+psycopg://{self.database_postgres_user}{password}@"
                    f"{self.database_postgres_host}:{self.database_postgres_port}/{self.database_postgres_name}")
        return f"sqlite:///{self.convassist_data_dir / 'convassist.db'}"

    @property
    def resolved_jwt_secret(self) -> str:
        """JWT_SECRET, or in dev a random secret generated once and kept in the data directory."""
        if self.jwt_secret:
            return self.jwt_secret
        path = self.convassist_data_dir / "jwt_secret"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
        return path.read_text().strip()


def unknown_variables(environ: dict[str, str] | None = None) -> list[str]:
    """Our-prefixed environment variables that match no setting (likely typos)."""
    environ = dict(os.environ if environ is None else environ)
    known = {name.upper() for name in Settings.model_fields}
    return sorted(k for k in environ if k.upper().startswith(OWNED_PREFIXES) and k.upper() not in known)


def load_settings() -> Settings:
    """Read and validate the settings; raise SettingsError naming each bad variable."""
    unknown = unknown_variables()
    if unknown:
        raise SettingsError("unknown setting(s): " + ", ".join(unknown) + " (see convassist/settings.py)")
    try:
        return Settings()
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = ".".join(str(part) for part in err["loc"]).upper() or "settings"
            problems.append(f"{name}: {err['msg']}")
        raise SettingsError("invalid setting(s): " + "; ".join(problems)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (tests call get_settings.cache_clear() after changing env)."""
    return load_settings()
