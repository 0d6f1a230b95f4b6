"""Concurrent requests share Redis round trips, and each still gets its own reply (real Redis)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError, ResponseError

from relatorios.batching import Batcher

Scenario = Callable[[Batcher, aioredis.Redis], Awaitable[None]]


def run(redis_url: str, scenario: Scenario) -> None:
    async def main() -> None:
        client = aioredis.Redis.from_url(redis_url, decode_responses=True)
        try:
            await scenario(Batcher(client), client)
        finally:
            await client.aclose()

    asyncio.run(main())


def test_concurrent_calls_share_round_trips_and_get_their_own_replies(
    redis_url: str, queue_name: str
) -> None:
    async def scenario(batcher: Batcher, client: aioredis.Redis) -> None:
        replies = await asyncio.gather(
            *(batcher.call(lambda pipe, i=i: pipe.rpush(queue_name, i)) for i in range(300))
        )
        assert sorted(replies) == list(range(1, 301)), "each caller gets its own LPUSH reply"
        assert await client.lrange(queue_name, 0, -1) == [str(i) for i in range(300)]
        assert batcher.round_trips < 300 / 10, "300 concurrent calls in a few round trips"

    run(redis_url, scenario)


def test_a_lone_call_is_sent_at_once(redis_url: str, queue_name: str) -> None:
    async def scenario(batcher: Batcher, client: aioredis.Redis) -> None:
        for i in range(5):
            assert await batcher.call(lambda pipe: pipe.rpush(queue_name, "x")) == i + 1
        assert batcher.round_trips == 5

    run(redis_url, scenario)


def test_one_failing_command_fails_only_its_caller(redis_url: str, queue_name: str) -> None:
    async def scenario(batcher: Batcher, client: aioredis.Redis) -> None:
        await client.set(f"{queue_name}:texto", "not a list")
        good, bad = await asyncio.gather(
            batcher.call(lambda pipe: pipe.rpush(queue_name, "a")),
            batcher.call(lambda pipe: pipe.rpush(f"{queue_name}:texto", "b")),
            return_exceptions=True,
        )
        assert good == 1
        assert isinstance(bad, ResponseError) and "WRONGTYPE" in str(bad)

    run(redis_url, scenario)


def test_a_lost_connection_reaches_every_caller_of_the_batch(redis_url: str) -> None:
    async def scenario(batcher: Batcher, client: aioredis.Redis) -> None:
        nowhere = aioredis.Redis(port=1, socket_connect_timeout=1)  # nothing listens there
        dead = Batcher(nowhere)
        results = await asyncio.gather(
            *(dead.call(lambda pipe: pipe.ping()) for _ in range(3)), return_exceptions=True
        )
        await nowhere.aclose()
        assert all(isinstance(r, ConnectionError) for r in results)

    run(redis_url, scenario)
