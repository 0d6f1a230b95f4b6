"""Schedules: reports queued by themselves at the occurrences of a cron expression.

A schedule is the hash `<queue>:agendamento:<id>` (fields `Sched`, docs/protocol.md
"Schedules"), listed in `<queue>:agendamentos`. Cron expressions are parsed by croniter, in the
schedule's time zone (zoneinfo); parameters may be relative dates (relative_dates.py), checked by
the same request models as `POST /gerar-relatorio` when the schedule is saved and again when an
occurrence fires. The scheduler process (scheduler.py) fires them; this module is what the API,
the CLI and the scheduler share.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import time
import uuid
from dataclasses import dataclass, replace
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import redis.asyncio as aioredis
from croniter import CroniterError, croniter
from pydantic import TypeAdapter
from redis.exceptions import WatchError

from relatorios.catalog import Report
from relatorios.protocol import (
    DEFAULT_TIME_ZONE,
    NEXT_RUNS_SHOWN,
    Keys,
    MissedPolicy,
    Sched,
    iso,
)
from relatorios.relative_dates import resolve_all
from relatorios.tasks import redis_errors

CRON_FIELDS = ("minuto", "hora", "dia do mês", "mês", "dia da semana")


class InvalidSchedule(ValueError):
    """A schedule that cannot be saved; the message (Portuguese) names the problem."""


class ScheduleNotFound(KeyError):
    pass


def check_cron(expression: str) -> str:
    """A five-field cron expression, normalised; InvalidSchedule naming the bad field."""
    fields = expression.split()
    if len(fields) != len(CRON_FIELDS):
        raise InvalidSchedule(
            f"expressão cron deve ter {len(CRON_FIELDS)} campos ({', '.join(CRON_FIELDS)}); "
            f"tem {len(fields)}"
        )
    for index, name in enumerate(CRON_FIELDS):
        alone = ["*"] * len(CRON_FIELDS)
        alone[index] = fields[index]
        if not croniter.is_valid(" ".join(alone)):
            raise InvalidSchedule(f"expressão cron: campo {name} inválido ({fields[index]!r})")
    normal = " ".join(fields)
    try:
        croniter(normal, dt.datetime.now(dt.UTC)).get_next(dt.datetime)
    except (CroniterError, ValueError) as exc:  # e.g. 30 February: no date ever matches
        raise InvalidSchedule(f"expressão cron sem nenhuma data possível ({normal})") from exc
    return normal


def check_time_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidSchedule(
            f"fuso horário desconhecido: {name!r} (ex.: America/Sao_Paulo, UTC)"
        ) from None


def next_runs(
    cron: str, zone: ZoneInfo, after: dt.datetime, count: int = NEXT_RUNS_SHOWN
) -> list[dt.datetime]:
    iterator = croniter(cron, after.astimezone(zone))
    return [iterator.get_next(dt.datetime) for _ in range(count)]


def due(
    cron: str,
    zone: ZoneInfo,
    last: dt.datetime,
    now: dt.datetime,
    grace_s: float,
    policy: MissedPolicy,
) -> tuple[list[dt.datetime], dt.datetime | None]:
    """The occurrences after `last` to fire at `now`, and the newest one due (None: none).

    Occurrences within `grace_s` of now are all fired (a scheduler that took over a lease
    catches up); older ones were missed while no scheduler ran: with `executar_uma` the newest
    of them is fired, with `ignorar` none.
    """
    first = croniter(cron, last.astimezone(zone)).get_next(dt.datetime)
    if first > now:
        return [], None
    fire: list[dt.datetime] = []
    start = last
    cutoff = now - dt.timedelta(seconds=grace_s)
    if first <= cutoff:
        newest_missed = croniter(cron, cutoff.astimezone(zone)).get_prev(dt.datetime)
        if policy == MissedPolicy.RUN_ONE:
            fire.append(newest_missed)
        start = newest_missed
    iterator = croniter(cron, start.astimezone(zone))
    while (occurrence := iterator.get_next(dt.datetime)) <= now:
        fire.append(occurrence)
    return fire, (fire[-1] if fire else start)


@dataclass(frozen=True)
class Schedule:
    id: str
    report_type: str
    params: dict[str, Any]
    cron: str
    time_zone: str = DEFAULT_TIME_ZONE
    active: bool = True
    missed: MissedPolicy = MissedPolicy.RUN_ONE
    notify_url: str | None = None
    created: str = ""
    last: str = ""  # the newest occurrence dealt with (UTC ISO)
    last_task: str | None = None
    last_error: str | None = None
    owner: str = ""  # the name of the API key that made it

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def last_time(self) -> dt.datetime:
        return parse_iso(self.last)

    def to_fields(self) -> dict[str, str]:
        fields = {
            Sched.TYPE: self.report_type,
            Sched.PARAMS: json.dumps(self.params, ensure_ascii=False),
            Sched.CRON: self.cron,
            Sched.TIME_ZONE: self.time_zone,
            Sched.ACTIVE: "1" if self.active else "0",
            Sched.MISSED: self.missed.value,
            Sched.CREATED: self.created,
            Sched.LAST: self.last,
            Sched.OWNER: self.owner,
        }
        if self.notify_url:
            fields[Sched.NOTIFY_URL] = self.notify_url
        return fields

    @classmethod
    def from_fields(cls, schedule_id: str, fields: dict[str, str]) -> Schedule:
        try:
            params = json.loads(fields.get(Sched.PARAMS, "{}"))
        except ValueError:
            params = {}
        return cls(
            id=schedule_id,
            report_type=fields.get(Sched.TYPE, ""),
            params=params if isinstance(params, dict) else {},
            cron=fields.get(Sched.CRON, ""),
            time_zone=fields.get(Sched.TIME_ZONE, DEFAULT_TIME_ZONE),
            active=fields.get(Sched.ACTIVE) == "1",
            missed=_policy(fields.get(Sched.MISSED, "")),
            notify_url=fields.get(Sched.NOTIFY_URL) or None,
            created=fields.get(Sched.CREATED, ""),
            last=fields.get(Sched.LAST, ""),
            last_task=fields.get(Sched.LAST_TASK) or None,
            last_error=fields.get(Sched.LAST_ERROR) or None,
            owner=fields.get(Sched.OWNER, ""),
        )

    def as_dict(self, now: dt.datetime) -> dict[str, Any]:
        """The schedule as the API, the CLI and the page show it, with its next runs."""
        runs = next_runs(self.cron, self.zone, max(now, self.last_time())) if self.active else []
        return {
            "id": self.id,
            Sched.TYPE: self.report_type,
            Sched.PARAMS: self.params,
            Sched.CRON: self.cron,
            Sched.TIME_ZONE: self.time_zone,
            Sched.ACTIVE: self.active,
            Sched.MISSED: self.missed.value,
            Sched.NOTIFY_URL: self.notify_url,
            Sched.CREATED: self.created,
            Sched.LAST: self.last,
            Sched.LAST_TASK: self.last_task,
            Sched.LAST_ERROR: self.last_error,
            Sched.OWNER: self.owner,
            "proximas_execucoes": [run.isoformat() for run in runs],
        }


def _policy(text: str) -> MissedPolicy:
    try:
        return MissedPolicy(text)
    except ValueError:
        return MissedPolicy.RUN_ONE


def parse_iso(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


class OrderCheck:
    """Validates a report order exactly as `POST /gerar-relatorio` does (the same models)."""

    def __init__(self, reports: dict[str, Report], departments: list[str]) -> None:
        from relatorios.api.requests import request_union

        self.reports = reports
        self._adapter: TypeAdapter[Any] = TypeAdapter(request_union(reports, departments))

    def params_for(
        self, report_type: str, params: dict[str, Any], today: dt.date
    ) -> dict[str, Any]:
        """The order's parameters, relative dates resolved for `today`, validated and with
        defaults filled in. Raises pydantic.ValidationError."""
        report = self.reports.get(report_type)
        values = resolve_all(report.params, params, today) if report else params
        order = self._adapter.validate_python({Sched.TYPE: report_type, Sched.PARAMS: values})
        dumped: dict[str, Any] = order.parametros.model_dump(mode="json")
        return dumped


class ScheduleStore:
    """Schedules of one queue in one Redis. Methods raise tasks.QueueUnavailable on Redis errors."""

    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self._redis = client
        self._keys = keys

    async def create(self, schedule: Schedule, now: dt.datetime) -> Schedule:
        """Save a new schedule; its first occurrence is the first after `now`."""
        saved = replace(schedule, id=str(uuid.uuid4()), created=iso(now), last=iso(now))
        with redis_errors():
            async with self._redis.pipeline(transaction=True) as pipe:
                mapping: dict[Any, Any] = saved.to_fields()
                pipe.hset(self._keys.schedule(saved.id), mapping=mapping)
                pipe.zadd(self._keys.schedules, {saved.id: int(time.time() * 1000)})
                await pipe.execute()
        return saved

    async def get(self, schedule_id: str) -> Schedule | None:
        with redis_errors():
            raw = await self._redis.hgetall(self._keys.schedule(schedule_id))
        fields = {str(k): str(v) for k, v in raw.items()}
        return Schedule.from_fields(schedule_id, fields) if fields.get(Sched.CRON) else None

    async def all(self) -> list[Schedule]:
        """Every schedule, oldest first."""
        with redis_errors():
            ids = [str(i) for i in await self._redis.zrange(self._keys.schedules, 0, -1)]
            async with self._redis.pipeline(transaction=False) as pipe:
                for schedule_id in ids:
                    pipe.hgetall(self._keys.schedule(schedule_id))
                rows = await pipe.execute()
        found = (
            Schedule.from_fields(i, {str(k): str(v) for k, v in row.items()})
            for i, row in zip(ids, rows, strict=True)
            if row
        )
        return [s for s in found if s.cron]

    async def count(self) -> int:
        with redis_errors():
            return int(await self._redis.zcard(self._keys.schedules))

    async def update(self, old: Schedule, new: Schedule, now: dt.datetime) -> Schedule:
        """Save `new` over `old`. Resumed, or given another cron or time zone, a schedule
        starts counting from `now`: nothing it skipped meanwhile fires."""
        restart = (new.active and not old.active) or (new.cron, new.time_zone) != (
            old.cron,
            old.time_zone,
        )
        saved = replace(new, last=iso(now)) if restart else replace(new, last=old.last)
        key = self._keys.schedule(old.id)
        with redis_errors():
            async with self._redis.pipeline(transaction=True) as pipe:
                mapping: dict[Any, Any] = saved.to_fields()
                pipe.hset(key, mapping=mapping)
                if not saved.notify_url:
                    pipe.hdel(key, Sched.NOTIFY_URL)
                await pipe.execute()
        return saved

    async def delete(self, schedule_id: str) -> bool:
        with redis_errors():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(self._keys.schedule(schedule_id))
                pipe.zrem(self._keys.schedules, schedule_id)
                deleted, _ = await pipe.execute()
        return bool(deleted)

    async def mark(self, schedule_id: str, last: dt.datetime, error: str | None) -> None:
        """Record that occurrences up to `last` were dealt with without queueing (skipped by
        the policy, or refused: `error`), if the schedule still exists."""
        key = self._keys.schedule(schedule_id)
        with redis_errors(), contextlib.suppress(WatchError):  # changed: next tick sees it
            async with self._redis.pipeline(transaction=True) as pipe:
                await pipe.watch(key)
                if not await pipe.exists(key):
                    return
                pipe.multi()  # type: ignore[no-untyped-call]
                pipe.hset(key, Sched.LAST, iso(last))
                if error:
                    pipe.hset(key, Sched.LAST_ERROR, error)
                await pipe.execute()
