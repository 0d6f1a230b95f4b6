"""What the routes receive, as named dependencies: `store: StoreDep`, `settings: SettingsDep`.

create_app() puts the settings and the catalog on `app.state`, the lifespan puts the store (it
holds the Redis client, which lives as long as the app serves).

Every dependency is `async def` although none awaits: FastAPI runs a plain `def` dependency in
its thread pool, and that hand-off to a thread and back, once per dependency per request, was
the largest single cost of `POST /gerar-relatorio` under load (docs/profiling.md).
"""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from relatorios.api.responses import ReportInfo
from relatorios.apikeys import ApiKey
from relatorios.schedules import ScheduleStore
from relatorios.settings import Settings
from relatorios.tasks import QueueUnavailable, TaskStore


async def get_store(request: Request) -> TaskStore:
    store: TaskStore = request.app.state.store
    return store


async def get_schedule_store(request: Request) -> ScheduleStore:
    schedules: ScheduleStore = request.app.state.schedules
    return schedules


async def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_catalog(request: Request) -> list[ReportInfo]:
    catalog: list[ReportInfo] = request.app.state.catalog
    return catalog


StoreDep = Annotated[TaskStore, Depends(get_store)]
ScheduleStoreDep = Annotated[ScheduleStore, Depends(get_schedule_store)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
CatalogDep = Annotated[list[ReportInfo], Depends(get_catalog)]


# ---- who is calling (docs/security.md) ---------------------------------------------------------

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="chave",
    description="Chave de API: `Authorization: Bearer <chave>` (relatorios chaves criar NOME)",
)
UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}


async def get_key(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> ApiKey:
    """The caller's API key, or 401. Also charges the key's requests per minute (429 when
    spent: one key's flood never takes another key's turn).

    The store and the settings come from `app.state` directly, not as sub-dependencies: FastAPI
    walks every sub-dependency of every request's tree (cache keys, scopes), and this one is in
    every route's tree (docs/profiling.md)."""
    store, settings = await get_store(request), await get_app_settings(request)
    if credentials is None:
        raise HTTPException(
            401,
            detail="chave de API ausente: envie o cabeçalho Authorization: Bearer <chave>",
            headers=UNAUTHORIZED,
        )
    key, wait_ms = await store.api_key(credentials.credentials, settings.quota_rate)
    if key is None:
        raise HTTPException(401, detail="chave de API inválida ou revogada", headers=UNAUTHORIZED)
    if wait_ms > 0:
        raise HTTPException(
            429,
            detail="limite de requisições por minuto desta chave atingido; tente novamente "
            "em instantes",
            headers={"Retry-After": str(max(1, math.ceil(wait_ms / 1000)))},
        )
    return key


async def get_admin(key: Annotated[ApiKey, Depends(get_key)]) -> ApiKey:
    if not key.admin:
        raise HTTPException(403, detail="esta operação exige uma chave de administrador")
    return key


KeyDep = Annotated[ApiKey, Depends(get_key)]
AdminDep = Annotated[ApiKey, Depends(get_admin)]


async def get_optional_key(
    request: Request, store: StoreDep, settings: SettingsDep
) -> ApiKey | None:
    """The caller's key when it sent a valid one, else None (public endpoints: /health). The
    header is read by hand: the schema must not say that a public endpoint needs a key."""
    scheme, _, secret = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return None
    try:
        key, _wait = await store.api_key(secret.strip(), settings.quota_rate)
    except QueueUnavailable:
        return None  # Redis is down: no key can be checked, the public answer says enough
    return key


OptionalKeyDep = Annotated[ApiKey | None, Depends(get_optional_key)]
