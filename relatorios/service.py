"""What a background service of the API's side (the scheduler, the notifier) runs with."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis

from relatorios.settings import Settings


@asynccontextmanager
async def service_redis(settings: Settings) -> AsyncIterator[tuple[aioredis.Redis, asyncio.Event]]:
    """A Redis client, closed on the way out, and an event that SIGTERM or SIGINT sets: the
    service's loop runs until it is set."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    client = aioredis.Redis.from_url(
        settings.redis_url, decode_responses=True, socket_connect_timeout=2, socket_timeout=5
    )
    try:
        yield client, stop
    finally:
        await client.aclose()
