"""What the routes receive, as named dependencies: `store: StoreDep`, `settings: SettingsDep`.

create_app() puts the settings and the catalog on `app.state`, the lifespan puts the store (it
holds the Redis client, which lives as long as the app serves).

Every dependency is `async def` although none awaits: FastAPI runs a plain `def` dependency in
its thread pool, and that hand-off to a thread and back, once per dependency per request, was
the largest single cost of `POST /gerar-relatorio` under load (docs/profiling.md).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from relatorios.api.responses import ReportInfo
from relatorios.settings import Settings
from relatorios.tasks import TaskStore


async def get_store(request: Request) -> TaskStore:
    store: TaskStore = request.app.state.store
    return store


async def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_catalog(request: Request) -> list[ReportInfo]:
    catalog: list[ReportInfo] = request.app.state.catalog
    return catalog


StoreDep = Annotated[TaskStore, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
CatalogDep = Annotated[list[ReportInfo], Depends(get_catalog)]
