"""The report catalog: one `<TYPE>.sql` file per report type in one folder read by every worker.

The format is docs/catalog.md: `-- @key value` header lines (`@title`, `@description`,
`@sources`, `@column name type`, `@param name kind [required|optional] [default=V] [min=N]
[max=N] "label"`) that the database ignores and the API and both workers read (the C worker
with app/catalog.c, the same way). Parameter kinds: `text`, `integer`, `date` (YYYY-MM-DD) and
`department` (text that must be the name of a department of the database). Every `:name` in
the SQL must have a `@param` line.

Sources and dialects: the SQL of `<TYPE>.sql` serves every source the report supports, unless
`<source>/<TYPE>.sql` exists beside it (e.g. `postgresql/GASTOS_POR_DEPARTAMENTO.sql`): then
that file's SQL serves that source. A report supports the sources its `@sources` line names; with
no such line, `sqlite` and every source that has a file of its own.
"""

from __future__ import annotations

import re
import shlex
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from relatorios.protocol import (
    COLUMN_TYPES,
    MAX_TASK_TIMEOUT_S,
    PARAM_NAME_RE,
    REPORT_TYPE_RE,
    SOURCE_SQLITE,
    SOURCES,
)
from relatorios.sql_params import SqlParamError, param_names

KINDS = ("text", "integer", "date", "department")


class CatalogError(Exception):
    """The catalog folder or one of its files is malformed (a deployment bug, not a user error)."""


@dataclass(frozen=True)
class Param:
    name: str
    kind: str
    label: str
    required: bool = True
    default: str | int | None = None
    minimum: int | None = None
    maximum: int | None = None


@dataclass(frozen=True)
class Report:
    type: str
    title: str
    description: str
    params: tuple[Param, ...]
    sql: str  # the SQL of <TYPE>.sql
    sources: tuple[str, ...] = (SOURCE_SQLITE,)
    dialects: tuple[tuple[str, str], ...] = ()  # (source, SQL of <source>/<TYPE>.sql)
    timeout_s: int | None = None  # `@timeout N`: its stall limit instead of TIMEOUT_TAREFA_S
    columns: tuple[tuple[str, str], ...] = ()  # (column name, type) of the @column lines

    def column_type(self, name: str) -> str | None:
        """The @column type of the result column `name`, or None (untyped)."""
        return dict(self.columns).get(name)

    def sql_for(self, source: str) -> str:
        """The SQL this report runs on `source` (one of `sources`)."""
        return dict(self.dialects).get(source, self.sql)


def load_catalog(folder: Path) -> dict[str, Report]:
    """Read every `*.sql` of `folder`, sorted by type. Raises CatalogError on a malformed file."""
    if not folder.is_dir():
        raise CatalogError(f"report catalog folder not found: {folder}")
    reports = [load_report(path) for path in sorted(folder.glob("*.sql"))]
    if not reports:
        raise CatalogError(f"report catalog folder has no .sql file: {folder}")
    return {r.type: r for r in reports}


def for_source(catalog: dict[str, Report], source: str) -> dict[str, Report]:
    """The reports of `catalog` that `source` can run."""
    return {name: r for name, r in catalog.items() if source in r.sources}


def load_report(path: Path) -> Report:
    """Read `path` (<TYPE>.sql) and its dialect files `<source>/<TYPE>.sql` beside it."""
    report_type = path.stem
    if not REPORT_TYPE_RE.match(report_type):
        raise CatalogError(f"{path.name}: file name must be the report type in UPPER_SNAKE_CASE")
    sql = path.read_text(encoding="utf-8")
    meta: dict[str, str] = {}
    params: list[Param] = []
    columns: list[tuple[str, str]] = []
    for line in sql.splitlines():
        match = re.match(r"--\s*@(\w+)\s+(.*)$", line.strip())
        if not match:
            continue
        key, value = match.groups()
        if key == "param":
            params.append(_parse_param(path.name, value))
        elif key == "column":
            columns.append(_parse_column(path.name, value))
        else:
            meta[key] = value.strip()
    dialects = tuple(
        (source, (path.parent / source / path.name).read_text(encoding="utf-8"))
        for source in SOURCES
        if (path.parent / source / path.name).is_file()
    )
    sources = _sources(path.name, meta.get("sources"), dialects)
    report = Report(
        type=report_type,
        title=meta.get("title", report_type),
        description=meta.get("description", ""),
        params=tuple(params),
        sql=sql,
        sources=sources,
        dialects=dialects,
        columns=tuple(columns),
        timeout_s=_timeout(path.name, meta.get("timeout")),
    )
    if len(columns) > MAX_COLUMN_LINES:
        raise CatalogError(f"{path.name}: more than {MAX_COLUMN_LINES} @column lines")
    for source in sources:
        where = path.name if source not in dict(dialects) else f"{source}/{path.name}"
        _check_params_match_sql(where, report.sql_for(source), params)
    if SOURCE_SQLITE in sources and not sqlite3.complete_statement(report.sql_for(SOURCE_SQLITE)):
        raise CatalogError(f"{path.name}: SQL is not one complete statement")
    return report


def _timeout(file: str, line: str | None) -> int | None:
    if line is None:
        return None
    if not re.fullmatch(r"[0-9]{1,5}", line) or int(line) > MAX_TASK_TIMEOUT_S:
        raise CatalogError(f"{file}: @timeout must be whole seconds, 0 to {MAX_TASK_TIMEOUT_S}")
    return int(line)


def _sources(file: str, line: str | None, dialects: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    if line is None:
        return (SOURCE_SQLITE, *(s for s, _ in dialects if s != SOURCE_SQLITE))
    named = line.split()
    unknown = [s for s in named if s not in SOURCES]
    if unknown or not named:
        raise CatalogError(f"{file}: @sources must name some of {list(SOURCES)}, got {line!r}")
    return tuple(s for s in SOURCES if s in named)


# The C reader's limits (app/catalog.h): @column lines per report, bytes of a column name.
MAX_COLUMN_LINES = 64
MAX_COLUMN_NAME = 127


def _parse_column(file: str, spec: str) -> tuple[str, str]:
    words = spec.split()
    if len(words) != 2 or words[1] not in COLUMN_TYPES or len(words[0].encode()) > MAX_COLUMN_NAME:
        raise CatalogError(
            f"{file}: bad @column line {spec!r} (name type, type one of {COLUMN_TYPES})"
        )
    return words[0], words[1]


def _parse_param(file: str, spec: str) -> Param:
    words = shlex.split(spec)
    if len(words) < 2 or not PARAM_NAME_RE.match(words[0]) or words[1] not in KINDS:
        raise CatalogError(f'{file}: bad @param line {spec!r} (name kind [options] "label")')
    name, kind, *rest = words
    options: dict[str, str] = {}
    label = name
    for word in rest:
        if word in ("required", "optional"):
            options[word] = "1"
        elif "=" in word:
            key, _, value = word.partition("=")
            options[key] = value
        else:
            label = word
    default: str | int | None = options.get("default")
    if default is not None and kind == "integer":
        default = int(default)
    return Param(
        name=name,
        kind=kind,
        label=label,
        required=default is None and "optional" not in options,
        default=default,
        minimum=int(options["min"]) if "min" in options else None,
        maximum=int(options["max"]) if "max" in options else None,
    )


def _check_params_match_sql(file: str, sql: str, params: list[Param]) -> None:
    try:
        in_sql = set(param_names(sql))
    except SqlParamError as exc:
        raise CatalogError(f"{file}: {exc}") from None
    declared = {p.name for p in params}
    if in_sql != declared:
        raise CatalogError(
            f"{file}: SQL parameters {sorted(in_sql)} differ from @param lines {sorted(declared)}"
        )
