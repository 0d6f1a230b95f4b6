"""Response models of the API (the OpenAPI schema that clients and schemathesis check).

A task's fields are those of protocol.TASK_FIELDS: the models that show a task are built from
that tuple, so a field the protocol adds appears in every response, with its description.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from pydantic import BaseModel, Field, create_model

from relatorios.catalog import Report
from relatorios.protocol import (
    COMPRESSIONS,
    FINAL_STATES,
    FORMATS,
    GZIP_FORMATS,
    STATUS_LABELS,
    TASK_FIELDS,
    F,
    Status,
)


def task_fields(names: Collection[str] | None = None, *, present: bool = False) -> dict[str, Any]:
    """Field definitions (for create_model) of TASK_FIELDS, all of them or those in `names`.

    A field the protocol does not always set is nullable, unless `present` says it is there.
    """
    return {
        f.name: (f.kind if f.always or present else f.kind | None, Field(description=f.doc))
        for f in TASK_FIELDS
        if names is None or f.name in names
    }


TASK_ID = (str, Field(description="UUID da tarefa"))
STATUS_URL = (str, Field(description="onde acompanhar a tarefa (GET)"))

# 202 of POST /gerar-relatorio: the new task's fields (those of its queue message) and its URLs.
Accepted = create_model(
    "Accepted",
    __doc__="A tarefa criada, já na fila.",
    task_id=TASK_ID,
    **task_fields(
        (F.STATUS, F.TYPE, F.PARAMS, F.FILE, F.FORMAT, F.COMPRESSION, F.CREATED), present=True
    ),
    status_url=STATUS_URL,
    download_url=(str, Field(description="onde baixar o arquivo quando a tarefa for concluída")),
)

TaskStatus = create_model(
    "TaskStatus",
    __doc__="Uma tarefa: os campos do protocolo (docs/protocol.md) e seus endereços.",
    task_id=TASK_ID,
    **task_fields(),
    status_url=STATUS_URL,
    download_url=(str | None, Field(description="presente quando concluída")),
)


class TaskPage(BaseModel):
    total: int
    limite: int
    offset: int
    tarefas: list[TaskStatus]


class StateInfo(BaseModel):
    """Um estado de tarefa (Status de relatorios/protocol.py), como páginas e clientes o mostram."""

    status: Status = Field(description="o valor do campo `status` de uma tarefa")
    nome: str = Field(description="o nome do estado no protocolo: QUEUED, RUNNING, DONE…")
    rotulo: str = Field(description="como mostrar o estado a pessoas")
    final: bool = Field(description="a tarefa terminou: não roda mais e não pode ser cancelada")

    @classmethod
    def all(cls) -> list[StateInfo]:
        return [
            cls(status=s, nome=s.name, rotulo=STATUS_LABELS[s], final=s in FINAL_STATES)
            for s in Status
        ]


class DeadLetter(BaseModel):
    task_id: str | None = None
    motivo: str = ""
    mensagem: str = Field("", description="a mensagem original (até 1.024 bytes)")
    tamanho: int = 0
    em: str = ""
    worker: str = ""


class DeadLetterPage(BaseModel):
    total: int
    limite: int
    offset: int
    mortas: list[DeadLetter]


class ParamInfo(BaseModel):
    nome: str
    tipo: str = Field(description="text, integer, date ou department")
    obrigatorio: bool
    rotulo: str
    padrao: str | int | None = None
    minimo: int | None = None
    maximo: int | None = None
    opcoes: list[str] | None = Field(None, description="valores válidos, quando a lista é fechada")


FORMAT_LABELS = {
    "csv": "CSV (vírgula, ponto decimal, UTF-8 sem BOM)",
    "csv_excel": "CSV para o Excel (ponto e vírgula, vírgula decimal, UTF-8 com BOM)",
    "xlsx": "Planilha do Excel (.xlsx)",
}


class FormatInfo(BaseModel):
    """Um formato de arquivo que um pedido pode escolher (campo `formato`)."""

    formato: str
    rotulo: str
    compressoes: list[str] = Field(description="valores aceitos no campo `compressao`")

    @classmethod
    def all(cls) -> list[FormatInfo]:
        return [
            cls(
                formato=f,
                rotulo=FORMAT_LABELS[f],
                compressoes=list(COMPRESSIONS) if f in GZIP_FORMATS else [COMPRESSIONS[0]],
            )
            for f in FORMATS
        ]


class ReportInfo(BaseModel):
    tipo: str
    titulo: str
    descricao: str
    parametros: list[ParamInfo]
    formatos: list[FormatInfo] = Field(
        default_factory=FormatInfo.all, description="os formatos de arquivo do relatório"
    )

    @classmethod
    def of(cls, report: Report, departments: list[str]) -> ReportInfo:
        """A report of the catalog as GET /tipos-relatorio shows it (with the department list)."""
        params = [
            ParamInfo(
                nome=p.name,
                tipo=p.kind,
                obrigatorio=p.required,
                rotulo=p.label,
                padrao=p.default,
                minimo=p.minimum,
                maximo=p.maximum,
                opcoes=departments if p.kind == "department" and departments else None,
            )
            for p in report.params
        ]
        return cls(
            tipo=report.type, titulo=report.title, descricao=report.description, parametros=params
        )


class Problem(BaseModel):
    detail: str
    status: str | None = None


UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": Problem, "description": "Redis inacessível ou fila cheia: nada foi enfileirado"}
}

# Every route but /health and the page's: what a missing, wrong or spent key gets.
AUTH: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "sem chave de API, ou chave inválida ou revogada"},
    429: {"model": Problem, "description": "cota da chave esgotada (veja Retry-After)"},
}
ADMIN: dict[int | str, dict[str, Any]] = {
    **AUTH,
    403: {"model": Problem, "description": "exige uma chave de administrador"},
}
