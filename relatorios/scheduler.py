"""The scheduler (`python -m relatorios.scheduler`): queues the tasks of due schedule occurrences.

Any number of scheduler processes may run, on any hosts (docs/protocol.md, "Schedules"):

- One of them holds the lease `<queue>:agendador` (SET NX PX, renewed every tick, lasting
  AGENDADOR_LEASE_S); only the holder looks for due occurrences. A holder that dies loses it when
  it expires, and another process takes over and catches up on the occurrences it left (within
  AGENDADOR_TOLERANCIA_S; older ones follow the schedule's `perdidas` policy).
- Exactly once per occurrence does not rest on the lease: each occurrence is queued in one
  transaction with its key `<queue>:disparo:<schedule>:<epoch>` (WATCHed, then SET NX), so two
  processes that both believe they hold the lease, or a process restarted with an old view,
  still queue an occurrence at most once; and the schedule's `ultima_ocorrencia` moves in the
  same transaction, so an occurrence is never lost between the two either.

Tasks are queued by TaskStore.enqueue, the API's own code path, after the parameters (relative
dates resolved for the occurrence's day) pass the API's own request models.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import socket
import time
import uuid

import redis.asyncio as aioredis
from croniter import croniter
from pydantic import ValidationError
from redis.asyncio.lock import Lock
from redis.exceptions import LockError, RedisError

from relatorios.api.errors import translate
from relatorios.api.requests import departments_of
from relatorios.catalog import for_source, load_catalog
from relatorios.logs import setup_logging
from relatorios.protocol import Keys
from relatorios.schedules import OrderCheck, Schedule, ScheduleStore, due
from relatorios.service import service_redis
from relatorios.settings import Settings, get_settings
from relatorios.tasks import (
    AlreadyFired,
    Limits,
    Occurrence,
    QueueFull,
    QueueUnavailable,
    QuotaExceeded,
    TaskStore,
)

log = logging.getLogger("relatorios.scheduler")
# The catalog and the department list (what parameters may be) are read again this often.
CHECK_REFRESH_S = 60.0


class Clock:
    """Now, in UTC. AGENDADOR_RELOGIO_TESTE (tests only) makes it run faster from a given time."""

    def __init__(self, spec: str = "") -> None:
        self._spec: tuple[float, float, float] | None = None
        if spec:
            start, real, factor = (float(part) for part in spec.split(","))
            self._spec = (start, real, factor)

    def now(self) -> dt.datetime:
        if self._spec is None:
            return dt.datetime.now(dt.UTC)
        start, real, factor = self._spec
        return dt.datetime.fromtimestamp(start + (time.time() - real) * factor, dt.UTC)


class Scheduler:
    def __init__(
        self, client: aioredis.Redis, settings: Settings, check: OrderCheck, clock: Clock
    ) -> None:
        keys = Keys(settings.queue_name)
        self.settings = settings
        self.schedules = ScheduleStore(client, keys)
        self.tasks = TaskStore(client, keys, int(settings.retention_days * 86_400))
        self.check = check
        self.clock = clock
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        # schedule id -> ((cron, zone, last occurrence), the next occurrence after it)
        self._next: dict[str, tuple[tuple[str, str, str], dt.datetime]] = {}
        self.lease = Lock(
            client, keys.scheduler_lease, timeout=settings.scheduler_lease_s, blocking=False
        )

    async def hold_lease(self) -> bool:
        """Take or renew the lease; True while this process holds it."""
        try:
            if await self.lease.owned():
                await self.lease.reacquire()
                return True
            return bool(await self.lease.acquire(token=self.id))
        except LockError:
            return False

    async def run(self, stop: asyncio.Event) -> None:
        held = False
        checked_at = time.monotonic()
        while not stop.is_set():
            if time.monotonic() - checked_at > CHECK_REFRESH_S:
                self.check = await asyncio.to_thread(order_check, self.settings)
                checked_at = time.monotonic()
            try:
                now_held = await self.hold_lease()
                if now_held != held:
                    log.info("Agendador %s: %s", self.id, "ativo" if now_held else "em espera")
                held = now_held
                if held:
                    await self.run_once(self.clock.now())
            except (RedisError, QueueUnavailable) as exc:
                log.warning("Agendador: Redis indisponível (%s)", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.scheduler_tick_s)
        with contextlib.suppress(LockError, RedisError):
            await self.lease.release()

    async def run_once(self, now: dt.datetime) -> int:
        """Queue the occurrences due at `now` of every active schedule; returns how many."""
        fired = 0
        schedules = await self.schedules.all()
        for gone in self._next.keys() - {s.id for s in schedules}:
            del self._next[gone]
        for schedule in schedules:
            if not schedule.active:
                continue
            try:
                fired += await self.fire_due(schedule, now)
            except (ValueError, KeyError):  # a hand-edited hash: the others still fire
                log.exception("Agendamento %s ilegível; ignorado", schedule.id)
        return fired

    def _nothing_due(self, schedule: Schedule, now: dt.datetime) -> bool:
        """True when the schedule's next occurrence, as last computed for the same cron, zone
        and last occurrence, is still ahead: most passes then never run croniter."""
        key = (schedule.cron, schedule.time_zone, schedule.last)
        cached = self._next.get(schedule.id)
        if cached is None or cached[0] != key:
            after = croniter(schedule.cron, schedule.last_time().astimezone(schedule.zone))
            cached = (key, after.get_next(dt.datetime))
            self._next[schedule.id] = cached
        return cached[1] > now

    async def fire_due(self, schedule: Schedule, now: dt.datetime) -> int:
        if self._nothing_due(schedule, now):
            return 0
        occurrences, newest = due(
            schedule.cron,
            schedule.zone,
            schedule.last_time(),
            now,
            self.settings.schedule_grace_s,
            schedule.missed,
        )
        if newest is None:
            return 0
        if not occurrences:  # missed ones, ignored by the schedule's policy
            log.info("Agendamento %s: ocorrências perdidas ignoradas", schedule.id)
            await self.schedules.mark(schedule.id, newest, None)
            return 0
        fired = 0
        for occurrence in occurrences:
            try:
                fired += await self.fire(schedule, occurrence)
            except (QueueFull, QuotaExceeded, QueueUnavailable) as exc:
                log.warning("Agendamento %s: não enfileirado agora (%s)", schedule.id, exc)
                break  # the next tick tries again
            except AlreadyFired:
                break  # another process did it, or the schedule changed: the next tick sees
        return fired

    async def fire(self, schedule: Schedule, occurrence: dt.datetime) -> int:
        today = occurrence.astimezone(schedule.zone).date()
        try:
            params = self.check.params_for(schedule.report_type, schedule.params, today)
        except ValidationError as exc:
            problem = "; ".join(translate(dict(e))["msg"] for e in exc.errors())
            log.error("Agendamento %s: parâmetros inválidos (%s)", schedule.id, problem)
            await self.schedules.mark(schedule.id, occurrence, f"parâmetros inválidos: {problem}")
            return 0
        limits = Limits(
            owner=schedule.owner,
            max_queue=self.settings.max_queue,
            max_active=self.settings.quota_active,
            max_bytes_day=self.settings.quota_bytes_day,
        )
        task, _ = await self.tasks.enqueue(
            schedule.report_type,
            params,
            limits,
            notify_url=schedule.notify_url,
            occurrence=Occurrence(schedule.id, occurrence),
        )
        log.info(
            "Agendamento %s: tarefa %s enfileirada (ocorrência %s)",
            schedule.id,
            task.task_id,
            occurrence.isoformat(),
            extra={"task_id": task.task_id},
        )
        return 1


def order_check(settings: Settings) -> OrderCheck:
    reports = for_source(load_catalog(settings.catalog_dir), settings.source)
    return OrderCheck(reports, departments_of(settings))


async def serve(settings: Settings) -> None:
    async with service_redis(settings) as (client, stop):
        scheduler = Scheduler(
            client, settings, order_check(settings), Clock(settings.scheduler_test_clock)
        )
        log.info("Agendador %s iniciado (fila %s)", scheduler.id, settings.queue_name)
        await scheduler.run(stop)
    log.info("Agendador %s parado", scheduler.id)


def main() -> int:
    settings = get_settings()
    setup_logging(settings.log_format, prefix="Agendador: ")
    asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
