"""Schedules (`/agendamentos`): reports queued by themselves at the times of a cron expression.

The scheduler process fires them (relatorios/scheduler.py); these routes save, list, change and
delete them. A schedule is validated as a report order is (the same request models), after its
relative dates are resolved for today, plus its cron expression and time zone.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from relatorios.api.deps import KeyDep, ScheduleStoreDep
from relatorios.api.errors import checked_url
from relatorios.api.responses import UNAVAILABLE, Problem
from relatorios.api.routes.tasks import owner_filter
from relatorios.apikeys import ApiKey
from relatorios.protocol import (
    DEFAULT_TIME_ZONE,
    MAX_URL,
    NEXT_RUNS_SHOWN,
    SCHEDULES_MAX,
    MissedPolicy,
    Sched,
)
from relatorios.schedules import (
    InvalidSchedule,
    OrderCheck,
    Schedule,
    ScheduleStore,
    check_cron,
    check_time_zone,
)
from relatorios.webhooks import URL_PATTERN, UnsafeUrl, check_url_syntax

router = APIRouter()
CRON_PATTERN = r"^\s*\S+(\s+\S+){4}\s*$"


def _cron(expression: str) -> str:
    try:
        return check_cron(expression)
    except InvalidSchedule as exc:
        raise ValueError(str(exc)) from None


def _time_zone(name: str) -> str:
    try:
        check_time_zone(name)
    except InvalidSchedule as exc:
        raise ValueError(str(exc)) from None
    return name


Cron = Annotated[
    str,
    Field(
        max_length=200,
        json_schema_extra={"pattern": CRON_PATTERN},  # the validator says what is wrong
        description="cinco campos: minuto hora dia-do-mês mês dia-da-semana",
    ),
    AfterValidator(_cron),
]
TimeZone = Annotated[
    str,
    Field(max_length=64, description="fuso IANA, ex.: America/Sao_Paulo"),
    AfterValidator(_time_zone),
]
PARAMS_DOC = (
    "como em POST /gerar-relatorio; datas podem ser relativas (hoje, ontem, "
    "inicio_do_mes, fim_do_mes_passado, hoje-7d…), resolvidas quando a tarefa é criada"
)


def _url(url: str) -> str:
    try:
        return check_url_syntax(url)
    except UnsafeUrl as exc:
        raise ValueError(str(exc)) from None


# The pattern is for the schema; the validator says what is wrong (the route then checks the
# addresses, with DNS, off the event loop).
Url = Annotated[
    str,
    Field(max_length=MAX_URL, json_schema_extra={"pattern": URL_PATTERN}),
    AfterValidator(_url),
]


class NewSchedule(BaseModel):
    """Um agendamento: o pedido de relatório e quando repeti-lo."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    Sched.TYPE: "TRANSACOES_POR_PERIODO",
                    Sched.PARAMS: {
                        "data_inicio": "inicio_do_mes_passado",
                        "data_fim": "fim_do_mes_passado",
                    },
                    Sched.CRON: "30 6 1 * *",
                    Sched.TIME_ZONE: DEFAULT_TIME_ZONE,
                }
            ]
        },
    )

    tipo_relatorio: str = Field(min_length=1, max_length=64)
    parametros: dict[str, Any] = Field(default_factory=dict, description=PARAMS_DOC)
    cron: Cron
    fuso_horario: TimeZone = DEFAULT_TIME_ZONE
    ativo: bool = True
    perdidas: MissedPolicy = Field(
        MissedPolicy.RUN_ONE,
        description="ocorrências perdidas enquanto nenhum agendador rodava: executar_uma "
        "(a mais recente) ou ignorar",
    )
    notificar_url: Url | None = Field(None, description="avisado quando cada tarefa terminar")


class ScheduleChange(BaseModel):
    """Os campos a mudar; os ausentes ficam como estão."""

    model_config = ConfigDict(extra="forbid")

    tipo_relatorio: str | None = Field(None, min_length=1, max_length=64)
    parametros: dict[str, Any] | None = None
    cron: Cron | None = None
    fuso_horario: TimeZone | None = None
    ativo: bool | None = None
    perdidas: MissedPolicy | None = None
    notificar_url: Url | None = None


class ScheduleView(BaseModel):
    id: str
    tipo_relatorio: str
    parametros: dict[str, Any]
    cron: str
    fuso_horario: str
    ativo: bool
    perdidas: MissedPolicy
    notificar_url: str | None
    criado_em: str
    ultima_ocorrencia: str = Field(description="a ocorrência mais recente já tratada (UTC)")
    ultima_tarefa: str | None = Field(description="a tarefa da última ocorrência disparada")
    ultimo_erro: str | None = Field(description="por que a última ocorrência não virou tarefa")
    dono: str = Field(description="a chave de API dona do agendamento (e de suas tarefas)")
    proximas_execucoes: list[str] = Field(
        description=f"as próximas {NEXT_RUNS_SHOWN} execuções, no fuso do agendamento"
    )


class SchedulePage(BaseModel):
    total: int
    agendamentos: list[ScheduleView]


NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem}}


async def checked(request: Request, schedule: Schedule) -> Schedule:
    """`schedule` if it would queue valid orders today and its URL may be called; else 422."""
    check: OrderCheck = request.app.state.order_check
    today = dt.datetime.now(schedule.zone).date()
    try:
        check.params_for(schedule.report_type, schedule.params, today)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
        raise RequestValidationError(errors) from None
    if schedule.notify_url:
        await checked_url(request, schedule.notify_url)
    return schedule


def view(schedule: Schedule) -> ScheduleView:
    return ScheduleView.model_validate(schedule.as_dict(dt.datetime.now(dt.UTC)))


async def existing(store: ScheduleStore, key: ApiKey, schedule_id: UUID) -> Schedule:
    """The schedule, if `key` may see it: another key's is as unknown as a missing one (404)."""
    schedule = await store.get(str(schedule_id))
    if schedule is None or (not key.admin and schedule.owner != key.name):
        raise HTTPException(404, detail=f"agendamento não encontrado: {schedule_id}")
    return schedule


@router.post(
    "/agendamentos",
    status_code=201,
    response_model=ScheduleView,
    responses={409: {"model": Problem, "description": "limite de agendamentos"}, **UNAVAILABLE},
    summary="Agenda um relatório (cron)",
)
async def criar(
    request: Request,
    response: Response,
    store: ScheduleStoreDep,
    key: KeyDep,
    pedido: NewSchedule,
) -> ScheduleView:
    schedule = await checked(
        request,
        Schedule(
            id="",
            report_type=pedido.tipo_relatorio,
            params=pedido.parametros,
            cron=pedido.cron,
            time_zone=pedido.fuso_horario,
            active=pedido.ativo,
            missed=pedido.perdidas,
            notify_url=pedido.notificar_url,
            owner=key.name,
        ),
    )
    if await store.count() >= SCHEDULES_MAX:
        raise HTTPException(409, detail=f"limite de {SCHEDULES_MAX} agendamentos atingido")
    saved = await store.create(schedule, dt.datetime.now(dt.UTC))
    response.headers["Location"] = f"{request.base_url}agendamentos/{saved.id}"
    return view(saved)


@router.get(
    "/agendamentos",
    response_model=SchedulePage,
    responses=UNAVAILABLE,
    summary="Lista os agendamentos, mais antigos primeiro",
)
async def listar(store: ScheduleStoreDep, key: KeyDep) -> SchedulePage:
    owner = owner_filter(key)
    schedules = [s for s in await store.all() if owner is None or s.owner == owner]
    return SchedulePage(total=len(schedules), agendamentos=[view(s) for s in schedules])


@router.get(
    "/agendamentos/{schedule_id}",
    response_model=ScheduleView,
    responses={**NOT_FOUND, **UNAVAILABLE},
    summary="Um agendamento e suas próximas execuções",
)
async def obter(store: ScheduleStoreDep, key: KeyDep, schedule_id: UUID) -> ScheduleView:
    return view(await existing(store, key, schedule_id))


@router.patch(
    "/agendamentos/{schedule_id}",
    response_model=ScheduleView,
    responses={**NOT_FOUND, **UNAVAILABLE},
    summary="Muda um agendamento (ex.: pausa com ativo=false)",
)
async def mudar(
    request: Request,
    store: ScheduleStoreDep,
    key: KeyDep,
    schedule_id: UUID,
    mudanca: ScheduleChange,
) -> ScheduleView:
    old = await existing(store, key, schedule_id)
    given = mudanca.model_fields_set
    new = Schedule(
        id=old.id,
        report_type=mudanca.tipo_relatorio or old.report_type,
        params=mudanca.parametros if mudanca.parametros is not None else old.params,
        cron=mudanca.cron or old.cron,
        time_zone=mudanca.fuso_horario or old.time_zone,
        active=old.active if mudanca.ativo is None else mudanca.ativo,
        missed=mudanca.perdidas or old.missed,
        notify_url=mudanca.notificar_url if Sched.NOTIFY_URL in given else old.notify_url,
        created=old.created,
        last=old.last,
        last_task=old.last_task,
        last_error=old.last_error,
        owner=old.owner,
    )
    new = await checked(request, new)
    return view(await store.update(old, new, dt.datetime.now(dt.UTC)))


@router.delete(
    "/agendamentos/{schedule_id}",
    status_code=204,
    responses={**NOT_FOUND, **UNAVAILABLE},
    summary="Apaga um agendamento (as tarefas já criadas ficam)",
)
async def apagar(store: ScheduleStoreDep, key: KeyDep, schedule_id: UUID) -> Response:
    await existing(store, key, schedule_id)
    if not await store.delete(str(schedule_id)):
        raise HTTPException(404, detail=f"agendamento não encontrado: {schedule_id}")
    return Response(status_code=204)
