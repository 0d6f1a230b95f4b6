"""One report, from the catalog to EXPORT_DIR/<arquivo>: the catalog's SQL run by a source whose
rows a sink writes into `<arquivo>.part`, renamed into place only when complete. Memory stays
flat whatever the size of the report: rows pass in batches and are forgotten.
"""

from __future__ import annotations

import errno
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Protocol

from relatorios.catalog import Param, Report
from relatorios.protocol import (
    COMPRESSION_GZIP,
    DEFAULT_COMPRESSION,
    DEFAULT_FORMAT,
    ERROR_TEXTS,
    FORMAT_CSV_EXCEL,
    FORMAT_XLSX,
    WATCH_EVERY_S,
    XLSX_MAX_SHEET_ROWS,
    ErrorCode,
    ParamValue,
    bind_value,
    is_number,
    output_problem,
)
from relatorios.worker.report import Interrupted, Progress, ReportError, StopCheck
from relatorios.worker.sink_csv import CsvSink
from relatorios.worker.source import Source

DISK_FULL_ERRNO = {errno.ENOSPC, errno.EDQUOT}
TRANSIENT_ERRNO = DISK_FULL_ERRNO | {errno.EIO, errno.EAGAIN}


@dataclass(frozen=True)
class Output:
    """The file a task asks for (message) and how the settings say to write it."""

    formato: str = DEFAULT_FORMAT
    compressao: str = DEFAULT_COMPRESSION
    neutralise: bool = True  # NEUTRALIZAR_FORMULAS
    sheet_rows: int = XLSX_MAX_SHEET_ROWS  # XLSX_LINHAS_POR_ABA


class Sink(Protocol):
    def header(self, names: list[str], types: list[str | None]) -> None: ...

    def rows(self, batch: list[Any]) -> None: ...

    def tell(self) -> int: ...

    def close(self) -> None: ...


def check_output(output: Output, file: str) -> None:
    """formato_nao_suportado when this worker cannot write `file` as asked."""
    problem = output_problem(output.formato, output.compressao, file)
    if problem:
        raise ReportError(
            ErrorCode.UNSUPPORTED_FORMAT, f"{ERROR_TEXTS[ErrorCode.UNSUPPORTED_FORMAT]}: {problem}"
        )


def open_sink(part: Path, output: Output) -> Sink:
    if output.formato == FORMAT_XLSX:
        from relatorios.worker.sink_xlsx import XlsxSink

        return XlsxSink(part, neutralise=output.neutralise, sheet_rows=output.sheet_rows)
    return CsvSink(
        part,
        excel=output.formato == FORMAT_CSV_EXCEL,
        gzip_=output.compressao == COMPRESSION_GZIP,
        neutralise=output.neutralise,
    )


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
    output: Output = Output(),
    written: Progress | None = None,
) -> tuple[int, int]:
    """Write the report's rows to `target` atomically. Returns (rows, bytes of the file).

    `written` is called after every batch with the rows and bytes so far (the stall clock and the
    task's limits; it may raise ReportError). Raises ReportError or Interrupted; in every failure
    the `.part` file is removed.
    """
    check_output(output, target.name)
    source = open_source(stop)
    part = target.with_name(target.name + ".part")
    try:
        source.run(report.sql_for(source.name), params)
        # A leftover of an interrupted attempt, or anything planted there (a symlink too), is
        # removed, never followed; the sink then creates the .part with O_EXCL | O_NOFOLLOW.
        try:
            part.unlink(missing_ok=True)
        except OSError as exc:
            raise write_error(part, exc) from None
        types = [report.column_type(name) for name in source.columns]
        rows, size = _write(source, types, part, output, progress, progress_every, stop, written)
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


def close_beating(sink: Sink, output: Output, stop: StopCheck) -> None:
    """Close the sink. An xlsx workbook is assembled when it closes (every sheet zipped), seconds
    for a big report: that runs on a thread while this one calls `stop` (the heartbeat) every
    WATCH_EVERY_S. A close cannot be interrupted; a cancellation is seen at the final state."""
    if output.formato != FORMAT_XLSX:
        sink.close()
        return
    failure: list[BaseException] = []

    def close() -> None:
        try:
            sink.close()
        except BaseException as exc:  # re-raised on the caller's thread
            failure.append(exc)

    closer = threading.Thread(target=close, name="xlsx-close")
    closer.start()
    while closer.is_alive():
        closer.join(WATCH_EVERY_S)
        stop()
    if failure:
        raise failure[0]


def _write(
    source: Source,
    types: list[str | None],
    part: Path,
    output: Output,
    progress: Progress,
    every: int,
    stop: StopCheck,
    written: Progress | None = None,
) -> tuple[int, int]:
    rows = 0
    next_report = every
    try:
        sink = open_sink(part, output)
        try:
            sink.header(source.columns, types)
            for batch in source.batches():
                sink.rows(batch)
                rows += len(batch)
                if written is not None:
                    written(rows, sink.tell())
                if rows >= next_report:
                    progress(rows, sink.tell())
                    next_report = rows + every
        finally:
            close_beating(sink, output, stop)
        size = part.stat().st_size
    except OSError as exc:
        raise write_error(part, exc) from None
    return rows, size
