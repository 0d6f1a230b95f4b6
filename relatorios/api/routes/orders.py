"""`POST /gerar-relatorio`: validate a report request and enqueue it; 202 with the task."""

# No `from __future__ import annotations` here: the route's body annotation names a variable of
# router(), which FastAPI could not resolve from a string.
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Request, Response

from relatorios.api.deps import KeyDep, get_app_settings, get_store
from relatorios.api.errors import checked_url
from relatorios.api.requests import EXAMPLES
from relatorios.api.responses import UNAVAILABLE, Accepted, Problem
from relatorios.api.routes.tasks import task_urls
from relatorios.apikeys import ApiKey
from relatorios.protocol import K
from relatorios.settings import Settings
from relatorios.tasks import Limits, TaskStore

log = logging.getLogger("relatorios.api")
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="repetir o pedido com a mesma chave devolve a mesma tarefa",
    ),
]


def router(body_type: Any) -> APIRouter:
    """The order route, for a request body of type `body_type`.

    The body is the union of one request model per report type (requests.request_union), a type
    that exists only once create_app() has read the catalog. A module-level route cannot name it,
    so this one route is declared here, with that type in its signature; it only hands the
    validated request to the module-level `order` below.
    """
    orders = APIRouter()

    @orders.post(
        "/gerar-relatorio",
        status_code=202,
        response_model=Accepted,
        responses={
            409: {"model": Problem, "description": "Idempotency-Key usada com outro pedido"},
            **UNAVAILABLE,
        },
        summary="Pede um relatório (assíncrono)",
    )
    async def gerar_relatorio(
        request: Request,
        response: Response,
        key: KeyDep,
        pedido: Annotated[body_type, Body(examples=EXAMPLES)],
        idempotency_key: IdempotencyKey = None,
    ) -> Accepted:
        # The store and the settings from app.state, not StoreDep/SettingsDep: two fewer
        # dependencies for FastAPI to walk on the hottest route (docs/profiling.md).
        store, settings = await get_store(request), await get_app_settings(request)
        return await order(request, response, store, settings, key, pedido, idempotency_key)

    return orders


async def order(
    request: Request,
    response: Response,
    store: TaskStore,
    settings: Settings,
    key: ApiKey,
    pedido: Any,
    idempotency_key: str | None,
) -> Accepted:
    """Enqueue a validated request (a model of requests.request_union) as `key`'s task."""
    report_type: str = pedido.tipo_relatorio
    params = pedido.parametros.model_dump(mode="json")
    notify_url: str | None = pedido.notificar_url
    if notify_url:
        await checked_url(request, notify_url)
    limits = Limits(
        owner=key.name,
        max_queue=settings.max_queue,
        max_active=key.quota(K.ACTIVE, settings.quota_active),
        max_bytes_day=key.quota(K.BYTES_DAY, settings.quota_bytes_day),
    )
    output = (pedido.formato, pedido.compressao)
    task, new = await store.enqueue(
        report_type, params, limits, idempotency_key, output, notify_url=notify_url
    )
    what = "Tarefa enfileirada" if new else "Tarefa repetida (Idempotency-Key)"
    log.info(
        "%s (task_id=%s, tipo=%s, chave=%s)",
        what,
        task.task_id,
        report_type,
        key.name,
        extra={"task_id": task.task_id},
    )
    status_url, download_url = task_urls(request, task.task_id)
    response.headers["Location"] = status_url
    # The task's own fields (Accepted picks those of TASK_FIELDS it declares), then its URLs.
    return Accepted(**task.as_dict(), status_url=status_url, download_url=download_url)
