"""Task state transitions a worker records in Redis (docs/protocol.md, "Task states").

Final states are written conditionally (WATCH/MULTI/EXEC) together with the removal of the message
from the worker's processing list, so a task is finished exactly once even when it was delivered
twice or cancelled while it ran.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import redis
from redis.typing import EncodableT, FieldT

from relatorios.protocol import (
    DEAD_LETTER_EXCERPT,
    DEAD_LETTERS_KEPT,
    FINAL_STATES,
    RECORD_GRACE_S,
    Dead,
    F,
    InvalidMessage,
    Keys,
    Stat,
    Status,
    now_iso,
    parse_message,
)

log = logging.getLogger("relatorios.worker")
# Fields of a task hash to write. redis-py's Mapping is invariant in its key type: a dict[str, …]
# is not a Mapping[str | bytes | …, …], so the alias names redis-py's own types.
Fields = dict[FieldT, EncodableT]
STAT_OF = {Status.DONE: Stat.DONE, Status.FAILED: Stat.FAILED, Status.CANCELLED: Stat.CANCELLED}


class TaskStates:
    """The state writes of one worker (`worker_id`) on one queue."""

    def __init__(self, client: redis.Redis, keys: Keys, worker_id: str, retention_s: int) -> None:
        self.redis = client
        self.keys = keys
        self.worker_id = worker_id
        self.retention_s = retention_s
        self.processing = keys.processing(worker_id)

    def finish(
        self,
        task_id: str,
        raw: bytes,
        status: Status,
        fields: Fields,
        output: Path | None = None,
    ) -> bool:
        """Record a final state and release the message. False if the task was already final.

        When it was (cancelled meanwhile, or finished by a duplicate delivery), `output`, the file
        this attempt wrote, is removed if the task was cancelled, and nothing else is recorded.
        """
        key = self.keys.task(task_id)
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)  # type: ignore[no-untyped-call]
                    current = pipe.hget(key, F.STATUS)
                    pipe.multi()
                    pipe.lrem(self.processing, 1, raw)  # type: ignore[arg-type]  # bytes are fine
                    if current in FINAL_STATES:
                        pipe.execute()
                        if current == Status.CANCELLED and output is not None:
                            output.unlink(missing_ok=True)
                        return False
                    self._record(pipe, task_id, status, fields)
                    pipe.execute()
                    return True
                except redis.WatchError:
                    continue

    def _record(
        self, pipe: redis.client.Pipeline, task_id: str, status: Status, fields: Fields
    ) -> None:
        key = self.keys.task(task_id)
        now = now_iso()
        mapping: Fields = {
            F.STATUS: status,
            F.FINISHED: now,
            F.WORKER: self.worker_id,
        }
        if status == Status.CANCELLED:
            mapping[F.CANCELLED] = now
        mapping.update(fields)
        pipe.hset(key, mapping=mapping)
        pipe.eval(*self.keys.index_status(task_id, status))
        pipe.hdel(key, F.NEXT_ATTEMPT)
        pipe.expire(key, self.retention_s + RECORD_GRACE_S)
        pipe.hincrby(self.keys.stats, STAT_OF[status], 1)
        pipe.hincrby(self.keys.stats, Stat.ROWS, int(fields.get(F.ROWS, 0)))
        pipe.hincrby(self.keys.stats, Stat.BYTES, int(fields.get(F.BYTES, 0)))

    def dead_letter(self, raw: bytes, reason: str, task_id: str | None) -> None:
        entry = {
            Dead.TASK_ID: task_id,
            Dead.REASON: reason,
            Dead.MESSAGE: raw[:DEAD_LETTER_EXCERPT].decode("utf-8", "replace"),
            Dead.SIZE: len(raw),
            Dead.AT: now_iso(),
            Dead.WORKER: self.worker_id,
        }
        pipe = self.redis.pipeline(transaction=True)
        pipe.lpush(self.keys.dead, json.dumps(entry, ensure_ascii=False))
        pipe.ltrim(self.keys.dead, 0, DEAD_LETTERS_KEPT - 1)
        pipe.execute()

    def release(self, raw: bytes) -> None:
        self.redis.lrem(self.processing, 1, raw)  # type: ignore[arg-type]  # bytes are fine

    def requeued(self, raw: bytes, owner: str) -> None:
        """A message of `owner` went back to the queue: its task is queued again, if it ran."""
        try:
            task_id: str | None = parse_message(raw).task_id
        except InvalidMessage as exc:
            task_id = exc.task_id
        log.warning(
            "Tarefa recuperada de worker morto (task_id=%s, worker=%s)",
            task_id,
            owner,
            extra={"task_id": task_id},
        )
        if task_id is None:
            return
        key = self.keys.task(task_id)
        with self.redis.pipeline() as pipe:
            try:
                pipe.watch(key)  # type: ignore[no-untyped-call]
                if pipe.hget(key, F.STATUS) == Status.RUNNING:
                    pipe.multi()
                    pipe.hset(key, F.STATUS, Status.QUEUED)
                    pipe.eval(*self.keys.index_status(task_id, Status.QUEUED))
                    pipe.execute()
            except redis.WatchError:
                pass  # someone else changed it meanwhile: their write stands

    def schedule_retry(
        self, task_id: str, raw: bytes, delay_s: float, error: Exception, next_at: str
    ) -> bool:
        """A transient error: the message leaves the processing list for `Q:adiadas`, due in
        `delay_s` by Redis's clock, and the task is queued again with the error and the next
        try's time, in one conditional write. False (the message only released) if the task is no
        longer running: cancelled meanwhile."""
        key = self.keys.task(task_id)
        code = getattr(error, "code", "")
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)  # type: ignore[no-untyped-call]
                    running = pipe.hget(key, F.STATUS) == Status.RUNNING
                    seconds, micros = pipe.time()
                    due = seconds * 1000 + micros // 1000 + int(delay_s * 1000)
                    pipe.multi()
                    pipe.lrem(self.processing, 1, raw)  # type: ignore[arg-type]  # bytes are fine
                    if running:
                        fields: Fields = {
                            F.STATUS: Status.QUEUED,
                            F.ERROR: str(error),
                            F.ERROR_CODE: code,
                            F.NEXT_ATTEMPT: next_at,
                        }
                        pipe.hset(key, mapping=fields)
                        pipe.zadd(self.keys.retries, {raw: due})
                        pipe.eval(*self.keys.index_status(task_id, Status.QUEUED))
                    pipe.execute()
                    return running
                except redis.WatchError:
                    continue

    def put_back(self, task_id: str, raw: bytes) -> None:
        """Undo the current attempt: the task is queued again, next in line (shutdown)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self.keys.task(task_id), mapping={F.STATUS: Status.QUEUED})
        pipe.eval(*self.keys.index_status(task_id, Status.QUEUED))
        pipe.hincrby(self.keys.task(task_id), F.ATTEMPTS, -1)
        pipe.lrem(self.processing, 1, raw)  # type: ignore[arg-type]  # bytes are fine
        pipe.rpush(self.keys.queue, raw)
        pipe.execute()


def recover(queue_client: redis.Redis, states: TaskStates, idle: bool, scan: bool = False) -> int:
    """Put back on the queue the messages of dead workers (and our own leftovers when idle).

    The workers of the registry `Q:trabalhadores` are looked at, whatever the number of keys;
    with `scan` (start-up, after an outage), every processing list a SCAN finds, also those of
    workers that never registered. A dead worker leaves the registry once its list is empty.
    Safe to run concurrently: each LMOVE moves one message atomically, exactly once.
    `queue_client` must not decode responses: a message need not be valid UTF-8.
    """
    keys, me = states.keys, states.worker_id
    if scan:
        found = queue_client.scan_iter(match=f"{keys.processing_prefix}*", count=1000)
        owners = [_text(name)[len(keys.processing_prefix) :] for name in found]
    else:
        owners = [_text(name) for name in queue_client.zrange(keys.workers, 0, -1)]
    moved = 0
    for owner in owners:
        if owner == me and not idle:
            continue
        if owner != me and queue_client.exists(keys.worker(owner)):
            continue
        key = keys.processing(owner)
        while (raw := queue_client.lmove(key, keys.queue, "RIGHT", "RIGHT")) is not None:
            moved += 1
            states.requeued(raw if isinstance(raw, bytes) else str(raw).encode(), owner)
        if owner != me:
            queue_client.zrem(keys.workers, owner)
    return moved


def _text(name: object) -> str:
    return name.decode() if isinstance(name, bytes) else str(name)
