"""The approach the specification warns against: load the whole result, then write it.

    python -m bench.pandas_export DB REPORT_TYPE PARAMS_JSON OUT.csv
    python -m bench.pandas_export DB REPORT_TYPE PARAMS_JSON OUT.xlsx   # to_excel (XlsxWriter)

DB is a SQLite file, or a postgresql:// URL (the report's PostgreSQL SQL, its parameters bound
by psycopg).

Prints {"seconds": ..., "rows": ...} on stdout: the time of read_sql + to_csv, after the imports
(the workers are timed already running, so pandas is not charged its start-up either).
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from pathlib import Path

import pandas as pd  # type: ignore[import-untyped,unused-ignore]

REPO = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> int:
    db, report_type, params_json, out = argv
    if db.startswith("postgresql://"):
        return from_postgres(db, report_type, json.loads(params_json), out)
    sql = (REPO / "catalog" / f"{report_type}.sql").read_text(encoding="utf-8")
    params = json.loads(params_json)
    started = time.perf_counter()
    conn = sqlite3.connect(f"{Path(db).resolve().as_uri()}?mode=ro", uri=True)
    frame = pd.read_sql(sql, conn, params=params)
    if out.endswith(".xlsx"):
        frame.to_excel(out, index=False, sheet_name="dados", engine="xlsxwriter")
    else:
        frame.to_csv(out, index=False, lineterminator="\r\n")
    conn.close()
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "rows": len(frame)}))
    return 0


def from_postgres(url: str, report_type: str, params: dict[str, object], out: str) -> int:
    import warnings

    import psycopg

    from relatorios.catalog import load_report
    from relatorios.sql_params import to_numbered

    report = load_report(REPO / "catalog" / f"{report_type}.sql")
    sql, names = to_numbered(report.sql_for("postgresql"))
    started = time.perf_counter()
    conn = psycopg.connect(url, cursor_factory=psycopg.RawCursor)
    with warnings.catch_warnings():  # pandas prefers SQLAlchemy; a DBAPI connection works
        warnings.simplefilter("ignore", UserWarning)
        frame = pd.read_sql(sql, conn, params=[params[n] for n in names])
    frame.to_csv(out, index=False, lineterminator="\r\n")
    conn.close()
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "rows": len(frame)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
