"""Concurrent requests' Redis commands sent together: one round trip for many requests.

While one batch is on its way to Redis, the commands of requests that arrive meanwhile wait in
a list; when the answer comes back they all leave in the next batch. A lone request is sent at
once (no timer, no added latency); under load, batches grow by themselves to what arrived during
one round trip. Each caller still gets its own reply, and only after Redis has it: a request is
answered 202 exactly when its task is in Redis, as without batching.

Each call adds exactly one command (for example one EVALSHA of an atomic script): the batch is
a plain pipeline, not a transaction, so one command's error fails only its own caller.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline

MAX_BATCH = 512  # commands per round trip: bounds one batch's memory and Redis's time on it

AddCommand = Callable[[Pipeline], Any]


class Batcher:
    """`await batcher.call(lambda pipe: pipe.lpush(...))` → that command's reply."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._waiting: list[tuple[AddCommand, asyncio.Future[Any]]] = []
        self._sender: asyncio.Task[None] | None = None
        self.round_trips = 0  # how many batches went out (metrics and tests)

    async def call(self, add: AddCommand) -> Any:
        reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append((add, reply))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_while_waiting())
        return await reply

    async def _send_while_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
            await self._send(batch)

    async def _send(self, batch: list[tuple[AddCommand, asyncio.Future[Any]]]) -> None:
        self.round_trips += 1
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for add, _ in batch:
                    add(pipe)
                replies = await pipe.execute(raise_on_error=False)
        except Exception as exc:  # the connection failed: every caller of this batch learns it
            for _, reply in batch:
                if not reply.done():
                    reply.set_exception(exc)
            return
        for (_, reply), answer in zip(batch, replies, strict=True):
            if reply.done():  # its caller was cancelled; the command ran all the same
                continue
            if isinstance(answer, Exception):
                reply.set_exception(answer)
            else:
                reply.set_result(answer)
