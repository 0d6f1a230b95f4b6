"""The ingest benchmark's ceiling: a FastAPI endpoint that answers 202 and does nothing else.

Same framework, same server and settings as the real API, but no validation and no Redis: the
fastest `POST /gerar-relatorio` this stack can serve on this machine.
"""

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

app = FastAPI()


@app.post("/gerar-relatorio", status_code=202)
async def gerar_relatorio(request: Request) -> JSONResponse:
    await request.body()  # read the body, as the real endpoint must
    return JSONResponse({"status": "na_fila"}, status_code=202)
