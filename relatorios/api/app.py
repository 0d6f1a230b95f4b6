"""The FastAPI application: `uvicorn relatorios.api.app:app` or `relatorios api`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from fastapi import FastAPI

from relatorios import __version__
from relatorios.api import errors
from relatorios.api.health import router as health_router
from relatorios.api.requests import department_names, request_union
from relatorios.api.routes import build_router
from relatorios.catalog import load_catalog
from relatorios.protocol import Keys
from relatorios.settings import Settings, get_settings

DESCRIPTION = """
Gerador de relatórios assíncrono: `POST /gerar-relatorio` valida o pedido, enfileira a tarefa no
Redis (`fila_relatorios`) e responde **202** na hora; um worker gera o CSV em `export/`, linha a
linha. Acompanhe em `GET /relatorios/{task_id}` e baixe em `GET /relatorios/{task_id}/download`.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    catalog = load_catalog(settings.catalog_dir)
    departments = department_names(settings.db_path)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from relatorios.tasks import TaskStore

        client = aioredis.Redis.from_url(
            settings.redis_url,
            decode_responses=True,
            socket_connect_timeout=2,
            socket_timeout=5,
        )
        app.state.store = TaskStore(client, Keys(settings.queue_name))
        yield
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
    return app


def __getattr__(name: str) -> FastAPI:
    # `relatorios.api.app:app` builds the app on first access, so importing this module for
    # create_app() in tests does not read the environment's settings.
    if name == "app":
        return create_app()
    raise AttributeError(name)
