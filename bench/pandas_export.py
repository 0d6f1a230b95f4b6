"""The approach the specification warns against: load the whole result, then write it.

    python -m bench.pandas_export DB REPORT_TYPE PARAMS_JSON OUT.csv

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
    sql = (REPO / "catalog" / f"{report_type}.sql").read_text(encoding="utf-8")
    params = json.loads(params_json)
    started = time.perf_counter()
    conn = sqlite3.connect(f"{Path(db).resolve().as_uri()}?mode=ro", uri=True)
    frame = pd.read_sql(sql, conn, params=params)
    frame.to_csv(out, index=False, lineterminator="\r\n")
    conn.close()
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "rows": len(frame)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
