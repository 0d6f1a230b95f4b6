"""What the routes receive, as named dependencies: `store: StoreDep`, `settings: SettingsDep`.

create_app() puts the settings and the catalog on `app.state`, the lifespan puts the store (it
holds the Redis client, which lives as long as the app serves).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from relatorios.api.responses import ReportInfo
from relatorios.settings import Settings
from relatorios.tasks import TaskStore


def get_store(request: Request) -> TaskStore:
    store: TaskStore = request.app.state.store
    return store


def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_catalog(request: Request) -> list[ReportInfo]:
    catalog: list[ReportInfo] = request.app.state.catalog
    return catalog


StoreDep = Annotated[TaskStore, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
CatalogDep = Annotated[list[ReportInfo], Depends(get_catalog)]
