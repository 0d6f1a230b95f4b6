"""Schedules: real scheduler processes (`python -m relatorios.scheduler`) against a real Redis,
with a test clock (AGENDADOR_RELOGIO_TESTE) that makes a minute pass every real second; and the
scheduler's pass (Scheduler.run_once) at chosen times for downtime and relative dates."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis
import redis.asyncio as aioredis

from relatorios.catalog import Param
from relatorios.protocol import F, Keys, MissedPolicy, Sched, parse_message
from relatorios.relative_dates import resolve
from relatorios.scheduler import Clock, Scheduler, order_check
from relatorios.schedules import (
    InvalidSchedule,
    Schedule,
    ScheduleStore,
    check_cron,
    due,
)
from relatorios.settings import Settings
from tests.conftest import WorkerEnv, wait_until

SP = ZoneInfo("America/Sao_Paulo")
EVERY_MINUTE = "* * * * *"


def settings_of(env: WorkerEnv, **extra: Any) -> Settings:
    return Settings(
        redis_url=env.redis_url,
        queue_name=env.queue,
        db_path=env.db_path,
        export_dir=env.export_dir,
        **extra,
    )


async def _create(env: WorkerEnv, schedule: Schedule, now: dt.datetime) -> Schedule:
    client = aioredis.Redis.from_url(env.redis_url, decode_responses=True)
    try:
        return await ScheduleStore(client, Keys(env.queue)).create(schedule, now)
    finally:
        await client.aclose()


def create(env: WorkerEnv, schedule: Schedule, now: dt.datetime) -> Schedule:
    return asyncio.run(_create(env, schedule, now))


def run_once(env: WorkerEnv, now: dt.datetime, **extra: Any) -> int:
    async def one_pass() -> int:
        client = aioredis.Redis.from_url(env.redis_url, decode_responses=True)
        settings = settings_of(env, **extra)
        try:
            scheduler = Scheduler(client, settings, order_check(settings), Clock())
            return await scheduler.run_once(now)
        finally:
            await client.aclose()

    return asyncio.run(one_pass())


def tasks_of(client: redis.Redis, queue: str, schedule_id: str) -> list[dict[str, str]]:
    keys = Keys(queue)
    found = []
    for task_id in client.zrange(keys.tasks, 0, -1):
        fields: dict[str, str] = client.hgetall(keys.task(str(task_id)))  # type: ignore[assignment]
        if fields.get(F.SCHEDULE) == schedule_id:
            found.append({"task_id": str(task_id), **fields})
    return sorted(found, key=lambda t: t[F.SCHEDULED_FOR])


@pytest.fixture
def schedulers(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        proc.wait(10)


def test_an_every_minute_schedule_fires_once_per_minute_with_three_schedulers_and_one_killed(
    worker_env: WorkerEnv,
    redis_client: redis.Redis,
    schedulers: list[subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    start = time.time()
    schedule = create(
        worker_env,
        Schedule("", "PAGAMENTOS_PENDENTES", {}, EVERY_MINUTE),
        dt.datetime.fromtimestamp(start, dt.UTC),
    )
    worker_env.extra.update(
        AGENDADOR_RELOGIO_TESTE=f"{start},{start},60",  # a minute per second from now on
        AGENDADOR_INTERVALO_S="0.1",
        AGENDADOR_LEASE_S="1",
    )
    for n in range(3):
        log = open(tmp_path / f"scheduler-{n}.log", "wb")  # noqa: SIM115
        schedulers.append(
            subprocess.Popen(
                [sys.executable, "-m", "relatorios.scheduler"],
                env=worker_env.environ(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    lease = Keys(worker_env.queue).scheduler_lease
    wait_until(lambda: len(tasks_of(redis_client, worker_env.queue, schedule.id)) >= 3, 20, "3")
    holder = int(str(redis_client.get(lease)).split(":")[1])
    victim = next(p for p in schedulers if p.pid == holder)
    os.kill(victim.pid, signal.SIGKILL)  # the lease holder, mid-way: no clean release
    victim.wait(5)
    fired_before = len(tasks_of(redis_client, worker_env.queue, schedule.id))
    wait_until(
        lambda: len(tasks_of(redis_client, worker_env.queue, schedule.id)) >= fired_before + 4,
        20,
        "a survivor to take over",
    )
    new_holder = int(str(redis_client.get(lease)).split(":")[1])
    assert new_holder != holder and new_holder in [p.pid for p in schedulers]
    for proc in schedulers:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in schedulers:
        proc.wait(10)

    tasks = tasks_of(redis_client, worker_env.queue, schedule.id)
    minutes = [dt.datetime.fromisoformat(t[F.SCHEDULED_FOR].replace("Z", "+00:00")) for t in tasks]
    assert len(set(minutes)) == len(minutes), "an occurrence fired twice"
    assert all(m.second == 0 and m.microsecond == 0 for m in minutes)
    gaps = {later - earlier for earlier, later in itertools.pairwise(minutes)}
    assert gaps == {dt.timedelta(minutes=1)}, f"an occurrence was skipped: {minutes}"
    # Every task was queued whole (message on the queue) through the API's code path.
    messages = [parse_message(m) for m in redis_client.lrange(worker_env.queue, 0, -1)]
    assert {m.task_id for m in messages} == {t["task_id"] for t in tasks}
    assert tasks[0][F.STATUS] == "na_fila" and tasks[0][F.TYPE] == "PAGAMENTOS_PENDENTES"
    stored = redis_client.hgetall(Keys(worker_env.queue).schedule(schedule.id))
    assert stored[Sched.LAST_TASK] == tasks[-1]["task_id"]


@pytest.mark.parametrize(("policy", "fired"), [(MissedPolicy.RUN_ONE, 1), (MissedPolicy.SKIP, 0)])
def test_after_downtime_the_policy_decides_and_a_restart_never_fires_twice(
    worker_env: WorkerEnv, redis_client: redis.Redis, policy: MissedPolicy, fired: int
) -> None:
    created = dt.datetime(2026, 3, 2, 9, 30, tzinfo=SP)
    schedule = create(
        worker_env, Schedule("", "PAGAMENTOS_PENDENTES", {}, "0 7 * * *", missed=policy), created
    )
    # No scheduler ran for three days: 7:00 on the 3rd, 4th and 5th were missed.
    later = dt.datetime(2026, 3, 5, 15, 0, tzinfo=SP)
    assert run_once(worker_env, later) == fired
    assert run_once(worker_env, later + dt.timedelta(minutes=1)) == 0  # a restart: nothing again
    tasks = tasks_of(redis_client, worker_env.queue, schedule.id)
    assert len(tasks) == fired
    if fired:
        assert tasks[0][F.SCHEDULED_FOR] == "2026-03-05T10:00:00.000Z"  # 7:00 in São Paulo
    stored = redis_client.hgetall(Keys(worker_env.queue).schedule(schedule.id))
    assert stored[Sched.LAST] == "2026-03-05T10:00:00.000Z"
    # The next day, on time: fired whatever the policy.
    assert run_once(worker_env, dt.datetime(2026, 3, 6, 7, 0, 5, tzinfo=SP)) == 1


def test_relative_dates_are_resolved_on_the_day_of_the_occurrence(
    worker_env: WorkerEnv, redis_client: redis.Redis
) -> None:
    params = {"data_inicio": "inicio_do_mes_passado", "data_fim": "fim_do_mes_passado"}
    created = dt.datetime(2026, 2, 27, 12, 0, tzinfo=SP)
    schedule = create(
        worker_env, Schedule("", "TRANSACOES_POR_PERIODO", params, "30 6 1 * *"), created
    )
    assert run_once(worker_env, dt.datetime(2026, 3, 1, 6, 30, 10, tzinfo=SP)) == 1
    (task,) = tasks_of(redis_client, worker_env.queue, schedule.id)
    assert json.loads(task[F.PARAMS]) == {"data_inicio": "2026-02-01", "data_fim": "2026-02-28"}
    (message,) = [parse_message(m) for m in redis_client.lrange(worker_env.queue, 0, -1)]
    assert message.params == {"data_inicio": "2026-02-01", "data_fim": "2026-02-28"}


def test_a_schedule_whose_parameters_no_longer_validate_records_why_and_queues_nothing(
    worker_env: WorkerEnv, redis_client: redis.Redis
) -> None:
    created = dt.datetime(2026, 3, 2, 9, 30, tzinfo=SP)
    schedule = create(
        worker_env, Schedule("", "RESUMO_MENSAL", {"ano": "ontem"}, "0 * * * *"), created
    )
    assert run_once(worker_env, dt.datetime(2026, 3, 2, 10, 0, 1, tzinfo=SP)) == 0
    stored = redis_client.hgetall(Keys(worker_env.queue).schedule(schedule.id))
    assert "ano" in stored[Sched.LAST_ERROR] and "inteiro" in stored[Sched.LAST_ERROR]
    assert redis_client.llen(worker_env.queue) == 0


def test_relative_dates() -> None:
    day = dt.date(2026, 3, 15)
    date = Param("d", "date", "")
    assert resolve(date, "hoje", day) == "2026-03-15"
    assert resolve(date, "ontem", day) == "2026-03-14"
    assert resolve(date, "hoje-7d", day) == "2026-03-08"
    assert resolve(date, "hoje+20d", day) == "2026-04-04"
    assert resolve(date, "inicio_do_mes", day) == "2026-03-01"
    assert resolve(date, "fim_do_mes", day) == "2026-03-31"
    assert resolve(date, "fim_do_mes_passado", day) == "2026-02-28"
    assert resolve(date, "inicio_do_ano_passado", day) == "2025-01-01"
    assert resolve(date, "2026-01-02", day) == "2026-01-02"
    assert resolve(date, "ano_passado", day) == "ano_passado"  # not a date word
    year = Param("ano", "integer", "")
    assert resolve(year, "ano_passado", day) == 2025
    assert resolve(year, "hoje", day) == "hoje"  # left for the validation to refuse
    assert resolve(Param("t", "text", ""), "hoje", day) == "hoje"


@pytest.mark.parametrize(
    ("cron", "problem"),
    [
        ("* * * *", "5 campos"),
        ("*/5 * * * * *", "5 campos"),
        ("61 * * * *", "campo minuto inválido ('61')"),
        ("0 25 * * *", "campo hora inválido ('25')"),
        ("0 0 * 13 *", "campo mês inválido ('13')"),
        ("0 0 * * segunda", "campo dia da semana inválido"),
        ("0 0 30 2 *", "nenhuma data possível"),
    ],
)
def test_an_invalid_cron_expression_names_the_problem(cron: str, problem: str) -> None:
    with pytest.raises(InvalidSchedule, match=problem.replace("(", r"\(").replace(")", r"\)")):
        check_cron(cron)


def test_due_catches_up_within_the_grace_and_never_before_the_last_occurrence() -> None:
    last = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)
    now = last + dt.timedelta(minutes=3, seconds=5)
    fire, newest = due(EVERY_MINUTE, SP, last, now, 300, MissedPolicy.SKIP)
    assert [f.minute for f in fire] == [1, 2, 3] and newest == fire[-1]
    assert due(EVERY_MINUTE, SP, now, now, 300, MissedPolicy.RUN_ONE) == ([], None)


def test_two_schedulers_firing_the_same_occurrence_at_once_queue_it_once(
    worker_env: WorkerEnv, redis_client: redis.Redis
) -> None:
    """Without the lease (two holders by mistake, a stale view): the occurrence key decides."""
    created = dt.datetime(2026, 3, 2, 9, 30, tzinfo=SP)
    schedule = create(worker_env, Schedule("", "PAGAMENTOS_PENDENTES", {}, "*/10 * * * *"), created)
    now = dt.datetime(2026, 3, 2, 10, 0, 3, tzinfo=SP)  # 9:40, 9:50 and 10:00 are due, and
    hour = 3600  # within the tolerance: all three fire

    async def race() -> list[int]:
        client = aioredis.Redis.from_url(worker_env.redis_url, decode_responses=True)
        settings = settings_of(worker_env, schedule_grace_s=hour)
        check = order_check(settings)
        schedulers = [Scheduler(client, settings, check, Clock()) for _ in range(4)]
        try:
            return list(await asyncio.gather(*(s.run_once(now) for s in schedulers)))
        finally:
            await client.aclose()

    fired = asyncio.run(race())
    tasks = tasks_of(redis_client, worker_env.queue, schedule.id)
    assert sorted(t[F.SCHEDULED_FOR] for t in tasks) == [
        "2026-03-02T12:40:00.000Z",
        "2026-03-02T12:50:00.000Z",
        "2026-03-02T13:00:00.000Z",
    ]
    assert sum(fired) == 3 and redis_client.llen(worker_env.queue) == 3
    # A pass after a restart finds nothing to do.
    assert run_once(worker_env, now, schedule_grace_s=hour) == 0
