"""One settings object per process, read from the environment and validated at start-up."""

from __future__ import annotations

import contextlib
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from relatorios.protocol import (
    DEFAULT_MAX_TASK_BYTES,
    DEFAULT_MAX_TASK_ROWS,
    DEFAULT_NOTIFIER_TICK_S,
    DEFAULT_QUEUE,
    DEFAULT_SCHEDULE_GRACE_S,
    DEFAULT_SCHEDULER_LEASE_S,
    DEFAULT_SCHEDULER_TICK_S,
    DEFAULT_STATEMENT_TIMEOUT_S,
    DEFAULT_TASK_TIMEOUT_S,
    DEFAULT_WEBHOOK_ATTEMPTS,
    DEFAULT_WEBHOOK_BACKOFF_S,
    DEFAULT_WEBHOOK_TIMEOUT_S,
    MAX_STATEMENT_TIMEOUT_S,
    MAX_TASK_TIMEOUT_S,
    PROGRESS_EVERY_ROWS,
    SOURCE_POSTGRESQL,
    SOURCE_SQLITE,
    XLSX_MAX_SHEET_ROWS,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REDIS_URL = "redis://localhost:6379/0"
# make run's private Redis writes its URL (with its password) here, in the state folder, mode
# 0600: every process of the stack, and the CLI, find it by themselves when REDIS_URL is unset.
REDIS_URL_FILE = "redis.url"
ADMIN_KEY_FILE = "chave-admin"


class Settings(BaseSettings):
    """Environment variables, by the same names for every process (see docs/protocol.md)."""

    model_config = SettingsConfigDict(
        env_prefix="", extra="ignore", frozen=True, populate_by_name=True
    )

    redis_url: str = Field(
        DEFAULT_REDIS_URL, description="Redis server (make run starts a private one)", repr=False
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
    task_timeout_s: float = Field(
        DEFAULT_TASK_TIMEOUT_S, ge=0, le=MAX_TASK_TIMEOUT_S, validation_alias="TIMEOUT_TAREFA_S"
    )
    max_task_rows: int = Field(DEFAULT_MAX_TASK_ROWS, ge=0, validation_alias="MAX_LINHAS_TAREFA")
    max_task_bytes: int = Field(DEFAULT_MAX_TASK_BYTES, ge=0, validation_alias="MAX_BYTES_TAREFA")
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
    # Security (docs/security.md).
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        ["localhost", "127.0.0.1"], description="Host headers the API answers (comma-separated)"
    )
    max_body_bytes: int = Field(64 * 1024, ge=1024, validation_alias="MAX_CORPO_BYTES")
    metrics_token: str = Field("", repr=False, description="lets Prometheus read /metrics")
    # Quotas of each API key (a key's own fields override them: protocol.K).
    quota_rate: int = Field(600, ge=1, validation_alias="COTA_REQUISICOES_POR_MIN")
    quota_active: int = Field(20, ge=1, validation_alias="COTA_TAREFAS_ATIVAS")
    quota_bytes_day: int = Field(50 * 2**30, ge=1, validation_alias="COTA_BYTES_POR_DIA")

    # Formats (docs/protocol.md, "Formats"): formula neutralisation in csv_excel and xlsx (on by
    # default), and the rows of an xlsx sheet, header included (Excel's limit; lower only in tests).
    neutralizar_formulas: bool = Field(True, validation_alias="NEUTRALIZAR_FORMULAS")
    xlsx_linhas_por_aba: int = Field(
        XLSX_MAX_SHEET_ROWS, ge=2, le=XLSX_MAX_SHEET_ROWS, validation_alias="XLSX_LINHAS_POR_ABA"
    )

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [host.strip() for host in value.split(",") if host.strip()]
        return value

    @model_validator(mode="before")
    @classmethod
    def _private_redis(cls, data: Any) -> Any:
        """REDIS_URL unset: the private Redis of `make run`, when its URL file exists."""
        if isinstance(data, dict) and "redis_url" not in data and "REDIS_URL" not in data:
            folder = Path(data.get("state_dir") or data.get("STATE_DIR") or REPO_ROOT / "var")
            with contextlib.suppress(OSError):
                url = (folder / REDIS_URL_FILE).read_text().strip()
                if url:
                    return {**data, "redis_url": url}
        return data

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
