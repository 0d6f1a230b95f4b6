"""Response models of the API (the OpenAPI schema that clients and schemathesis check)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from relatorios.catalog import Report


class Accepted(BaseModel):
    task_id: str = Field(description="UUID da tarefa")
    status: str = Field(description="sempre 'na_fila' na criação")
    tipo_relatorio: str
    parametros: dict[str, Any]
    arquivo: str = Field(description="nome do CSV que será gerado em export/")
    criado_em: str
    status_url: str
    download_url: str


class TaskStatus(BaseModel):
    task_id: str
    status: str = Field(
        description="na_fila, processando, concluido, falhou, cancelado ou expirado"
    )
    tipo_relatorio: str
    parametros: dict[str, Any]
    arquivo: str
    linhas: int = Field(description="linhas de dados escritas até agora")
    bytes: int = Field(description="bytes do CSV escritos até agora")
    tentativas: int = Field(description="tentativas iniciadas (falhas temporárias são repetidas)")
    criado_em: str | None
    iniciado_em: str | None
    concluido_em: str | None
    proxima_tentativa_em: str | None = Field(description="quando a próxima tentativa começa")
    cancelado_em: str | None
    expirado_em: str | None
    erro: str | None
    worker: str | None
    status_url: str
    download_url: str | None = Field(description="presente quando concluído")


class TaskPage(BaseModel):
    total: int
    limite: int
    offset: int
    tarefas: list[TaskStatus]


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


class ReportInfo(BaseModel):
    tipo: str
    titulo: str
    descricao: str
    parametros: list[ParamInfo]

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
