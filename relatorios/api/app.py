"""The FastAPI application, built by a factory:

    uvicorn --factory relatorios.api.app:create_app      (what `relatorios api` runs)

Nothing reads the environment at import time: tests call create_app(Settings(...)).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from starlette.middleware.trustedhost import TrustedHostMiddleware

from relatorios import __version__
from relatorios.api import errors
from relatorios.api.middleware import BodyGuard, SecurityHeaders
from relatorios.api.requests import departments_of, request_union
from relatorios.api.responses import ADMIN, AUTH, ReportInfo
from relatorios.api.routes import (
    catalog,
    dead_letters,
    health,
    keys,
    metrics,
    orders,
    schedules,
    states,
    tasks,
    web,
)
from relatorios.catalog import for_source, load_catalog
from relatorios.logs import setup_logging
from relatorios.protocol import Keys
from relatorios.schedules import OrderCheck, ScheduleStore
from relatorios.settings import Settings, get_settings
from relatorios.tasks import QueueUnavailable, TaskStore
from relatorios.webhooks import Allowlist

log = logging.getLogger("relatorios.api")
SWEEP_EVERY_S = 60
REDIS_CONNECTIONS = 100
# FastAPI's native OpenTelemetry asks the global providers (and the environment) on every
# request whether anyone listens: 7% of an order's time under load (docs/profiling.md), for
# providers this project never configures. Metrics are /metrics (Prometheus), logs are JSON.
NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}

DESCRIPTION = """
Gerador de relatórios assíncrono: `POST /gerar-relatorio` valida o pedido, enfileira a tarefa no
Redis (`fila_relatorios`) e responde **202** na hora; um worker gera o CSV em `export/`, linha a
linha. Acompanhe em `GET /relatorios/{task_id}` e baixe em `GET /relatorios/{task_id}/download`.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API for `settings` (default: the environment's), its catalog read now."""
    settings = settings or get_settings()
    setup_logging(settings.log_format, prefix="API: ")
    # Only the reports the configured database can run: any other type is refused with 422.
    reports = for_source(load_catalog(settings.catalog_dir), settings.source)
    departments = departments_of(settings)
    app = FastAPI(
        title="relatorios",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        telemetry=NO_TELEMETRY,
    )
    app.state.settings = settings
    app.state.catalog = [ReportInfo.of(r, departments) for r in reports.values()]
    errors.install(app)
    allowed = Allowlist.parse(settings.webhook_allowed_hosts)
    app.state.webhook_allowlist = allowed
    app.state.order_check = OrderCheck(reports, departments)
    app.include_router(orders.router(request_union(reports, departments, allowed)), responses=AUTH)
    for module in (catalog, states, tasks, schedules):
        app.include_router(module.router, responses=AUTH)
    for module in (dead_letters, keys, metrics):
        app.include_router(module.router, responses=ADMIN)
    for module in (health, web):  # public
        app.include_router(module.router)
    # Outermost last: every answer (a 400 or a 413 too) carries the security headers; a Host
    # outside ALLOWED_HOSTS (DNS rebinding) is refused before its body is read.
    app.add_middleware(BodyGuard, limit=settings.max_body_bytes)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.allowed_hosts)
    app.add_middleware(SecurityHeaders)
    return app


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """While the app serves: the store (one Redis client) and the retention sweep."""
    settings: Settings = app.state.settings
    # A blocking pool: past REDIS_CONNECTIONS requests in flight, a request waits for a free
    # connection (up to the socket timeout) instead of failing with redis-py's "Too many
    # connections" (its default pool holds 100, and 1,000 clients got 503s).
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=REDIS_CONNECTIONS,
        timeout=5,
        decode_responses=True,
        encoding_errors="replace",  # an `erro` text may hold invalid UTF-8 (from SQLite)
        socket_connect_timeout=2,
        socket_timeout=5,
    )
    client = aioredis.Redis(connection_pool=pool)
    store = TaskStore(client, Keys(settings.queue_name), int(settings.retention_days * 86_400))
    app.state.store = store
    app.state.schedules = ScheduleStore(client, Keys(settings.queue_name))
    sweeper = asyncio.create_task(sweep_forever(store, settings))
    yield
    sweeper.cancel()
    await client.aclose()


async def sweep_forever(store: TaskStore, settings: Settings) -> None:
    """Retention (docs/protocol.md): expire old finished tasks and their files, once a minute."""
    while True:
        with contextlib.suppress(QueueUnavailable, OSError):
            expired = await store.sweep(settings.export_dir)
            if expired:
                log.info("Retenção: %d tarefas expiradas", expired)
        await asyncio.sleep(SWEEP_EVERY_S)
