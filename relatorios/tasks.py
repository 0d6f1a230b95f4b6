"""The API's side of the protocol: enqueue, read, cancel and sweep tasks, and read what the
workers (C and Python alike) record in Redis: heartbeats, counters, recent task hashes."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, RedisError, WatchError

from relatorios.apikeys import MAX_SECRET, ApiKey, key_hash
from relatorios.batching import Batcher
from relatorios.monitoring import (
    SAMPLE_FIELDS,
    TaskSample,
    WorkerBeat,
    beat_from,
    int_or_zero,
    sample_from,
)
from relatorios.protocol import (
    ACTIVE_STATES,
    DEFAULT_COMPRESSION,
    DEFAULT_FORMAT,
    FILE_NAME_RE,
    FINAL_STATES,
    HEARTBEAT_TTL_S,
    MOVE_DUE_RETRIES_LUA,
    OCCURRENCE_KEPT_S,
    RETRY_MOVE_BATCH,
    TASK_FIELDS,
    ErrorCode,
    F,
    K,
    Keys,
    Message,
    ParamValue,
    Role,
    Sched,
    Stat,
    Status,
    TaskField,
    file_name,
    iso,
    new_task_id,
    now_iso,
)

SWEEP_BATCH = 1000
PART_SUFFIX = ".part"
STALE_PART_S = 60
PIPELINE_CHUNK = 1000
# A listing filtered by what its index does not hold (a status, or a type within one owner's
# tasks) reads at most this many of the newest index entries.
SCAN_CAP = 10_000

# An order looks at most at this many of its key's oldest possibly-active tasks (the first to
# finish), so its cost does not grow with a generous quota; the rest are looked at later.
PRUNE_OLDEST = 100
# Verdicts of ENQUEUE.
ACCEPTED, FULL, TOO_MANY_ACTIVE, TOO_MANY_BYTES, ALREADY_FIRED = 0, 1, 2, 3, 4
_ACTIVE = ", ".join(f"'{s.value}'" for s in ACTIVE_STATES)
# KEYS: queue, task, tasks, by_owner, by_type, owner's active set, owner's bytes today, the task
# key prefix (the active set's tasks are read by id), the index of the queued status, the
# notifier's set, a schedule occurrence's key and its schedule (docs/protocol.md).
# ARGV: message, score (ms), max queue, max active, max bytes/day, today, task id, the
# occurrence key's lifetime ('' when not a schedule's), the occurrence (ISO), '1' to be
# notified, field pairs.
ENQUEUE = f"""
if ARGV[8] ~= '' and (redis.call('EXISTS', KEYS[11]) == 1
    or redis.call('EXISTS', KEYS[12]) == 0) then
  return {{{ALREADY_FIRED}, 0}}
end
local depth = redis.call('LLEN', KEYS[1])
if depth >= tonumber(ARGV[3]) then return {{{FULL}, depth}} end
local active_states = {{}}
for _, s in ipairs({{{_ACTIVE}}}) do active_states[s] = true end
for _, id in ipairs(redis.call('ZRANGE', KEYS[6], 0, {PRUNE_OLDEST - 1})) do
  local f = redis.call('HMGET', KEYS[8] .. id, '{F.STATUS}', '{F.BYTES}', '{F.FINISHED}')
  if not (f[1] and active_states[f[1]]) then
    redis.call('ZREM', KEYS[6], id)
    if f[1] == '{Status.DONE.value}' and f[3] and string.sub(f[3], 1, 10) == ARGV[6] then
      redis.call('INCRBY', KEYS[7], tonumber(f[2]) or 0)
      redis.call('EXPIRE', KEYS[7], 172800)
    end
  end
end
local active = redis.call('ZCARD', KEYS[6])
if active >= tonumber(ARGV[4]) then return {{{TOO_MANY_ACTIVE}, active}} end
local used = tonumber(redis.call('GET', KEYS[7]) or '0')
if used >= tonumber(ARGV[5]) then return {{{TOO_MANY_BYTES}, used}} end
redis.call('HSET', KEYS[2], unpack(ARGV, 11))
if ARGV[10] == '1' then redis.call('ZADD', KEYS[10], ARGV[2], ARGV[7]) end
if ARGV[8] ~= '' then
  redis.call('SET', KEYS[11], ARGV[7], 'NX', 'EX', ARGV[8])
  redis.call('HSET', KEYS[12], '{Sched.LAST}', ARGV[9], '{Sched.LAST_TASK}', ARGV[7])
  redis.call('HDEL', KEYS[12], '{Sched.LAST_ERROR}')
end
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[7])
redis.call('ZADD', KEYS[4], ARGV[2], ARGV[7])
redis.call('ZADD', KEYS[5], ARGV[2], ARGV[7])
redis.call('ZADD', KEYS[6], ARGV[2], ARGV[7])
redis.call('ZADD', KEYS[9], ARGV[2], ARGV[7])
return {{{ACCEPTED}, redis.call('LPUSH', KEYS[1], ARGV[1])}}
"""


class QueueUnavailable(Exception):
    """Redis could not be reached or answered with an error; nothing was enqueued."""


class QueueFull(Exception):
    """Backpressure: the queue is deeper than the configured limit; nothing was enqueued."""

    def __init__(self, depth: int, limit: int) -> None:
        super().__init__(f"fila cheia: {depth} tarefas aguardando (limite {limit})")


# KEYS: the key's hash. ARGV: the rate keys' prefix, default requests per minute, now (ISO).
# Returns nil for an unknown key, else {milliseconds to wait (0: allowed), field, value, ...}.
AUTHENTICATE = f"""
local fields = redis.call('HGETALL', KEYS[1])
if #fields == 0 then return nil end
local key = {{}}
for i = 1, #fields, 2 do key[fields[i]] = fields[i + 1] end
local rate = tonumber(key['{K.RATE}'] or ARGV[2]) or tonumber(ARGV[2])
local bucket = ARGV[1] .. (key['{K.NAME}'] or '')
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', bucket, 'fichas', 'em')
local tokens = tonumber(state[1]) or rate
local last = tonumber(state[2]) or now
local per_ms = rate / 60000
tokens = math.min(rate, tokens + math.max(0, now - last) * per_ms)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.ceil((1 - tokens) / per_ms)
end
redis.call('HSET', bucket, 'fichas', tostring(tokens), 'em', now)
redis.call('PEXPIRE', bucket, 120000)
redis.call('HSET', KEYS[1], '{K.LAST_USED}', ARGV[3])
table.insert(fields, 1, wait)
return fields
"""


class QuotaExceeded(Exception):
    """A quota of the caller's API key is spent (429); `retry_after` in seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Limits:
    """Who orders a task, and the limits it must fit in (settings and the key's quotas)."""

    owner: str
    max_queue: int
    max_active: int
    max_bytes_day: int


def _today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


def _seconds_to_midnight() -> int:
    now = datetime.now(UTC)
    tomorrow = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1, int((tomorrow - now).total_seconds()))


class IdempotencyConflict(Exception):
    """An Idempotency-Key was reused with a different request."""


class AlreadyFired(Exception):
    """A schedule's occurrence was queued before (by this or another scheduler process), or
    the schedule changed or went away meanwhile; nothing was queued."""


@dataclass(frozen=True)
class Occurrence:
    """The schedule occurrence a task is queued for: queued at most once, ever."""

    schedule_id: str
    at: datetime  # aware

    @property
    def epoch_s(self) -> int:
        return int(self.at.timestamp())


class NotCancellable(Exception):
    def __init__(self, status: str) -> None:
        super().__init__(f"tarefa já finalizada (status: {status})")
        self.status = status


@contextmanager
def redis_errors() -> Iterator[None]:
    try:
        yield
    except RedisError as exc:
        raise QueueUnavailable(str(exc)) from exc


@dataclass(frozen=True)
class Task:
    task_id: str
    fields: dict[str, str]

    @property
    def status(self) -> str:
        return self.fields.get(F.STATUS, "")

    def as_dict(self) -> dict[str, Any]:
        """The task as readers show it: `task_id`, then every field of TASK_FIELDS, typed."""
        shown = {f.name: _typed(f, self.fields.get(f.name)) for f in TASK_FIELDS}
        return {"task_id": self.task_id, **shown}


def _typed(field: TaskField, text: str | None) -> Any:
    """A hash field's text as its JSON type; a missing one is null, or empty when always set."""
    if field.kind is int:
        return int_or_zero(text)
    if field.kind is dict:
        return _json_object(text)
    if text is None:
        return "" if field.always else None
    return text


def _json_object(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class _Extra:
    notify_url: str | None = None
    occurrence: Occurrence | None = None


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class TaskStore:
    """Tasks of one queue in one Redis. Every method raises QueueUnavailable on a Redis error."""

    def __init__(self, client: aioredis.Redis, keys: Keys, retention_s: int) -> None:
        self._redis = client
        self._keys = keys
        self.retention_s = retention_s
        # The two scripts every order runs go out batched with concurrent requests' (batching.py).
        self._batcher = Batcher(client)
        self._enqueue = client.register_script(ENQUEUE)
        self._authenticate = client.register_script(AUTHENTICATE)

    async def _run_script(self, script: AsyncScript, keys: list[str], args: list[Any]) -> Any:
        """One EVALSHA in the next shared round trip."""

        def add(pipe: Pipeline) -> None:
            pipe.evalsha(script.sha, len(keys), *keys, *args)

        try:
            return await self._batcher.call(add)
        except NoScriptError:  # a new or restarted Redis: the script did not run; load it, once
            script.sha = await self._redis.script_load(script.script)
            return await self._batcher.call(add)

    async def enqueue(
        self,
        report_type: str,
        params: dict[str, ParamValue],
        limits: Limits,
        idempotency_key: str | None = None,
        output: tuple[str, str] = (DEFAULT_FORMAT, DEFAULT_COMPRESSION),
        *,
        notify_url: str | None = None,
        occurrence: Occurrence | None = None,
    ) -> tuple[Task, bool]:
        """Queue a task; returns it and whether it is new (False: an Idempotency-Key replay).

        `output`: the file's (formato, compressao).
        `notify_url`: a checked webhook URL (webhooks.check_url), called when the task ends.
        `occurrence`: the schedule occurrence this task is for; AlreadyFired when it was queued.
        """
        task_id = new_task_id()
        extra = _Extra(notify_url, occurrence)
        with redis_errors():
            if idempotency_key is not None:
                scope = f"{limits.owner}\n{idempotency_key}"  # one key's keys are its own
                request: list[Any] = [report_type, params]
                if output != (DEFAULT_FORMAT, DEFAULT_COMPRESSION):
                    request.append(list(output))  # a plain CSV keeps its earlier hash
                replay = await self._claim_key(scope, task_id, request)
                if replay is not None:
                    return replay, False
            try:
                return await self._push(task_id, report_type, params, limits, output, extra), True
            except BaseException:
                if idempotency_key is not None:  # the key must not point at a task never queued
                    scope = f"{limits.owner}\n{idempotency_key}"
                    await self._redis.delete(self._keys.idempotency(_sha256(scope)))
                raise

    async def _claim_key(self, key: str, task_id: str, body: list[Any]) -> Task | None:
        request = _sha256(json.dumps(body, sort_keys=True))
        name = self._keys.idempotency(_sha256(key))
        value = f"{task_id} {request}"
        if await self._redis.set(name, value, nx=True, ex=self.retention_s):
            return None
        stored = str(await self._redis.get(name) or value)
        existing, _, stored_request = stored.partition(" ")
        if stored_request != request:
            raise IdempotencyConflict("Idempotency-Key já usada com outro pedido")
        for _ in range(20):  # a concurrent request may be queueing it right now
            task = await self.get(existing)
            if task is not None:
                return task
            await asyncio.sleep(0.05)
        raise QueueUnavailable("tarefa da Idempotency-Key ainda não registrada; tente novamente")

    async def _push(
        self,
        task_id: str,
        report_type: str,
        params: dict[str, ParamValue],
        limits: Limits,
        output: tuple[str, str],
        extra: _Extra,
    ) -> Task:
        formato, compressao = output
        file = file_name(report_type, task_id, formato=formato, compressao=compressao)
        message = Message(task_id, report_type, params, file, now_iso(), formato, compressao)
        fields = {
            F.STATUS: Status.QUEUED.value,
            F.TYPE: report_type,
            F.PARAMS: json.dumps(params, ensure_ascii=False),
            F.FILE: message.file,
            F.FORMAT: formato,
            F.COMPRESSION: compressao,
            F.CREATED: message.created_at,
            F.ROWS: "0",
            F.BYTES: "0",
            F.OWNER: limits.owner,
        }
        if extra.notify_url:
            fields[F.NOTIFY_URL] = extra.notify_url
        fired = extra.occurrence
        if fired:
            fields[F.SCHEDULE] = fired.schedule_id
            fields[F.SCHEDULED_FOR] = iso(fired.at)
        keys = self._keys
        owner = limits.owner
        # One script: the limits are checked and the task recorded, indexed and queued together,
        # or not at all (MAX_FILA cannot be overshot by concurrent requests).
        verdict, value = await self._run_script(
            self._enqueue,
            [
                keys.queue,
                keys.task(task_id),
                keys.tasks,
                keys.by_owner(owner),
                keys.by_type(report_type),
                keys.active(owner),
                keys.bytes_day(owner, _today()),
                keys.task(""),
                keys.by_status(Status.QUEUED),
                # Webhooks and schedules (docs/protocol.md): the notifier's set, the
                # occurrence's key and the schedule, written with the task or not at all.
                keys.notify,
                keys.occurrence(fired.schedule_id, fired.epoch_s) if fired else keys.notify,
                keys.schedule(fired.schedule_id) if fired else keys.notify,
            ],
            [
                message.to_json(),
                int(time.time() * 1000),
                limits.max_queue,
                limits.max_active,
                limits.max_bytes_day,
                _today(),
                task_id,
                OCCURRENCE_KEPT_S if fired else "",
                iso(fired.at) if fired else "",
                "1" if extra.notify_url else "",
                *[item for pair in fields.items() for item in pair],
            ],
        )
        if verdict == FULL:
            raise QueueFull(int(value), limits.max_queue)
        if verdict == ALREADY_FIRED:
            raise AlreadyFired(keys.occurrence(fired.schedule_id, fired.epoch_s) if fired else "")
        if verdict == TOO_MANY_ACTIVE:
            raise QuotaExceeded(
                f"limite de tarefas ativas desta chave atingido ({limits.max_active}); "
                "espere uma terminar ou cancele uma",
                retry_after=10,
            )
        if verdict == TOO_MANY_BYTES:
            raise QuotaExceeded(
                f"limite diário de bytes exportados desta chave atingido "
                f"({limits.max_bytes_day} bytes)",
                retry_after=_seconds_to_midnight(),
            )
        return Task(task_id, fields)

    async def api_key(self, secret: str, default_rate: int) -> tuple[ApiKey | None, int]:
        """The key whose secret is `secret` (None: unknown or revoked), and how many
        milliseconds it must wait before its next request (0: go on). One script: the lookup,
        the token bucket of its requests per minute and its last-use time, atomically."""
        if not secret or len(secret) > MAX_SECRET:
            return None, 0
        name = self._keys.api_key(key_hash(secret))
        with redis_errors():
            reply = await self._run_script(
                self._authenticate, [name], [self._keys.rate(""), default_rate, now_iso()]
            )
        if not reply:
            return None, 0
        wait_ms, *flat = reply
        fields = {str(k): str(v) for k, v in zip(flat[::2], flat[1::2], strict=True)}
        if K.NAME not in fields or fields.get(K.ROLE) not in set(Role):
            return None, 0
        return ApiKey(fields[K.NAME], Role(fields[K.ROLE]), fields), int(wait_ms)

    async def get(self, task_id: str) -> Task | None:
        with redis_errors():
            raw = await self._redis.hgetall(self._keys.task(task_id))
        fields = {str(k): str(v) for k, v in raw.items()}
        return Task(task_id, fields) if fields else None

    async def cancel(self, task_id: str, owner: str | None = None) -> Task | None:
        """Cancel a queued or running task (None if unknown, or not `owner`'s when given).
        Raises NotCancellable if final."""
        key = self._keys.task(task_id)
        with redis_errors():
            async with self._redis.pipeline(transaction=True) as pipe:
                while True:
                    try:
                        await pipe.watch(key)
                        status, dono = await pipe.hmget(key, [F.STATUS, F.OWNER])
                        if status is None or (owner is not None and dono != owner):
                            return None
                        if status in FINAL_STATES:
                            raise NotCancellable(str(status))
                        now = now_iso()
                        pipe.multi()  # type: ignore[no-untyped-call]
                        pipe.hset(
                            key,
                            mapping={
                                F.STATUS: Status.CANCELLED,
                                F.CANCELLED: now,
                                F.FINISHED: now,
                                F.ERROR_CODE: ErrorCode.CANCELLED,
                            },
                        )
                        pipe.eval(*self._keys.index_status(task_id, Status.CANCELLED))
                        pipe.expire(key, self.retention_s + 86_400)
                        pipe.hincrby(self._keys.stats, Stat.CANCELLED, 1)
                        await pipe.execute()
                        return await self.get(task_id)
                    except WatchError:
                        continue

    async def find(
        self,
        status: str | None,
        report_type: str | None,
        limit: int,
        offset: int,
        owner: str | None = None,
    ) -> tuple[list[Task], int]:
        """Newest first, filtered (by `owner` too when given); one page and the number matching.

        Each filter has its index (a sorted set per owner, type and status, scored by creation
        time): one filter alone answers with ZREVRANGE, reading O(limit) records. With two or
        more, the smallest of their indexes is read newest first, at most SCAN_CAP entries,
        counting the matches among them.
        """
        keys = self._keys
        indexes = [keys.tasks]
        if owner is not None:
            indexes.append(keys.by_owner(owner))
        if report_type is not None:
            indexes.append(keys.by_type(report_type))
        if status is not None:
            indexes.append(keys.by_status(status))
        with redis_errors():
            if len(indexes) <= 2:
                index = indexes[-1]
                total = int(await self._redis.zcard(index))
                page = await self._redis.zrevrange(index, offset, offset + limit - 1)
                return await self._read([str(i) for i in page]), total
            async with self._redis.pipeline(transaction=False) as pipe:
                for name in indexes[1:]:
                    pipe.zcard(name)
                sizes = await pipe.execute()
            smallest = min(zip(sizes, indexes[1:], strict=True))[1]
            return await self._scan(smallest, status, report_type, owner, limit, offset)

    async def _read(self, ids: list[str]) -> list[Task]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for task_id in ids:
                pipe.hgetall(self._keys.task(task_id))
            rows = await pipe.execute()
        return [
            Task(task_id, {str(k): str(v) for k, v in fields.items()})
            for task_id, fields in zip(ids, rows, strict=True)
            if fields
        ]

    async def _scan(
        self,
        index: str,
        status: str | None,
        report_type: str | None,
        owner: str | None,
        limit: int,
        offset: int,
    ) -> tuple[list[Task], int]:
        wanted: list[str] = []
        total = 0
        for start in range(0, SCAN_CAP, 500):
            ids = [str(i) for i in await self._redis.zrevrange(index, start, start + 499)]
            if not ids:
                break
            async with self._redis.pipeline(transaction=False) as pipe:
                for task_id in ids:
                    pipe.hmget(self._keys.task(task_id), [F.STATUS, F.TYPE])
                rows = await pipe.execute()
            for task_id, (st, tp) in zip(ids, rows, strict=True):
                if st is not None and _matches(
                    {F.STATUS: st, F.TYPE: tp or ""}, status, report_type
                ):
                    if offset <= total < offset + limit:
                        wanted.append(task_id)
                    total += 1
        return await self._read(wanted), total

    async def key_usage(self) -> list[dict[str, Any]]:
        """Every API key (name, role, times) with its task count, active tasks and bytes today."""
        keys = self._keys
        with redis_errors():
            names = {
                str(k): str(v) for k, v in (await self._redis.hgetall(keys.api_key_names)).items()
            }
            rows: list[dict[str, Any]] = []
            for name in sorted(names):
                async with self._redis.pipeline(transaction=False) as pipe:
                    pipe.hgetall(keys.api_key(names[name]))
                    pipe.zcard(keys.by_owner(name))
                    pipe.zrange(keys.active(name), 0, -1)
                    pipe.get(keys.bytes_day(name, _today()))
                    fields, count, active, used = await pipe.execute()
                if not fields:
                    continue
                statuses = [await self._redis.hget(keys.task(str(i)), F.STATUS) for i in active]
                rows.append(
                    {
                        "nome": name,
                        "papel": fields.get(K.ROLE, ""),
                        "criada_em": fields.get(K.CREATED),
                        "usada_em": fields.get(K.LAST_USED),
                        "tarefas": int(count),
                        "tarefas_ativas": sum(s in ACTIVE_STATES for s in statuses),
                        "bytes_hoje": int_or_zero(used),
                    }
                )
        return rows

    async def dead_letters(
        self, limit: int, offset: int, notices: bool = False
    ) -> tuple[list[dict[str, Any]], int]:
        """Dead letters of the queue, or (`notices`) of webhook deliveries; newest first."""
        key = self._keys.notify_dead if notices else self._keys.dead
        with redis_errors():
            total = int(await self._redis.llen(key))
            raw = await self._redis.lrange(key, offset, offset + limit - 1)
        return [_json_object(str(entry)) for entry in raw], total

    # ---- what /health and /metrics read ----

    async def ping(self) -> None:
        with redis_errors():
            await self._redis.ping()

    async def queue_depth(self) -> int:
        """Messages waiting in the queue, after moving there the delayed retries that are due
        (the workers do it too: whoever looks first, docs/protocol.md "Delayed retries")."""
        with redis_errors():
            keys = [self._keys.retries, self._keys.queue]
            await self._redis.eval(MOVE_DUE_RETRIES_LUA, 2, *keys, RETRY_MOVE_BATCH)
            return int(await self._redis.llen(self._keys.queue))

    async def retries_waiting(self) -> int:
        """Tasks waiting for their next attempt (`Q:adiadas`)."""
        with redis_errors():
            return int(await self._redis.zcard(self._keys.retries))

    async def task_count(self) -> int:
        """Tasks in the index `Q:tarefas` (every task not swept by the retention yet)."""
        with redis_errors():
            return int(await self._redis.zcard(self._keys.tasks))

    async def live_workers(self) -> list[WorkerBeat]:
        """Workers whose heartbeat key has not expired, sorted by id: the ids of the registry
        `Q:trabalhadores` that beat within HEARTBEAT_TTL_S, then their heartbeat keys (no scan of
        the keyspace, whatever the number of tasks)."""
        now_ms = int(time.time() * 1000)
        with redis_errors():
            # Ids silent for a day are forgotten (their heartbeat expired long ago).
            await self._redis.zremrangebyscore(self._keys.workers, "-inf", now_ms - 86_400_000)
            recent = now_ms - HEARTBEAT_TTL_S * 1000
            ids = [
                str(i) for i in await self._redis.zrangebyscore(self._keys.workers, recent, "+inf")
            ]
            if not ids:
                return []
            values = await self._redis.mget([self._keys.worker(i) for i in ids])
        beats = (beat_from(i, value) for i, value in zip(ids, values, strict=True))
        return sorted((b for b in beats if b is not None), key=lambda b: b.id)

    async def recent_tasks(self, limit: int) -> list[TaskSample]:
        """The newest `limit` tasks, reading only the fields metrics use."""
        samples: list[TaskSample] = []
        with redis_errors():
            ids = [str(i) for i in await self._redis.zrevrange(self._keys.tasks, 0, limit - 1)]
            for start in range(0, len(ids), PIPELINE_CHUNK):
                async with self._redis.pipeline(transaction=False) as pipe:
                    for task_id in ids[start : start + PIPELINE_CHUNK]:
                        pipe.hmget(self._keys.task(task_id), list(SAMPLE_FIELDS))
                    rows = await pipe.execute()
                samples.extend(sample_from(values) for values in rows if values and values[0])
        return samples

    async def schedule_and_notice_counts(self) -> dict[str, int]:
        """Schedules, whether a scheduler holds the lease, notices pending and dead."""
        with redis_errors():
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.zcard(self._keys.schedules)
                pipe.exists(self._keys.scheduler_lease)
                pipe.zcard(self._keys.notify)
                pipe.llen(self._keys.notify_dead)
                schedules, lease, pending, dead = await pipe.execute()
        return {
            "agendamentos": int(schedules),
            "agendador_ativo": int(lease),
            "notificacoes_pendentes": int(pending),
            "notificacoes_mortas": int(dead),
        }

    async def counters(self) -> dict[str, int]:
        """The workers' statistics hash (`Stat`), all time."""
        with redis_errors():
            raw = await self._redis.hgetall(self._keys.stats)
        return {str(k): int_or_zero(str(v)) for k, v in raw.items()}

    async def sweep(self, export_dir: Path) -> int:
        """Retention: expire finished tasks older than the retention, with their files."""
        cutoff_ms = int((time.time() - self.retention_s) * 1000)
        with redis_errors():
            if not await self._redis.set(self._keys.sweep_lock, "1", nx=True, ex=120):
                return 0  # another API process is sweeping
            tasks = self._keys.tasks
            old = await self._redis.zrangebyscore(tasks, "-inf", cutoff_ms, 0, SWEEP_BATCH)
            expired = 0
            for task_id in map(str, old):
                task = await self.get(task_id)
                if task is not None and task.status not in FINAL_STATES:
                    continue  # still queued or running: not ours to expire
                if task is not None:
                    await self._expire(task, export_dir)
                await self._unindex(task_id, task)
                expired += 1
            await self._sweep_parts(export_dir)
            await self._redis.delete(self._keys.sweep_lock)
        return expired

    async def _unindex(self, task_id: str, task: Task | None) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zrem(self._keys.tasks, task_id)
            # Not in `tasks` any more: the script takes it out of every status index.
            pipe.eval(*self._keys.index_status(task_id, Status.EXPIRED))
            if task is not None:
                pipe.zrem(self._keys.by_owner(task.fields.get(F.OWNER, "")), task_id)
                pipe.zrem(self._keys.by_type(task.fields.get(F.TYPE, "")), task_id)
            await pipe.execute()

    async def _sweep_parts(self, export_dir: Path) -> None:
        """Remove the `.part` files no live worker is writing (a worker killed mid-report leaves
        one). A file younger than STALE_PART_S is left alone: its worker may be starting."""
        busy = set()
        for beat in await self.live_workers():
            if beat.task:
                busy.add(await self._redis.hget(self._keys.task(beat.task), F.FILE))
        now = time.time()
        with contextlib.suppress(OSError):
            for entry in os.scandir(export_dir):
                name = entry.name.removesuffix(PART_SUFFIX)
                if name == entry.name or not FILE_NAME_RE.match(name) or name in busy:
                    continue
                with contextlib.suppress(OSError):
                    if now - entry.stat(follow_symlinks=False).st_mtime > STALE_PART_S:
                        os.unlink(entry.path)

    async def _expire(self, task: Task, export_dir: Path) -> None:
        name = task.fields.get(F.FILE, "")
        if FILE_NAME_RE.match(name):  # never a path from Redis onto the file system
            (export_dir / name).unlink(missing_ok=True)
        key = self._keys.task(task.task_id)
        if task.status != Status.EXPIRED:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(key, mapping={F.STATUS: Status.EXPIRED, F.EXPIRED: now_iso()})
                pipe.eval(*self._keys.index_status(task.task_id, Status.EXPIRED))
                await pipe.execute()
        await self._redis.expire(key, 86_400)


def _matches(fields: dict[str, str], status: str | None, report_type: str | None) -> bool:
    return (status is None or fields.get(F.STATUS) == status) and (
        report_type is None or fields.get(F.TYPE) == report_type
    )
