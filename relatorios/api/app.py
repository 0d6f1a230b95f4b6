"""The FastAPI application: `uvicorn relatorios.api.app:app` or `relatorios api`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from fastapi import FastAPI

from relatorios import __version__
from relatorios.api import errors
from relatorios.api.health import router as health_router
from relatorios.api.metrics import router as metrics_router
from relatorios.api.requests import department_names, request_union
from relatorios.api.routes import build_router
from relatorios.api.web import router as web_router
from relatorios.catalog import load_catalog
from relatorios.logs import setup_logging
from relatorios.protocol import Keys
from relatorios.settings import Settings, get_settings
from relatorios.tasks import QueueUnavailable, TaskStore

log = logging.getLogger("relatorios.api")
SWEEP_EVERY_S = 60

DESCRIPTION = """
Gerador de relatórios assíncrono: `POST /gerar-relatorio` valida o pedido, enfileira a tarefa no
Redis (`fila_relatorios`) e responde **202** na hora; um worker gera o CSV em `export/`, linha a
linha. Acompanhe em `GET /relatorios/{task_id}` e baixe em `GET /relatorios/{task_id}/download`.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    setup_logging(settings.log_format, prefix="API: ")
    catalog = load_catalog(settings.catalog_dir)
    departments = department_names(settings.db_path)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = aioredis.Redis.from_url(
            settings.redis_url,
            decode_responses=True,
            encoding_errors="replace",  # an `erro` text may hold invalid UTF-8 (from SQLite)
            socket_connect_timeout=2,
            socket_timeout=5,
        )
        store = TaskStore(client, Keys(settings.queue_name), int(settings.retention_days * 86_400))
        app.state.store = store
        sweeper = asyncio.create_task(sweep_forever(store, settings))
        yield
        sweeper.cancel()
        await client.aclose()

    app = FastAPI(
        title="relatorios",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    errors.install(app)
    body = request_union(catalog, departments)
    app.include_router(build_router(catalog, departments, body, settings))
    app.include_router(health_router)
    app.include_router(metrics_router)
    app.include_router(web_router)
    return app


async def sweep_forever(store: TaskStore, settings: Settings) -> None:
    """Retention (docs/protocol.md): expire old finished tasks and their files, once a minute."""
    while True:
        with contextlib.suppress(QueueUnavailable, OSError):
            expired = await store.sweep(settings.export_dir)
            if expired:
                log.info("Retenção: %d tarefas expiradas", expired)
        await asyncio.sleep(SWEEP_EVERY_S)


def __getattr__(name: str) -> FastAPI:
    # `relatorios.api.app:app` builds the app on first access, so importing this module for
    # create_app() in tests does not read the environment's settings.
    if name == "app":
        return create_app()
    raise AttributeError(name)
