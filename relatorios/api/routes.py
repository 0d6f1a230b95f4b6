"""The API's routes. Request bodies are validated by the models of requests.py."""

import logging
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Body, Header, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse

from relatorios.api.requests import EXAMPLES
from relatorios.api.responses import (
    Accepted,
    DeadLetterPage,
    ParamInfo,
    Problem,
    ReportInfo,
    TaskPage,
    TaskStatus,
)
from relatorios.catalog import Report
from relatorios.protocol import Status
from relatorios.settings import Settings
from relatorios.tasks import NotCancellable, Task, TaskStore

log = logging.getLogger("relatorios.api")
UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": Problem, "description": "Redis inacessível ou fila cheia: nada foi enfileirado"}
}
StatusName = Literal["na_fila", "processando", "concluido", "falhou", "cancelado", "expirado"]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="repetir o pedido com a mesma chave devolve a mesma tarefa",
    ),
]


def task_urls(request: Request, task_id: str) -> tuple[str, str]:
    """Status and download URLs (built by hand: url_for's route search is the hot path's cost)."""
    status_url = f"{request.base_url}relatorios/{task_id}"
    return status_url, f"{status_url}/download"


def status_view(request: Request, task: Task) -> TaskStatus:
    status_url, download_url = task_urls(request, task.task_id)
    done = task.status == Status.DONE
    return TaskStatus(
        **task.as_dict(),
        status_url=status_url,
        download_url=download_url if done else None,
    )


def build_router(
    catalog: dict[str, Report], departments: list[str], body_type: Any, settings: Settings
) -> APIRouter:
    router = APIRouter()
    infos = [report_info(r, departments) for r in catalog.values()]

    def store(request: Request) -> TaskStore:
        return request.app.state.store  # type: ignore[no-any-return]

    @router.post(
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
        pedido: Annotated[body_type, Body(examples=EXAMPLES)],
        idempotency_key: IdempotencyKey = None,
    ) -> Accepted:
        params = pedido.parametros.model_dump(mode="json")
        task, new = await store(request).enqueue(
            pedido.tipo_relatorio, params, settings.max_queue, idempotency_key
        )
        what = "Tarefa enfileirada" if new else "Tarefa repetida (Idempotency-Key)"
        log.info(
            "%s (task_id=%s, tipo=%s)",
            what,
            task.task_id,
            pedido.tipo_relatorio,
            extra={"task_id": task.task_id},
        )
        status_url, download_url = task_urls(request, task.task_id)
        response.headers["Location"] = status_url
        return Accepted(
            task_id=task.task_id,
            status=task.status,
            tipo_relatorio=pedido.tipo_relatorio,
            parametros=params,
            arquivo=task.fields.get("arquivo", ""),
            criado_em=task.fields.get("criado_em", ""),
            status_url=status_url,
            download_url=download_url,
        )

    @router.get("/tipos-relatorio", response_model=list[ReportInfo], summary="Catálogo")
    async def tipos_relatorio() -> list[ReportInfo]:
        return infos

    @router.get(
        "/relatorios",
        response_model=TaskPage,
        responses=UNAVAILABLE,
        summary="Lista tarefas, mais novas primeiro",
    )
    async def listar(
        request: Request,
        status: StatusName | None = None,
        tipo: Annotated[str | None, Query(max_length=64)] = None,
        limite: Annotated[int, Query(ge=1, le=100)] = 20,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ) -> TaskPage:
        tasks, total = await store(request).find(status, tipo, limite, offset)
        views = [status_view(request, t) for t in tasks]
        return TaskPage(total=total, limite=limite, offset=offset, tarefas=views)

    @router.get(
        "/relatorios/{task_id}",
        name="task_status",
        response_model=TaskStatus,
        responses={404: {"model": Problem}, **UNAVAILABLE},
        summary="Status de uma tarefa",
    )
    async def status(request: Request, task_id: UUID) -> TaskStatus:
        return status_view(request, await _existing(store(request), task_id))

    @router.delete(
        "/relatorios/{task_id}",
        response_model=TaskStatus,
        responses={
            404: {"model": Problem},
            409: {"model": Problem, "description": "já finalizada"},
            **UNAVAILABLE,
        },
        summary="Cancela uma tarefa na fila ou em andamento",
    )
    async def cancelar(request: Request, task_id: UUID) -> TaskStatus:
        try:
            task = await store(request).cancel(str(task_id))
        except NotCancellable as exc:
            raise HTTPException(409, detail=str(exc), headers={"X-Status": exc.status}) from None
        if task is None:
            raise HTTPException(404, detail=f"tarefa não encontrada: {task_id}")
        log.info("Tarefa cancelada (task_id=%s)", task_id, extra={"task_id": str(task_id)})
        return status_view(request, task)

    @router.get(
        "/fila/mortas",
        response_model=DeadLetterPage,
        responses=UNAVAILABLE,
        summary="Mensagens mortas (que nunca terão sucesso), mais novas primeiro",
    )
    async def mortas(
        request: Request,
        limite: Annotated[int, Query(ge=1, le=100)] = 20,
        offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
    ) -> DeadLetterPage:
        entries, total = await store(request).dead_letters(limite, offset)
        return DeadLetterPage.model_validate(
            {"total": total, "limite": limite, "offset": offset, "mortas": entries}
        )

    @router.get(
        "/relatorios/{task_id}/download",
        name="download",
        response_class=FileResponse,
        responses={
            200: {"content": {"text/csv": {}}, "description": "o CSV"},
            404: {"model": Problem},
            409: {"model": Problem, "description": "ainda não concluído"},
            410: {"model": Problem, "description": "expirado (retenção)"},
            **UNAVAILABLE,
        },
        summary="Baixa o CSV de uma tarefa concluída",
    )
    async def download(request: Request, task_id: UUID) -> FileResponse:
        task = await _existing(store(request), task_id)
        if task.status == Status.EXPIRED:
            raise HTTPException(410, detail="relatório expirado: o arquivo foi apagado (retenção)")
        if task.status != Status.DONE:
            raise HTTPException(
                409,
                detail=f"relatório ainda não concluído (status: {task.status})",
                headers={"X-Status": task.status},
            )
        name = task.fields.get("arquivo", "")
        path = settings.export_dir / name
        if not name or not path.is_file():
            raise HTTPException(404, detail=f"arquivo não encontrado em export/: {name}")
        return FileResponse(path, media_type="text/csv; charset=utf-8", filename=name)

    return router


async def _existing(store: TaskStore, task_id: UUID) -> Task:
    task = await store.get(str(task_id))
    if task is None:
        raise HTTPException(404, detail=f"tarefa não encontrada: {task_id}")
    return task


def report_info(report: Report, departments: list[str]) -> ReportInfo:
    params = [
        ParamInfo(
            nome=p.name,
            tipo=p.kind,
            obrigatorio=p.required,
            rotulo=p.label,
            padrao=p.default,
            minimo=p.minimum,
            maximo=p.maximum,
            opcoes=departments if p.kind == "department" and departments else None,
        )
        for p in report.params
    ]
    return ReportInfo(
        tipo=report.type, titulo=report.title, descricao=report.description, parametros=params
    )
