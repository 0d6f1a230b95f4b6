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
