"""One report, from the catalog to EXPORT_DIR/<arquivo>: the catalog's SQL run by a source whose
rows a sink writes into `<arquivo>.part`, renamed into place only when complete. Memory stays
flat whatever the size of the report: rows pass in batches and are forgotten.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Callable
from datetime import date
from pathlib import Path

from relatorios.catalog import Param, Report
from relatorios.protocol import ERROR_TEXTS, ErrorCode, ParamValue, bind_value, is_number
from relatorios.worker.report import Interrupted, Progress, ReportError, StopCheck
from relatorios.worker.sink_csv import CsvSink
from relatorios.worker.source import Source

DISK_FULL_ERRNO = {errno.ENOSPC, errno.EDQUOT}
TRANSIENT_ERRNO = DISK_FULL_ERRNO | {errno.EIO, errno.EAGAIN}


def write_error(part: Path, exc: OSError) -> ReportError:
    code = ErrorCode.DISK_FULL if exc.errno in DISK_FULL_ERRNO else ErrorCode.WRITE_FAILED
    return ReportError(
        code,
        f"{ERROR_TEXTS[code]} ({part.name})",
        transient=exc.errno in TRANSIENT_ERRNO,
        detail=exc.strerror or str(exc),
    )


def resolve_params(report: Report, params: dict[str, ParamValue]) -> dict[str, ParamValue]:
    """Every declared parameter gets a value (the message's, or its default when optional), and
    the message may not carry one the report does not declare: parametro_invalido, naming it."""
    declared = {p.name: p for p in report.params}
    missing = sorted(p.name for p in report.params if p.required and p.name not in params)
    if missing:
        raise ReportError(ErrorCode.INVALID_PARAMETER, f"parâmetro ausente: {missing[0]}")
    if unknown := sorted(params.keys() - declared.keys()):
        raise ReportError(ErrorCode.INVALID_PARAMETER, f"parâmetro desconhecido: {unknown[0]}")
    for name, value in params.items():
        why = value_problem(declared[name], value)
        if why:
            raise ReportError(ErrorCode.INVALID_PARAMETER, f"parâmetro inválido: {name} ({why})")
    return {
        name: bind_value(params[name]) if name in params else param.default
        for name, param in declared.items()
    }


DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")


def value_problem(param: Param, value: ParamValue) -> str | None:
    """Why `value` is not one the API would have accepted for an `integer` or `date` `param`
    (its kind, min and max): a message pushed by hand cannot ask for more than the API allows.
    Text and null bind as they are (docs/protocol.md). app/export.c says the same, in the same
    words."""
    if value is None or param.kind not in ("integer", "date"):
        return None
    if param.kind == "integer":
        if not is_number(value) or not float(value).is_integer():
            return "deve ser um número inteiro"
        number = int(value)
        if (param.minimum is not None and number < param.minimum) or (
            param.maximum is not None and number > param.maximum
        ):
            return f"fora do intervalo [{_bound(param.minimum)}, {_bound(param.maximum)}]"
        return None
    if not isinstance(value, str) or not _is_date(value):
        return "deve ser uma data AAAA-MM-DD"
    return None


def _bound(limit: int | None) -> str:
    return "-" if limit is None else str(limit)


def _is_date(text: str) -> bool:
    if not DATE_RE.match(text):
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def export(
    report: Report,
    params: dict[str, ParamValue],
    open_source: Callable[[StopCheck], Source],
    target: Path,
    progress: Progress,
    progress_every: int,
    stop: StopCheck,
    written: Progress | None = None,
) -> tuple[int, int]:
    """Write the report's rows to `target` atomically. Returns (rows, bytes).

    `written` is called after every batch with the rows and bytes so far (the stall clock and the
    task's limits; it may raise ReportError). Raises ReportError or Interrupted; in every failure
    the `.part` file is removed.
    """
    source = open_source(stop)
    part = target.with_name(target.name + ".part")
    try:
        source.run(report.sql_for(source.name), params)
        # A leftover of an interrupted attempt, or anything planted there (a symlink too), is
        # removed, never followed; CsvSink then creates the .part with O_EXCL | O_NOFOLLOW.
        try:
            part.unlink(missing_ok=True)
        except OSError as exc:
            raise write_error(part, exc) from None
        rows, size = _write(source, part, progress, progress_every, written)
        os.replace(part, target)
        return rows, size
    except ReportError:
        part.unlink(missing_ok=True)
        if source.stopped:
            raise Interrupted(source.stopped) from None
        raise
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    finally:
        source.close()


def _write(
    source: Source, part: Path, progress: Progress, every: int, written: Progress | None
) -> tuple[int, int]:
    rows = 0
    next_report = every
    try:
        sink = CsvSink(part)
        try:
            sink.header(source.columns)
            for batch in source.batches():
                sink.rows(batch)
                rows += len(batch)
                if written is not None:
                    written(rows, sink.tell())
                if rows >= next_report:
                    progress(rows, sink.tell())
                    next_report = rows + every
            size = sink.tell()
        finally:
            sink.close()
    except OSError as exc:
        raise write_error(part, exc) from None
    return rows, size
