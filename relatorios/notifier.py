"""The notifier (`python -m relatorios.notifier`): tells a task's `notificar_url` it ended.

How it finds final states, without the workers' help (docs/protocol.md, "Webhooks"): the API
queues a task that asks for a notice and adds its id to the sorted set `<queue>:notificacoes`
in the same transaction. The notifier reads the ids that are due (score = when to look next),
and for each one reads the task's status: not final yet, it looks again after
NOTIFICADOR_INTERVALO_S; final (whichever process wrote it: either worker, a cancellation, the
retention), it POSTs the signed notice. The id leaves the set only when the receiver answered 2xx
or the delivery was dead-lettered, so a notifier that stops or crashes loses no notice: the next
one (or several at once: each task is claimed with SET NX) finds it in the set. A receiver may get
a notice twice (a crash right after it answered); the body's task_id makes repeats harmless.

A failed delivery (no connection, timeout, an answer other than 2xx) is retried after
WEBHOOK_ESPERA_S, doubling up to WEBHOOK_BACKOFF_MAX_S, WEBHOOK_TENTATIVAS times in all; then the
notice goes to `<queue>:notificacoes_mortas` (GET /notificacoes/mortas). A URL the SSRF guard
refuses (its host now resolves to a private address, say) is dead-lettered at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
import uuid
from typing import Any

import httpx
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from relatorios.logs import setup_logging
from relatorios.protocol import (
    DEAD_LETTERS_KEPT,
    FINAL_STATES,
    NOTIFY_CLAIM_S,
    WEBHOOK_BACKOFF_MAX_S,
    F,
    Keys,
    Notice,
    Status,
    now_iso,
)
from relatorios.service import service_redis
from relatorios.settings import Settings, get_settings
from relatorios.webhooks import Allowlist, DeliveryFailed, UnsafeUrl, check_url, deliver

log = logging.getLogger("relatorios.notifier")
BATCH = 100


def backoff_s(base_s: float, attempt: int) -> float:
    """Seconds to wait after the `attempt`-th failed delivery."""
    return float(min(base_s * 2 ** (attempt - 1), WEBHOOK_BACKOFF_MAX_S))


def notice_body(task_id: str, fields: dict[str, str], base_url: str) -> bytes:
    """The JSON a receiver gets: the task's outcome, and where to download its file."""
    status = fields.get(F.STATUS, "")
    done = status == Status.DONE
    body = {
        Notice.TASK_ID: task_id,
        Notice.STATUS: status,
        Notice.TYPE: fields.get(F.TYPE, ""),
        Notice.FILE: fields.get(F.FILE, ""),
        Notice.ROWS: int(fields.get(F.ROWS) or 0),
        Notice.BYTES: int(fields.get(F.BYTES) or 0),
        Notice.DOWNLOAD_URL: f"{base_url}/relatorios/{task_id}/download" if done else None,
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


class Notifier:
    """Delivers the due notices of one queue; `run_once` is one pass, `run` loops."""

    def __init__(self, client: aioredis.Redis, settings: Settings, http: httpx.AsyncClient) -> None:
        self.redis = client
        self.settings = settings
        self.keys = Keys(settings.queue_name)
        self.http = http
        self.allowed = Allowlist.parse(settings.webhook_allowed_hosts)
        self.id = uuid.uuid4().hex
        self._secret = settings.webhook_secret

    async def secret(self, fields: dict[str, str]) -> str:
        """The secret that signs the notice of the task whose hash is `fields`: WEBHOOK_SEGREDO,
        or the deployment's secret kept in Redis (made once, SET NX). One per deployment until
        API keys exist; then the task's key's own secret."""
        if not self._secret:
            await self.redis.set(self.keys.webhook_secret, secrets.token_hex(32), nx=True)
            self._secret = str(await self.redis.get(self.keys.webhook_secret))
        return self._secret

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.run_once()
            except RedisError as exc:
                log.warning("Notificador: Redis indisponível (%s)", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.notifier_tick_s)

    async def run_once(self) -> int:
        """Handle every notice due now; returns how many were delivered."""
        now_ms = int(time.time() * 1000)
        due = await self.redis.zrangebyscore(self.keys.notify, "-inf", now_ms, 0, BATCH)
        results = await asyncio.gather(*(self.handle(str(task_id)) for task_id in due))
        return sum(results)

    async def handle(self, task_id: str) -> bool:
        claim = self.keys.notify_claim(task_id)
        if not await self.redis.set(claim, self.id, nx=True, ex=NOTIFY_CLAIM_S):
            return False  # another notifier has it
        try:
            return await self._handle(task_id)
        finally:
            await self.redis.delete(claim)

    async def _handle(self, task_id: str) -> bool:
        raw = await self.redis.hgetall(self.keys.task(task_id))
        fields = {str(k): str(v) for k, v in raw.items()}
        if not fields:  # the record is gone (retention): nothing left to tell
            await self._forget(task_id)
            return False
        if fields.get(F.STATUS) not in FINAL_STATES:
            await self._look_again(task_id, self.settings.notifier_tick_s)
            return False
        url = fields.get(F.NOTIFY_URL, "")
        body = notice_body(task_id, fields, self.settings.base_url)
        try:
            target = await asyncio.to_thread(check_url, url, self.allowed)
            timeout_s = self.settings.webhook_timeout_s
            await deliver(self.http, target, body, await self.secret(fields), timeout_s)
        except UnsafeUrl as exc:
            await self._dead(task_id, url, str(exc), 0)
            return False
        except DeliveryFailed as exc:
            await self._failed(task_id, url, str(exc))
            return False
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(self.keys.notify, task_id)
            pipe.hdel(self.keys.notify_attempts, task_id)
            pipe.hset(self.keys.task(task_id), F.NOTIFIED, now_iso())
            await pipe.execute()
        log.info("Aviso entregue (task_id=%s)", task_id, extra={"task_id": task_id})
        return True

    async def _look_again(self, task_id: str, after_s: float) -> None:
        when = int((time.time() + after_s) * 1000)
        await self.redis.zadd(self.keys.notify, {task_id: when}, xx=True)

    async def _failed(self, task_id: str, url: str, reason: str) -> None:
        attempts = int(await self.redis.hincrby(self.keys.notify_attempts, task_id, 1))
        if attempts >= self.settings.webhook_attempts:
            await self._dead(task_id, url, reason, attempts)
            return
        wait = backoff_s(self.settings.webhook_backoff_s, attempts)
        log.warning(
            "Aviso falhou (%s), tentativa %d; nova tentativa em %.1fs (task_id=%s)",
            reason,
            attempts,
            wait,
            task_id,
            extra={"task_id": task_id},
        )
        await self._look_again(task_id, wait)

    async def _dead(self, task_id: str, url: str, reason: str, attempts: int) -> None:
        entry: dict[str, Any] = {
            Notice.TASK_ID: task_id,
            Notice.URL: url,
            Notice.REASON: reason,
            Notice.ATTEMPTS: attempts,
            Notice.AT: now_iso(),
        }
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.lpush(self.keys.notify_dead, json.dumps(entry, ensure_ascii=False))
            pipe.ltrim(self.keys.notify_dead, 0, DEAD_LETTERS_KEPT - 1)
            pipe.zrem(self.keys.notify, task_id)
            pipe.hdel(self.keys.notify_attempts, task_id)
            await pipe.execute()
        log.error(
            "Aviso descartado após %d tentativas: %s (task_id=%s)",
            attempts,
            reason,
            task_id,
            extra={"task_id": task_id},
        )

    async def _forget(self, task_id: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(self.keys.notify, task_id)
            pipe.hdel(self.keys.notify_attempts, task_id)
            await pipe.execute()


async def serve(settings: Settings) -> None:
    # Redirects are never followed (deliver says so too); no proxy from the environment: the
    # checked address is the one connected to.
    async with (
        service_redis(settings) as (client, stop),
        httpx.AsyncClient(follow_redirects=False, trust_env=False) as http,
    ):
        notifier = Notifier(client, settings, http)
        log.info("Notificador iniciado (fila %s)", settings.queue_name)
        await notifier.run(stop)
    log.info("Notificador parado")


def main() -> int:
    settings = get_settings()
    setup_logging(settings.log_format, prefix="Notificador: ")
    # httpx logs every request with its URL, and a webhook URL may carry a token: not in logs.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
