"""The ingest benchmark's ceiling: a FastAPI endpoint that answers 202 and does nothing else.

Same framework, same server and settings as the real API (`uvicorn --factory`), but no
validation and no Redis: the fastest `POST /gerar-relatorio` this stack can serve on this machine.
"""

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from relatorios.protocol import Status


async def gerar_relatorio(request: Request) -> JSONResponse:
    await request.body()  # read the body, as the real endpoint must
    return JSONResponse({"status": Status.QUEUED}, status_code=202)


def create_app() -> FastAPI:
    app = FastAPI()
    app.add_api_route("/gerar-relatorio", gerar_relatorio, methods=["POST"], status_code=202)
    return app


def create_floor_app() -> FastAPI:
    """The floor: the same bare endpoint plus the least any queue needs, one redis-py `MULTI`
    (HSET of the task, LPUSH of its id) per request on a pooled asyncio client."""
    import os
    import uuid

    import redis.asyncio as aioredis

    queue = os.environ.get("QUEUE_NAME", "fila_relatorios")
    client = aioredis.Redis(
        connection_pool=aioredis.BlockingConnectionPool.from_url(
            os.environ["REDIS_URL"], max_connections=100, timeout=5
        )
    )

    async def enqueue(request: Request) -> JSONResponse:
        body = await request.body()
        task_id = str(uuid.uuid4())
        async with client.pipeline(transaction=True) as pipe:
            pipe.hset(f"tarefa:{task_id}", mapping={"status": Status.QUEUED, "pedido": body})
            pipe.lpush(queue, task_id)
            await pipe.execute()
        return JSONResponse({"task_id": task_id, "status": Status.QUEUED}, status_code=202)

    app = FastAPI()
    app.add_api_route("/gerar-relatorio", enqueue, methods=["POST"], status_code=202)
    return app
