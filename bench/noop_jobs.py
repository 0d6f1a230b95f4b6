"""No-op jobs for the peers of the throughput benchmark (arq and rq), on the run's Redis.

arq bench.noop_jobs.ArqSettings          (REDIS_URL from the environment)
rq worker -w rq.worker.SimpleWorker -u $REDIS_URL bench
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from arq.connections import RedisSettings

RQ_QUEUE = "bench"


def noop() -> None:
    """The rq job: does nothing, so only the queue's own cost is measured."""


async def arq_noop(ctx: dict[str, Any]) -> None:
    """The arq job: does nothing."""


class ArqSettings:
    functions: ClassVar[list[Any]] = [arq_noop]
    redis_settings = RedisSettings.from_dsn(os.environ.get("REDIS_URL", "redis://localhost:6379"))
