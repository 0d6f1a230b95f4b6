"""One settings object per process, read from the environment and validated at start-up."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from relatorios.protocol import (
    DEFAULT_NOTIFIER_TICK_S,
    DEFAULT_QUEUE,
    DEFAULT_SCHEDULE_GRACE_S,
    DEFAULT_SCHEDULER_LEASE_S,
    DEFAULT_SCHEDULER_TICK_S,
    DEFAULT_STATEMENT_TIMEOUT_S,
    DEFAULT_WEBHOOK_ATTEMPTS,
    DEFAULT_WEBHOOK_BACKOFF_S,
    DEFAULT_WEBHOOK_TIMEOUT_S,
    MAX_STATEMENT_TIMEOUT_S,
    PROGRESS_EVERY_ROWS,
    SOURCE_POSTGRESQL,
    SOURCE_SQLITE,
)

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Environment variables, by the same names for every process (see docs/protocol.md)."""

    model_config = SettingsConfigDict(
        env_prefix="", extra="ignore", frozen=True, populate_by_name=True
    )

    redis_url: str = Field(
        "redis://localhost:6379/0", description="Redis server (make run starts a private one)"
    )
    db_path: Path = Field(Path("data/empresa.db"), description="SQLite database")
    # PostgreSQL instead of SQLite when set (postgresql://user:password@host:port/db?…). It holds
    # a password: never echo it (errors name the setting, docs/protocol.md "Sources").
    database_url: str = Field("", description="PostgreSQL; empty: SQLite at db_path", repr=False)
    statement_timeout_s: float = Field(
        DEFAULT_STATEMENT_TIMEOUT_S, ge=0, le=MAX_STATEMENT_TIMEOUT_S, description="0: no limit"
    )
    export_dir: Path = Field(Path("export"), description="where CSV files are written")
    queue_name: str = Field(DEFAULT_QUEUE, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    catalog_dir: Path = Field(REPO_ROOT / "catalog", description="report SQL files")
    state_dir: Path = Field(REPO_ROOT / "var", description="make run's private Redis files")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    # uvicorn worker processes behind one port: each has its own event loop and Redis client;
    # everything they share lives in Redis (docs/operations.md).
    api_workers: int = Field(1, ge=1, le=64, validation_alias="API_WORKERS")
    log_format: Literal["text", "json"] = "text"
    progress_every: int = Field(PROGRESS_EVERY_ROWS, ge=1)
    # Reliability (docs/protocol.md): the environment names are the protocol's Portuguese ones.
    max_attempts: int = Field(3, ge=1, le=100, validation_alias="MAX_TENTATIVAS")
    retry_base_s: float = Field(1.0, ge=0, le=60, validation_alias="RETRY_BASE_S")
    shutdown_deadline_s: float = Field(20.0, ge=0, le=3600, validation_alias="SHUTDOWN_DEADLINE_S")
    max_queue: int = Field(10_000, ge=1, validation_alias="MAX_FILA")
    retention_days: float = Field(7.0, gt=0, le=3650, validation_alias="RETENCAO_DIAS")
    # Webhooks (docs/operations.md, "Webhooks").
    public_url: str = Field(
        "", validation_alias="URL_PUBLICA", description="base of download_url; empty: HOST:PORT"
    )
    webhook_allowed_hosts: str = Field("", validation_alias="WEBHOOK_HOSTS_PERMITIDOS")
    # The HMAC secret; empty: one is made once and kept in Redis (`relatorios segredo-webhook`).
    webhook_secret: str = Field("", validation_alias="WEBHOOK_SEGREDO", repr=False)
    webhook_attempts: int = Field(
        DEFAULT_WEBHOOK_ATTEMPTS, ge=1, le=100, validation_alias="WEBHOOK_TENTATIVAS"
    )
    webhook_backoff_s: float = Field(
        DEFAULT_WEBHOOK_BACKOFF_S, ge=0, le=3600, validation_alias="WEBHOOK_ESPERA_S"
    )
    webhook_timeout_s: float = Field(
        DEFAULT_WEBHOOK_TIMEOUT_S, gt=0, le=60, validation_alias="WEBHOOK_TIMEOUT_S"
    )
    notifier_tick_s: float = Field(
        DEFAULT_NOTIFIER_TICK_S, gt=0, le=60, validation_alias="NOTIFICADOR_INTERVALO_S"
    )
    # Schedules (docs/operations.md, "Schedules").
    scheduler_tick_s: float = Field(
        DEFAULT_SCHEDULER_TICK_S, gt=0, le=60, validation_alias="AGENDADOR_INTERVALO_S"
    )
    scheduler_lease_s: float = Field(
        DEFAULT_SCHEDULER_LEASE_S, gt=0, le=600, validation_alias="AGENDADOR_LEASE_S"
    )
    schedule_grace_s: float = Field(
        DEFAULT_SCHEDULE_GRACE_S, gt=0, le=86_400, validation_alias="AGENDADOR_TOLERANCIA_S"
    )
    # Tests only: "<schedule epoch>,<real epoch>,<factor>" makes the scheduler's clock read
    # schedule epoch + (now - real epoch) * factor (a minute per second with factor 60).
    scheduler_test_clock: str = Field("", validation_alias="AGENDADOR_RELOGIO_TESTE")

    @property
    def source(self) -> str:
        """The database reports are read from: PostgreSQL when DATABASE_URL is set, else SQLite."""
        return SOURCE_POSTGRESQL if self.database_url else SOURCE_SQLITE

    @property
    def base_url(self) -> str:
        """Where users reach the API (download links in webhooks)."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")


@lru_cache
def get_settings() -> Settings:
    return Settings()
