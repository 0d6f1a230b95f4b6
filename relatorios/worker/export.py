"""One report, from the catalog to EXPORT_DIR/<arquivo>: the catalog's SQL run by a source whose
rows a sink writes into `<arquivo>.part`, renamed into place only when complete. Memory stays
flat whatever the size of the report: rows pass in batches and are forgotten.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

from relatorios.catalog import Report
from relatorios.protocol import ERROR_TEXTS, ErrorCode, ParamValue, bind_value
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
    return {
        name: bind_value(params[name]) if name in params else param.default
        for name, param in declared.items()
    }


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
