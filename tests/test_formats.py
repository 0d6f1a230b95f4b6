"""The output formats of docs/protocol.md ("Formats"), as a user opening the file notices them,
for every worker: csv_excel (BOM, `;`, decimal comma), gzip (the very CSV bytes), xlsx (typed
cells, bold frozen header, autofilter, more sheets past the row limit), formulas neutralised, and
a format a worker cannot write refused with formato_nao_suportado instead of a wrong file.
Byte-for-byte agreement between the workers is tests/test_conformance.py's."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
from pathlib import Path

import openpyxl
import pytest
import redis

from relatorios.protocol import ErrorCode, Keys, file_name, new_task_id
from tests.conftest import WORKER_KINDS, WorkerEnv
from tests.helpers import StartWorker, push, wait_final

FORMULAS_SQL = """-- @title Fórmulas
-- @column valor decimal
-- @column dia date
SELECT '=1+1' AS texto, '-12.50' AS valor, '2025-01-31' AS dia, -3 AS inteiro
UNION ALL SELECT '@SUM(A1)', '7.25', '2024-02-29', 4
UNION ALL SELECT 'normal', 'x', '2023-02-30', NULL;
"""
# 5 data rows over sheets of 2 rows (header included): 1 data row per sheet.
SHEET_SQL = """-- @title Linhas
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5)
SELECT i AS numero, 'linha ' || i AS texto FROM n;
"""


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    folder = tmp_path / "catalog"
    folder.mkdir()
    (folder / "FORMULAS.sql").write_text(FORMULAS_SQL)
    (folder / "LINHAS.sql").write_text(SHEET_SQL)
    return folder


def run(
    client: redis.Redis, env: WorkerEnv, report: str, formato: str, compressao: str = "nenhuma"
) -> tuple[dict[str, str], Path]:
    message = push(client, env.queue, report, {}, formato, compressao)
    final = wait_final(client, env, message.task_id)
    return final, env.export_dir / message.file


@pytest.mark.parametrize("kind", WORKER_KINDS)
def test_every_format_of_a_real_report(
    kind: str, worker_env: WorkerEnv, start_worker: StartWorker, redis_client: redis.Redis
) -> None:
    """PAGAMENTOS_PENDENTES as csv, csv_excel, csv.gz and xlsx: the same rows in each."""
    start_worker(kind, worker_env)
    plain, plain_path = run(redis_client, worker_env, "PAGAMENTOS_PENDENTES", "csv")
    assert plain["status"] == "concluido", plain
    csv_bytes = plain_path.read_bytes()
    rows = int(plain["linhas"])
    assert rows > 0 and plain_path.suffix == ".csv"

    zipped, zipped_path = run(redis_client, worker_env, "PAGAMENTOS_PENDENTES", "csv", "gzip")
    assert zipped["status"] == "concluido", zipped
    assert zipped_path.name.endswith(".csv.gz")
    assert gzip.decompress(zipped_path.read_bytes()) == csv_bytes
    assert int(zipped["bytes"]) == zipped_path.stat().st_size < len(csv_bytes)
    assert zipped["formato"] == "csv" and zipped["compressao"] == "gzip"

    excel, excel_path = run(redis_client, worker_env, "PAGAMENTOS_PENDENTES", "csv_excel")
    assert excel["status"] == "concluido", excel
    data = excel_path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and b"\r\n" in data
    table = list(csv.reader(io.StringIO(data[3:].decode("utf-8"), newline=""), delimiter=";"))
    reference = list(csv.reader(io.StringIO(csv_bytes.decode("utf-8"), newline="")))
    assert len(table) == rows + 1 and table[0] == reference[0]
    column = table[0].index("valor")
    assert [r[column] for r in table[1:]] == [r[column].replace(".", ",") for r in reference[1:]]

    book, book_path = run(redis_client, worker_env, "PAGAMENTOS_PENDENTES", "xlsx")
    assert book["status"] == "concluido", book
    assert int(book["bytes"]) == book_path.stat().st_size and book["linhas"] == str(rows)
    sheet = openpyxl.load_workbook(book_path, read_only=True)["dados"]
    cells = list(sheet.iter_rows(values_only=True))
    assert [str(c) for c in cells[0]] == reference[0] and len(cells) == rows + 1
    values = [r[column] for r in cells[1:]]
    assert all(isinstance(v, float | int) for v in values), "valor cells are numbers"
    assert values == [float(r[column]) for r in reference[1:]]
    dates = [r[reference[0].index("data")] for r in cells[1:]]
    assert all(isinstance(d, dt.datetime) for d in dates), "data cells are dates"


@pytest.mark.parametrize("kind", WORKER_KINDS)
def test_formulas_are_neutralised_and_numbers_keep_their_sign(
    kind: str,
    worker_env: WorkerEnv,
    start_worker: StartWorker,
    redis_client: redis.Redis,
    catalog: Path,
) -> None:
    worker_env.catalog_dir = catalog
    start_worker(kind, worker_env)
    _, excel = run(redis_client, worker_env, "FORMULAS", "csv_excel")
    lines = excel.read_bytes()[3:].decode("utf-8").split("\r\n")
    assert lines[1:4] == ["'=1+1;-12,50;2025-01-31;-3", "'@SUM(A1);7,25;2024-02-29;4",
                          "normal;x;2023-02-30;"]  # fmt: skip
    _, plain = run(redis_client, worker_env, "FORMULAS", "csv")
    assert plain.read_bytes().split(b"\r\n")[1] == b"=1+1,-12.50,2025-01-31,-3", "csv unchanged"
    _, book = run(redis_client, worker_env, "FORMULAS", "xlsx")
    sheet = openpyxl.load_workbook(book)["dados"]
    assert [c.value for c in sheet[2]] == ["'=1+1", -12.5, dt.datetime(2025, 1, 31), -3]
    assert [c.value for c in sheet[3]] == ["'@SUM(A1)", 7.25, dt.datetime(2024, 2, 29), 4]
    assert [c.value for c in sheet[4]] == ["normal", "x", "2023-02-30", None]
    assert sheet[2][1].number_format == "#,##0.00" and sheet[2][2].number_format == "dd/mm/yyyy"
    assert all(c.font.b for c in sheet[1]), "bold header"
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref == "A1:D4"


@pytest.mark.parametrize("kind", WORKER_KINDS)
def test_neutralisation_can_be_turned_off(
    kind: str,
    worker_env: WorkerEnv,
    start_worker: StartWorker,
    redis_client: redis.Redis,
    catalog: Path,
) -> None:
    worker_env.catalog_dir = catalog
    worker_env.extra["NEUTRALIZAR_FORMULAS"] = "false"
    start_worker(kind, worker_env)
    _, excel = run(redis_client, worker_env, "FORMULAS", "csv_excel")
    assert excel.read_bytes()[3:].split(b"\r\n")[1].startswith(b"=1+1;")


@pytest.mark.parametrize("kind", WORKER_KINDS)
def test_rows_past_the_sheet_limit_continue_on_new_sheets(
    kind: str,
    worker_env: WorkerEnv,
    start_worker: StartWorker,
    redis_client: redis.Redis,
    catalog: Path,
) -> None:
    """XLSX_LINHAS_POR_ABA (a test-only setting) lowers Excel's 1,048,576 rows per sheet to 3."""
    worker_env.catalog_dir = catalog
    worker_env.extra["XLSX_LINHAS_POR_ABA"] = "3"
    start_worker(kind, worker_env)
    final, path = run(redis_client, worker_env, "LINHAS", "xlsx")
    assert final["linhas"] == "5", final
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["dados", "dados_2", "dados_3"]
    got = [[tuple(c.value for c in r) for r in sheet.iter_rows()] for sheet in book]
    header = ("numero", "texto")
    assert got == [
        [header, (1, "linha 1"), (2, "linha 2")],
        [header, (3, "linha 3"), (4, "linha 4")],
        [header, (5, "linha 5")],
    ]
    assert all(s.freeze_panes == "A2" for s in book)


@pytest.mark.parametrize("kind", WORKER_KINDS)
def test_a_format_the_worker_cannot_write_fails_clearly(
    kind: str, worker_env: WorkerEnv, start_worker: StartWorker, redis_client: redis.Redis
) -> None:
    """An unknown format, xlsx with gzip, or a file name with another format's extension:
    formato_nao_suportado, and no file. A version-1 message never carries a format."""
    start_worker(kind, worker_env)
    keys = Keys(worker_env.queue)
    cases = [
        ("ods", "nenhuma", ".csv"),
        ("xlsx", "gzip", ".xlsx"),
        ("csv", "zstd", ".csv"),
        ("xlsx", "nenhuma", ".csv"),
        ("csv", "gzip", ".csv"),
    ]
    for formato, compressao, extension in cases:
        task_id = new_task_id()
        name = file_name("PAGAMENTOS_PENDENTES", task_id).replace(".csv", extension)
        body = {
            "versao": 2,
            "task_id": task_id,
            "tipo_relatorio": "PAGAMENTOS_PENDENTES",
            "arquivo": name,
            "formato": formato,
            "compressao": compressao,
        }
        redis_client.hset(keys.task(task_id), mapping={"status": "na_fila"})
        redis_client.lpush(worker_env.queue, json.dumps(body))
        final = wait_final(redis_client, worker_env, task_id)
        assert final["status"] == "falhou", (formato, compressao, final)
        assert final["erro_codigo"] == ErrorCode.UNSUPPORTED_FORMAT, final
        assert not (worker_env.export_dir / name).exists()
    assert not list(worker_env.export_dir.iterdir())


def test_a_c_worker_that_cannot_load_libxlsxwriter_says_so(
    worker_env: WorkerEnv, start_worker: StartWorker, redis_client: redis.Redis, tmp_path: Path
) -> None:
    """libxlsxwriter is opened at the first xlsx task: when it cannot be loaded (here a broken
    copy first on LD_LIBRARY_PATH), the task fails with formato_nao_suportado, no file is
    written, and the same worker still writes CSV."""
    broken = tmp_path / "lib"
    broken.mkdir()
    (broken / "libxlsxwriter.so.4").write_bytes(b"not a shared library")
    worker_env.extra["LD_LIBRARY_PATH"] = str(broken)
    start_worker("c", worker_env)
    final, path = run(redis_client, worker_env, "PAGAMENTOS_PENDENTES", "xlsx")
    assert final["status"] == "falhou", final
    assert final["erro_codigo"] == ErrorCode.UNSUPPORTED_FORMAT and "xlsx" in final["erro"]
    assert not path.exists() and not list(worker_env.export_dir.iterdir())
    plain, _ = run(redis_client, worker_env, "PAGAMENTOS_PENDENTES", "csv")
    assert plain["status"] == "concluido", plain
