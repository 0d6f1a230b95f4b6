"""`GET /metrics`: Prometheus metrics, computed from Redis at scrape time.

The workers (C and Python) record everything in Redis (task hashes, counters, heartbeats), so the
API can expose both workers' results without the workers serving HTTP. Task counts and
histograms cover the newest RECENT_TASKS tasks, to keep a scrape bounded; the `_total` counters
come from the workers' statistics hash and cover all time.
"""

from __future__ import annotations

import hmac
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from relatorios.api.deps import SettingsDep, StoreDep, bearer, get_admin, get_key
from relatorios.monitoring import TaskSample, WorkerBeat
from relatorios.protocol import Stat, Status
from relatorios.tasks import QueueUnavailable, TaskStore

router = APIRouter()

# A scrape reads at most this many of the newest task hashes, so its cost does not grow forever.
RECENT_TASKS = 10_000
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
ROW_BUCKETS = (10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000)
WORKER_KINDS = ("c", "python")
TASK_LABELS = ["status", "tipo", "trabalhador"]


@dataclass
class Snapshot:
    """Everything one scrape reads from Redis."""

    redis_up: bool = True
    queue_depth: int = 0
    retries_waiting: int = 0
    registered: int = 0
    workers: list[WorkerBeat] = field(default_factory=list)
    tasks: list[TaskSample] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)
    scheduling: dict[str, int] = field(default_factory=dict)


async def take_snapshot(store: TaskStore) -> Snapshot:
    try:
        return Snapshot(
            queue_depth=await store.queue_depth(),
            retries_waiting=await store.retries_waiting(),
            registered=await store.task_count(),
            workers=await store.live_workers(),
            tasks=await store.recent_tasks(RECENT_TASKS),
            counters=await store.counters(),
            scheduling=await store.schedule_and_notice_counts(),
        )
    except (QueueUnavailable, OSError):
        return Snapshot(redis_up=False)


class SnapshotCollector(Collector):
    def __init__(self, snapshot: Snapshot) -> None:
        self.snap = snapshot

    def collect(self) -> Iterator[Metric]:
        snap = self.snap
        # The scrape succeeds even when Redis is down; dashboards alert on this gauge.
        yield _gauge(
            "relatorios_redis_disponivel", "1 se o Redis respondeu a este scrape", snap.redis_up
        )
        if not snap.redis_up:
            return
        yield _gauge("relatorios_fila_tamanho", "Mensagens esperando na fila", snap.queue_depth)
        yield _gauge(
            "relatorios_tentativas_adiadas",
            "Tarefas esperando a próxima tentativa (Q:adiadas)",
            snap.retries_waiting,
        )
        yield _gauge(
            "relatorios_tarefas_registradas", "Tarefas no índice Q:tarefas", snap.registered
        )
        yield self._workers("relatorios_trabalhadores", "Workers com heartbeat vivo", False)
        yield self._workers(
            "relatorios_trabalhadores_ocupados", "Workers processando uma tarefa agora", True
        )
        yield self._tasks_by_status()
        done = [t for t in snap.tasks if t.status == Status.DONE]
        yield _histogram(
            "relatorios_tarefa_duracao_segundos",
            f"Duração das tarefas concluídas (últimas {RECENT_TASKS})",
            [(t, t.duration_s) for t in done if t.duration_s is not None],
            DURATION_BUCKETS,
        )
        yield _histogram(
            "relatorios_tarefa_linhas",
            f"Linhas de dados por tarefa concluída (últimas {RECENT_TASKS})",
            [(t, float(t.rows)) for t in done],
            ROW_BUCKETS,
        )
        yield from self._counters()
        yield from self._scheduling()

    def _scheduling(self) -> Iterator[Metric]:
        values = self.snap.scheduling
        for key, doc in (
            ("agendamentos", "Agendamentos salvos"),
            ("agendador_ativo", "1 se algum agendador detém o lease (dispara agendamentos)"),
            ("notificacoes_pendentes", "Tarefas com aviso (webhook) ainda não entregue"),
            ("notificacoes_mortas", "Avisos (webhooks) abandonados após as tentativas"),
        ):
            yield _gauge(f"relatorios_{key}", doc, values.get(key, 0))

    def _workers(self, name: str, doc: str, busy_only: bool) -> Metric:
        family = GaugeMetricFamily(name, doc, labels=["tipo"])
        by_kind = Counter(w.kind for w in self.snap.workers if w.task or not busy_only)
        # Both kinds always appear (0 when none runs), so dashboards have a series to plot.
        for kind in sorted(set(WORKER_KINDS) | {w.kind for w in self.snap.workers}):
            family.add_metric([kind], by_kind[kind])
        return family

    def _tasks_by_status(self) -> Metric:
        family = GaugeMetricFamily(
            "relatorios_tarefas",
            f"Tarefas por status, tipo e tipo de worker (últimas {RECENT_TASKS})",
            labels=TASK_LABELS,
        )
        counts = Counter((t.status, t.type, t.worker_kind) for t in self.snap.tasks)
        for labels, count in sorted(counts.items()):
            family.add_metric(list(labels), count)
        return family

    def _counters(self) -> Iterator[Metric]:
        values = self.snap.counters
        for name, key, doc in (
            ("relatorios_tarefas_concluidas", Stat.DONE, "Tarefas concluídas (desde sempre)"),
            ("relatorios_tarefas_falhas", Stat.FAILED, "Tarefas que falharam (desde sempre)"),
            ("relatorios_tarefas_canceladas", Stat.CANCELLED, "Tarefas canceladas (desde sempre)"),
            ("relatorios_mensagens_invalidas", Stat.INVALID, "Mensagens inválidas descartadas"),
            ("relatorios_linhas_exportadas", Stat.ROWS, "Linhas de dados escritas em CSV"),
            ("relatorios_bytes_exportados", Stat.BYTES, "Bytes de CSV escritos"),
        ):
            yield CounterMetricFamily(name, doc, value=values.get(key, 0))


def _gauge(name: str, doc: str, value: float) -> Metric:
    return GaugeMetricFamily(name, doc, value=float(value))


def _histogram(
    name: str,
    doc: str,
    observations: Iterable[tuple[TaskSample, float]],
    buckets: tuple[float, ...],
) -> Metric:
    """One histogram series per (report type, worker kind), cumulative as Prometheus wants."""
    groups: dict[tuple[str, str], list[float]] = {}
    for task, value in observations:
        groups.setdefault((task.type, task.worker_kind), []).append(value)
    family = HistogramMetricFamily(name, doc, labels=["tipo", "trabalhador"])
    for labels, values in sorted(groups.items()):
        cumulative = [(_le(b), float(sum(v <= b for v in values))) for b in buckets]
        cumulative.append(("+Inf", float(len(values))))
        family.add_metric(list(labels), cumulative, sum_value=sum(values))
    return family


def _le(bound: float) -> str:
    return str(float(bound))


@router.get(
    "/metrics",
    summary="Métricas (Prometheus)",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "formato texto"}},
)
async def metrics(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Response:
    """An admin key, or METRICS_TOKEN (for Prometheus: `authorization: credentials: …`)."""
    token = credentials.credentials if credentials else ""
    if not (settings.metrics_token and hmac.compare_digest(token, settings.metrics_token)):
        await get_admin(await get_key(request, credentials))
    snapshot = await take_snapshot(store)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(snapshot))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
