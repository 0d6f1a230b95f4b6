"""Pydantic request models, built once from the report catalog: one model per report type.

The body of `POST /gerar-relatorio` is a union discriminated by `tipo_relatorio`, so an unknown
type, a missing, extra or ill-typed parameter is rejected by validation with a message that names
the problem (and, for the type and the department, the valid choices) before anything is enqueued.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    create_model,
    model_validator,
)

from relatorios.catalog import Param, Report
from relatorios.protocol import (
    COMPRESSION_GZIP,
    COMPRESSIONS,
    DEFAULT_COMPRESSION,
    DEFAULT_FORMAT,
    FORMATS,
    GZIP_FORMATS,
    MAX_PARAM_TEXT,
    SOURCE_POSTGRESQL,
    M,
    file_extension,
    text_problem,
)
from relatorios.settings import Settings
from relatorios.sqlite_ro import connect_readonly

EXAMPLES = [
    {M.TYPE: "GASTOS_POR_DEPARTAMENTO", M.PARAMS: {"departamento": "Engenharia de Software"}},
    {M.TYPE: "PAGAMENTOS_PENDENTES", M.PARAMS: {}},
]


def _travels(value: str) -> str:
    problem = text_problem(value)
    if problem:
        raise ValueError(problem)
    return value


Text = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_PARAM_TEXT), AfterValidator(_travels)
]


DEPARTMENTS_SQL = "SELECT nome FROM departamentos ORDER BY nome"
# Ordered as SQLite orders them (byte order), whatever the PostgreSQL database's collation.
PG_DEPARTMENTS_SQL = 'SELECT nome FROM departamentos ORDER BY nome COLLATE "C"'


def departments_of(settings: Settings) -> list[str]:
    """The departments of the configured database (SQLite or PostgreSQL), or [] when it cannot
    be read now (the workers report that, per task)."""
    if settings.source == SOURCE_POSTGRESQL:
        return pg_department_names(settings.database_url)
    return department_names(settings.db_path)


def pg_department_names(url: str) -> list[str]:
    import psycopg

    from relatorios.postgres import connect_readonly

    try:
        with connect_readonly(url) as conn:
            return [str(row[0]) for row in conn.execute(PG_DEPARTMENTS_SQL)]
    except psycopg.Error:
        return []


def department_names(db_path: Path) -> list[str]:
    """The departments of the database, or [] when it does not exist yet (checked by the worker)."""
    if not db_path.is_file():
        return []
    try:
        with closing(connect_readonly(db_path)) as conn:
            return [row[0] for row in conn.execute(DEPARTMENTS_SQL)]
    except sqlite3.Error:
        return []


def _json_number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("deve ser um número inteiro")
    return value


def _iso_date_text(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError("deve ser uma data no formato AAAA-MM-DD")
    return value


def _field_type(param: Param, departments: list[str]) -> Any:
    if param.kind == "integer":
        # A JSON number (2025 or 2025.0, as JSON Schema allows), never a string like "2025".
        return Annotated[int, BeforeValidator(_json_number)]
    if param.kind == "date":
        # Only an ISO string (JSON has no date type), never a number read as a Unix timestamp.
        return Annotated[dt.date, BeforeValidator(_iso_date_text)]
    if param.kind == "department" and departments:
        return Literal[tuple(departments)]
    return Text


def params_model(report: Report, departments: list[str]) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for param in report.params:
        default = ... if param.required else param.default
        fields[param.name] = (
            _field_type(param, departments),
            Field(default, description=param.label, ge=param.minimum, le=param.maximum),
        )
    return create_model(
        f"Parametros_{report.type}",
        __config__=ConfigDict(extra="forbid"),
        **fields,
    )


Formato = Literal[FORMATS]  # type: ignore[valid-type]
Compressao = Literal[COMPRESSIONS]  # type: ignore[valid-type]


# The file a request asks for (docs/protocol.md, "Formats"), with its defaults.
OUTPUT_FIELDS: dict[str, Any] = {
    M.FORMAT: (Formato, Field(DEFAULT_FORMAT, description="csv, csv_excel ou xlsx")),
    M.COMPRESSION: (
        Compressao,
        Field(DEFAULT_COMPRESSION, description="nenhuma ou gzip (só para os formatos CSV)"),
    ),
}


def _output_exists(request: Any) -> Any:
    """xlsx with gzip does not exist: 422, in Portuguese."""
    formato, compressao = getattr(request, M.FORMAT), getattr(request, M.COMPRESSION)
    try:
        file_extension(formato, compressao)
    except ValueError:
        raise ValueError(f"o formato {formato} não aceita compressão {compressao}") from None
    return request


# The same rule in the OpenAPI schema, so that clients (and schemathesis) know it.
NO_XLSX_GZIP: dict[str, Any] = {
    "not": {
        "properties": {
            M.FORMAT: {"enum": [f for f in FORMATS if f not in GZIP_FORMATS]},
            M.COMPRESSION: {"const": COMPRESSION_GZIP},
        },
        "required": [M.FORMAT, M.COMPRESSION],
    }
}
OUTPUT_VALIDATOR: Any = model_validator(mode="after")(_output_exists)


def request_model(report: Report, departments: list[str]) -> type[BaseModel]:
    params = params_model(report, departments)
    required = any(p.required for p in report.params)
    default: Any = ... if required else Field(default_factory=params)
    return create_model(
        f"Pedido_{report.type}",
        __config__=ConfigDict(extra="forbid", title=report.title, json_schema_extra=NO_XLSX_GZIP),
        __doc__=report.description,
        __validators__={"output_exists": OUTPUT_VALIDATOR},
        tipo_relatorio=(Literal[report.type], ...),  # type: ignore[arg-type]
        parametros=(params, default),
        **OUTPUT_FIELDS,
    )


def request_union(catalog: dict[str, Report], departments: list[str]) -> Any:
    """The annotated type of the request body: one model per type, tagged by `tipo_relatorio`."""
    models = tuple(request_model(r, departments) for r in catalog.values())
    return Annotated[
        Union[models],  # noqa: UP007 - a runtime tuple of models needs typing.Union
        Field(discriminator=M.TYPE),
    ]
