"""docs/benchmarks.md and docs/benchmarks.png from the run's measurements.

Every target of the issues is computed from the figures and written as met or not met; nothing
here tunes a number.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.results import Measurement

CHART = "benchmarks.png"
BENCHMARK_NAMES = ("dbgen", "export", "ingest", "throughput", "bigreport", "postgres", "formats")
EXPORT_ORDER = ("worker C", "worker Python", "sqlite3 -csv", "pandas", "count(*)")


@dataclass(frozen=True)
class Target:
    text: str
    figure: str
    met: bool | None  # None: not measured

    @property
    def verdict(self) -> str:
        return "not measured" if self.met is None else ("**met**" if self.met else "**not met**")


def write(
    meta: dict[str, Any], results: list[Measurement], md: Path, chart_dir: Path
) -> list[Path]:
    chart = chart_dir / CHART
    md.parent.mkdir(parents=True, exist_ok=True)
    written = [md]
    if _chart(results, chart):
        written.append(chart)
    md.write_text(render(meta, results, chart.name))
    return written


def render(meta: dict[str, Any], results: list[Measurement], chart: str) -> str:
    targets = compute_targets(meta, results)
    parts = [
        "# Benchmarks\n",
        _readme_section(meta, results, targets, chart),
        _machine(meta),
        _targets_table(targets),
        _export_section(results),
        _ingest_section(results),
        _throughput_section(results),
        _dbgen_section(results),
        _big_section(results),
        _postgres_section(results),
        _listing_section(results),
        _formats_section(results),
        _method(),
    ]
    return "\n".join(p for p in parts if p)


# --- lookups ------------------------------------------------------------------------------


def _find(
    results: Iterable[Measurement], bench: str, case_prefix: str, contender: str
) -> Measurement | None:
    for m in results:
        if m.bench == bench and m.case.startswith(case_prefix) and m.contender == contender:
            return m if m.runs else None
    return None


def _default_case(meta: dict[str, Any], report: str) -> str:
    size = 200_000 if meta.get("plan") == "quick" else 5_000_000
    return f"{report} @ {size:,} transactions"


def _mb(m: Measurement) -> str:
    return f"{m.rss_mb:.1f} MB"


def _s(value: float) -> str:
    return f"{value:.2f} s" if value < 100 else f"{value:.0f} s"


def _n(value: float) -> str:
    return f"{value:,.0f}"


# --- targets ------------------------------------------------------------------------------


def compute_targets(meta: dict[str, Any], results: list[Measurement]) -> list[Target]:
    targets: list[Target] = []
    pending = _default_case(meta, "PAGAMENTOS_PENDENTES")
    c = _find(results, "export", pending, "worker C")
    py = _find(results, "export", pending, "worker Python")
    shell = _find(results, "export", pending, "sqlite3 -csv")
    count = _find(results, "export", pending, "count(*)")
    small_c = _find(results, "export", _default_case(meta, "MAIORES_GASTADORES"), "worker C")
    big_c = _find(results, "export", _default_case(meta, "TRANSACOES_POR_PERIODO"), "worker C")
    small_py = _find(results, "export", _default_case(meta, "MAIORES_GASTADORES"), "worker Python")
    big_py = _find(
        results, "export", _default_case(meta, "TRANSACOES_POR_PERIODO"), "worker Python"
    )
    where = f"`{pending}`"
    targets.append(
        _ratio("C worker wall time ≤ 0.85x `sqlite3 -csv -header`, " + where, c, shell, 0.85)
    )
    targets.append(
        _ratio(
            "C worker wall time ≤ 1.6x `SELECT count(*)` over the query, " + where, c, count, 1.6
        )
    )
    targets.append(_rss_at_most("C worker peak RSS ≤ 8 MB, " + where, c, 8.0))
    targets.append(
        _flat(
            "C worker peak RSS the same (±10%) for a 1,000-row report and one of every transaction",
            small_c,
            big_c,
            None,
        )
    )
    targets.append(
        _ratio("Python worker wall time ≤ 2.0x `sqlite3 -csv -header`, " + where, py, shell, 2.0)
    )
    targets.append(_rss_at_most("Python worker peak RSS ≤ 40 MB, " + where, py, 40.0))
    targets.append(
        _flat(
            "Python worker peak RSS ≤ 40 MB and flat (±10%), same two reports",
            small_py,
            big_py,
            40.0,
        )
    )
    targets += _postgres_targets(meta, results)
    targets += _formats_targets(meta, results)
    targets += _ingest_targets(results)
    targets += _throughput_targets(results)
    targets += _dbgen_targets(results)
    targets += _listing_targets(results)
    big = _find(results, "bigreport", "", "worker C")
    if big is None:
        targets.append(
            Target("Big report of at least 20,000,000 rows by the C worker", "not run", None)
        )
    else:
        text = "Big report of at least 20,000,000 rows by the C worker, peak RSS ≤ 8 MB"
        figure = f"{_n(big.rows)} rows, {big.bytes / 1e9:.1f} GB in {_s(big.seconds)}, {_mb(big)}"
        targets.append(Target(text, figure, big.rows >= 20_000_000 and big.rss_mb <= 8.0))
    return targets


def _ratio(text: str, a: Measurement | None, b: Measurement | None, limit: float) -> Target:
    if a is None or b is None:
        return Target(text, "not measured", None)
    ratio = a.seconds / b.seconds
    return Target(text, f"{_s(a.seconds)} vs {_s(b.seconds)}: {ratio:.2f}x", ratio <= limit)


def _rss_at_most(text: str, m: Measurement | None, limit_mb: float) -> Target:
    if m is None:
        return Target(text, "not measured", None)
    return Target(text, _mb(m), m.rss_mb <= limit_mb)


def _flat(
    text: str, small: Measurement | None, big: Measurement | None, limit: float | None
) -> Target:
    if small is None or big is None:
        return Target(text, "not measured", None)
    spread = big.peak_rss_kib / small.peak_rss_kib - 1
    figure = f"{_n(small.rows)} rows: {_mb(small)}; {_n(big.rows)} rows: {_mb(big)} ({spread:+.0%})"
    met = abs(spread) <= 0.10 and (limit is None or max(small.rss_mb, big.rss_mb) <= limit)
    return Target(text, figure, met)


def _postgres_targets(meta: dict[str, Any], results: list[Measurement]) -> list[Target]:
    """Issue 12: from PostgreSQL, the C worker within 1.15x and the Python worker within 2x of
    psql's `\\copy`, both with flat memory; `popular_banco.py --url` of 5,000,000 in ≤ 30 s."""
    targets = []
    for report in ("PAGAMENTOS_PENDENTES", "TRANSACOES_POR_PERIODO"):
        case = _default_case(meta, report)
        floor = _find(results, "postgres", case, "psql \\copy")
        for name, limit in (("C", 1.15), ("Python", 2.0)):
            worker = _find(results, "postgres", case, f"worker {name}")
            text = f"PostgreSQL: {name} worker ≤ {limit}x `psql \\copy`, `{case}`"
            targets.append(_ratio(text, worker, floor, limit))
    for name in ("C", "Python"):
        small = _find(
            results, "postgres", _default_case(meta, "MAIORES_GASTADORES"), f"worker {name}"
        )
        big = _find(
            results, "postgres", _default_case(meta, "TRANSACOES_POR_PERIODO"), f"worker {name}"
        )
        text = f"PostgreSQL: {name} worker peak RSS flat (±10%), 1,000 rows vs every transaction"
        targets.append(_flat(text, small, big, None))
    load = _find(results, "postgres", "", "popular_banco.py --url")
    text = "`popular_banco.py --url` of 5,000,000 transactions with indexes ≤ 30 s"
    if load is None:
        targets.append(Target(text, "not measured", None))
    else:
        figure = f"{_n(load.rows)} transactions: {_s(load.seconds)}"
        # A quick run loads fewer rows: its time says nothing about the target.
        met = load.seconds <= 30 if load.rows >= 5_000_000 else None
        targets.append(Target(text, figure, met))
    return targets


def _formats_targets(meta: dict[str, Any], results: list[Measurement]) -> list[Target]:
    """Issue 13: XLSX and gzip CSV of PAGAMENTOS_PENDENTES against each worker's plain CSV."""
    case = _default_case(meta, "PAGAMENTOS_PENDENTES")
    small = _default_case(meta, "MAIORES_GASTADORES")
    where = f"`{case}`"

    def found(name: str, at: str = case) -> Measurement | None:
        return _find(results, "formats", at, name)

    c_csv, c_gz, c_xlsx = (found(f"worker C {o}") for o in ("csv", "csv.gz", "xlsx"))
    targets = [
        _ratio("C worker XLSX ≤ 3x its plain CSV, " + where, c_xlsx, c_csv, 3.0),
        _ratio("C worker gzip CSV ≤ 1.5x its plain CSV, " + where, c_gz, c_csv, 1.5),
    ]
    for name, limit in (("C", 16.0), ("Python", 64.0)):
        text = (
            f"{name} worker XLSX peak RSS ≤ {limit:.0f} MB and flat (±10%), 1,000 rows vs {where}"
        )
        targets.append(
            _flat(text, found(f"worker {name} xlsx", small), found(f"worker {name} xlsx"), limit)
        )
    return targets


def _ingest_targets(results: list[Measurement]) -> list[Target]:
    """Issue 15's targets, for one API process and for API_WORKERS=2: ≥ 1.2x the floor (bare
    FastAPI + one MULTI), ≥ 0.5x the ceiling (bare FastAPI), p99 ≤ 300 ms, 0 errors."""
    floor = _find(results, "ingest", "", "bare FastAPI + one MULTI (floor)")
    ceiling = _find(results, "ingest", "", "bare FastAPI (ceiling)")
    targets = []
    for name in ("relatorios API", "relatorios API, API_WORKERS=2"):
        real = _find(results, "ingest", "", name)
        text = f"Ingest, {name}: ≥ 1.2x the floor, ≥ 0.5x the ceiling, p99 ≤ 300 ms, 0 errors"
        if real is None or floor is None or ceiling is None or not real.runs:
            targets.append(Target(text, "not measured", None))
            continue
        rate = real.extra["requests_per_s"]
        vs_floor = rate / floor.extra["requests_per_s"]
        vs_ceiling = rate / ceiling.extra["requests_per_s"]
        figure = (
            f"{_n(rate)} req/s: {vs_floor:.2f}x floor, {vs_ceiling:.2f}x ceiling; "
            f"p99 {real.extra['p99_ms']:.0f} ms; errors {_n(real.extra['errors'])}"
        )
        met = (
            vs_floor >= 1.2
            and vs_ceiling >= 0.5
            and real.extra["p99_ms"] <= 300
            and real.extra["errors"] == 0
        )
        targets.append(Target(text, figure, met))
    return targets


def _throughput_targets(results: list[Measurement]) -> list[Target]:
    targets = []
    for count in (1, 2):
        c = _find(results, "throughput", "", f"worker C x{count}")
        arq = _find(results, "throughput", "", f"arq x{count}")
        text = f"Small tasks, {count} worker(s): C worker ≥ 5x arq's tasks/s"
        if c is None or arq is None:
            targets.append(Target(text, "not measured", None))
            continue
        ratio = c.extra["tasks_per_s"] / arq.extra["tasks_per_s"]
        figure = (
            f"{_n(c.extra['tasks_per_s'])} vs {_n(arq.extra['tasks_per_s'])} tasks/s: {ratio:.1f}x"
        )
        targets.append(Target(text, figure, ratio >= 5))
    return targets


def _dbgen_targets(results: list[Measurement]) -> list[Target]:
    ours = _find(results, "dbgen", "", "popular_banco.py")
    faker = _find(results, "dbgen", "", "Faker per row (extrapolated)")
    if ours is None:
        return [
            Target(
                "Database generation ≤ 20 s and ≥ 10x a Faker-per-row loop", "not measured", None
            )
        ]
    text = f"`popular_banco.py` with {_n(ours.rows)} transactions ≤ 20 s"
    targets = [Target(text, _s(ours.seconds), ours.seconds <= 20)]
    if faker is not None:
        ratio = faker.seconds / ours.seconds
        targets.append(
            Target(
                "… and ≥ 10x faster than a Faker-per-row loop",
                f"{ratio:.0f}x ({_s(faker.seconds)} extrapolated)",
                ratio >= 10,
            )
        )
    return targets


def _targets_table(targets: list[Target]) -> str:
    rows = [f"| {t.text} | {t.figure} | {t.verdict} |" for t in targets]
    return "\n".join(
        ["## Targets\n", "| target | measured | verdict |", "| --- | --- | --- |", *rows, ""]
    )


# --- sections -----------------------------------------------------------------------------


def _readme_section(
    meta: dict[str, Any], results: list[Measurement], targets: list[Target], chart: str
) -> str:
    met = sum(1 for t in targets if t.met)
    measured = sum(1 for t in targets if t.met is not None)
    lines = ["## Performance (text for the README)\n"]
    if meta.get("plan") == "quick":
        lines.append(
            "> **Quick run** (`make bench-quick`): small databases, one repetition. These "
            "figures only check that the suite works; docs/benchmarks.md has a full run.\n"
        )
    lines.append(f"![Benchmarks]({chart})\n")
    lines.append(
        "Measured with `make bench` on the machine below (contenders alternate in one run on "
        "the same data; medians of the repetitions; peak RSS is the kernel's high-water mark):\n"
    )
    bullets = _highlights(meta, results)
    lines += [f"- {b}" for b in bullets]
    lines.append(f"\n{met} of {measured} measured targets are met; the table below says which.\n")
    return "\n".join(lines)


def _highlights(meta: dict[str, Any], results: list[Measurement]) -> list[str]:
    out = []
    big = _find(results, "bigreport", "", "worker C")
    if big:
        out.append(
            f"**{big.bytes / 1e9:.1f} GB report, {_n(big.rows)} rows, in {_mb(big)} of RAM**: "
            f"the C worker streams it in {_s(big.seconds)} ({big.rows_per_s / 1e6:.1f} M rows/s)."
        )
    pending = _default_case(meta, "PAGAMENTOS_PENDENTES")
    c = _find(results, "export", pending, "worker C")
    shell = _find(results, "export", pending, "sqlite3 -csv")
    pandas = _find(results, "export", pending, "pandas")
    py = _find(results, "export", pending, "worker Python")
    if c and shell and pandas and py:
        out.append(
            f"`{pending}` ({_n(c.rows)} rows): C worker {_s(c.seconds)} / {_mb(c)}, "
            f"Python worker {_s(py.seconds)} / {_mb(py)}, `sqlite3 -csv` {_s(shell.seconds)}, "
            f"pandas {_s(pandas.seconds)} / {_mb(pandas)}."
        )
    real = _find(results, "ingest", "", "relatorios API")
    if real:
        out.append(
            f"**{_n(real.extra['requests_per_s'])} requests/s** from {real.case.split(', ')[1]} "
            f"on `POST /gerar-relatorio`, p99 {real.extra['p99_ms']:.0f} ms, "
            f"{_n(real.extra['errors'])} errors."
        )
    c1 = _find(results, "throughput", "", "worker C x1")
    arq = _find(results, "throughput", "", "arq x1")
    if c1 and arq:
        out.append(
            f"Tiny reports: {_n(c1.extra['tasks_per_s'])} tasks/s with one C worker, against "
            f"{_n(arq.extra['tasks_per_s'])} no-op jobs/s for arq."
        )
    gen = _find(results, "dbgen", "", "popular_banco.py")
    if gen:
        out.append(f"`popular_banco.py` builds {_n(gen.rows)} transactions in {_s(gen.seconds)}.")
    return out


def _machine(meta: dict[str, Any]) -> str:
    if not meta:
        return ""
    packages = ", ".join(f"{k} {v}" for k, v in meta.get("packages", {}).items())
    rows = [
        (
            "run",
            f"{meta.get('plan')} (`make bench{'-quick' if meta.get('plan') == 'quick' else ''}`)",
        ),
        ("date", meta.get("date", "?")),
        ("CPU", f"{meta.get('cpu')} ({meta.get('cores')} cores)"),
        ("memory", f"{meta.get('memory_gb')} GB"),
        ("OS", meta.get("os", "?")),
        ("Python / SQLite library", f"{meta.get('python')} / {meta.get('sqlite')}"),
        ("sqlite3 shell", meta.get("sqlite3_shell", "?")),
        ("Redis", meta.get("redis", "?")),
        ("wrk", meta.get("wrk", "?")),
        ("packages", packages),
    ]
    rows += [(f"`{name}` run", meta[name]) for name in BENCHMARK_NAMES if name in meta]
    lines = ["## Machine and versions\n", "| | |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(lines) + "\n"


def _export_section(results: list[Measurement]) -> str:
    rows = [m for m in results if m.bench == "export"]
    if not rows:
        return ""
    lines = [
        "## 1. Export\n",
        "One report to CSV. Workers are timed end to end (task pushed → `concluido`), already "
        "running; pandas is timed inside its process after its imports; `count(*)` is SQLite's "
        "floor (the same query, no output). Peak RSS is that of the whole process.\n",
        "| report @ database | contender | rows | time | rows/s | MB/s | peak RSS | runs |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for m in rows:
        if not m.runs:
            lines.append(f"| {m.case} | {m.contender} | | | | | | {m.note} |")
            continue
        mbs = f"{m.mb_per_s:.0f}" if m.bytes else "—"
        lines.append(
            f"| {m.case} | {m.contender} | {_n(m.rows)} | {_s(m.seconds)} | {_n(m.rows_per_s)} | "
            f"{mbs} | {_mb(m)} | {m.runs} |"
        )
    return "\n".join(lines) + "\n"


def _ingest_section(results: list[Measurement]) -> str:
    rows = [m for m in results if m.bench == "ingest"]
    if not rows:
        return ""
    lines = [
        "## 2. Ingest\n",
        f"{rows[0].case}, generated by `wrk` (1 thread) on loopback; one uvicorn process "
        "(`--no-access-log`) per contender, two for `API_WORKERS=2`; the floor is a bare FastAPI "
        "endpoint doing one redis-py `MULTI` (HSET + LPUSH); errors are socket errors plus "
        "non-2xx answers, summed over all runs.\n",
        "| server | requests/s | p50 | p99 | errors | tasks enqueued (last run) | runs |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for m in rows:
        if not m.runs:
            lines.append(f"| {m.contender} | {m.note} | | | | | |")
            continue
        e = m.extra
        queued = _n(e["enqueued"]) if m.contender.startswith("relatorios API") else "—"
        lines.append(
            f"| {m.contender} | {_n(e['requests_per_s'])} | {e['p50_ms']:.0f} ms | "
            f"{e['p99_ms']:.0f} ms | {_n(e['errors'])} | {queued} | {m.runs} |"
        )
    return "\n".join(lines) + "\n"


def _throughput_section(results: list[Measurement]) -> str:
    rows = [m for m in results if m.bench == "throughput"]
    if not rows:
        return ""
    lines = [
        "## 3. Small-task throughput\n",
        f"{rows[0].case}: each of our tasks is a real report (a few rows of one day, "
        "`TRANSACOES_POR_PERIODO` on a 10,000-transaction database: open, query, write, rename, "
        "record in Redis); arq and rq run no-op jobs on the same Redis (rq with its in-process "
        "`SimpleWorker`). Timed from the first enqueue to the last completion.\n",
        "| workers | tasks/s | time | failed | runs |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for m in rows:
        if not m.runs:
            lines.append(f"| {m.contender} | {m.note} | | | |")
            continue
        lines.append(
            f"| {m.contender} | {_n(m.extra['tasks_per_s'])} | {_s(m.seconds)} | "
            f"{_n(m.extra.get('failed', 0))} | {m.runs} |"
        )
    return "\n".join(lines) + "\n"


def _dbgen_section(results: list[Measurement]) -> str:
    rows = [m for m in results if m.bench == "dbgen"]
    if not rows:
        return ""
    lines = [
        "## 4. Database generation\n",
        "`popular_banco.py` timed whole (pools, bulk load, indexes). The Faker-per-row loop "
        "(`time_faker_per_row` of `bench/dbgen_vs_faker.py`: Faker draws every value of every "
        "transaction, `executemany` in batches, no indexes) runs on a sample and is "
        "extrapolated linearly.\n",
        "| generator | transactions | time | peak RSS | runs | note |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for m in rows:
        lines.append(
            f"| {m.contender} | {_n(m.rows)} | {_s(m.seconds)} | {_mb(m)} | {m.runs} | {m.note} |"
        )
    return "\n".join(lines) + "\n"


def _big_section(results: list[Measurement]) -> str:
    rows = [m for m in results if m.bench == "bigreport"]
    if not rows:
        return ""
    m = rows[0]
    lines = ["## 5. Big report\n", f"{m.case}, C worker. The CSV is deleted after each run.\n"]
    if not m.runs:
        return "\n".join([*lines, m.note]) + "\n"
    lines += [
        "| rows | CSV | time | rows/s | MB/s | peak RSS | runs |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| {_n(m.rows)} | {m.bytes / 1e9:.2f} GB | {_s(m.seconds)} | {_n(m.rows_per_s)} | "
        f"{m.mb_per_s:.0f} | {_mb(m)} | {m.runs} |",
    ]
    return "\n".join(lines) + "\n"


def _postgres_section(results: list[Measurement]) -> str:
    rows = [m for m in results if m.bench == "postgres"]
    if not rows:
        return ""
    lines = [
        "## 6. PostgreSQL\n",
        "A private PostgreSQL 15 with its default durability, loaded by `popular_banco.py --url` "
        "(timed whole: the same rows as the SQLite file, `COPY … FROM STDIN`, keys, indexes, "
        "`ANALYZE`). Workers are timed end to end with `DATABASE_URL`; `psql \\copy` is "
        "PostgreSQL writing its own CSV to a file, the floor; pandas is `read_sql` + `to_csv` "
        "after its imports.\n",
        "| case | contender | rows | time | rows/s | MB/s | peak RSS | runs |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for m in rows:
        if not m.runs:
            lines.append(f"| {m.case} | {m.contender} | | | | | | {m.note} |")
            continue
        mbs = f"{m.mb_per_s:.0f}" if m.bytes else "—"
        lines.append(
            f"| {m.case} | {m.contender} | {_n(m.rows)} | {_s(m.seconds)} | {_n(m.rows_per_s)} | "
            f"{mbs} | {_mb(m)} | {m.runs} |"
        )
    return "\n".join(lines) + "\n"


LISTING_P50_MS = 50.0


def _listing_targets(results: list[Measurement]) -> list[Target]:
    rows = {m.contender: m for m in results if m.bench == "listing" and m.runs}
    first = next(iter(rows.values()), None)
    if first is None:
        return [Target("Listing: `GET /relatorios?limite=20` p50 ≤ 50 ms", "not run", None)]
    where = f"with {first.case}"
    listing = rows.get("GET /relatorios?limite=20 (admin: every task)")
    idle = rows.get("GET /health (idle)")
    loaded = next((m for c, m in rows.items() if c.startswith("GET /health while")), None)
    targets = []
    if listing is not None:
        p50 = listing.extra["p50_ms"]
        targets.append(
            Target(
                f"Listing: `GET /relatorios?limite=20` p50 ≤ 50 ms {where}",
                f"{p50:.1f} ms",
                p50 <= LISTING_P50_MS,
            )
        )
    if idle is not None and loaded is not None:
        a, b = idle.extra["p99_ms"], loaded.extra["p99_ms"]
        targets.append(
            Target(
                "`/health` unaffected while 8 clients list: p99 ≤ 100 ms",
                f"idle p99 {a:.1f} ms, under load p99 {b:.1f} ms",
                b <= 100.0,
            )
        )
    return targets


def _listing_section(results: list[Measurement]) -> str:
    rows = [m for m in results if m.bench == "listing"]
    if not rows:
        return ""
    lines = [
        "## 7. Listing\n",
        f"{rows[0].case.capitalize()} in a private Redis (10 user keys, six states, three "
        "types), written as the API and the workers record them, indexes included; the real API "
        "in one uvicorn process; each request timed alone from one client, then `/health` "
        "polled every 50 ms while 8 clients list in a loop.\n",
        "| request | p50 | p99 | calls |",
        "| --- | ---: | ---: | ---: |",
    ]
    for m in rows:
        p50, p99 = m.extra["p50_ms"], m.extra["p99_ms"]
        lines.append(f"| {m.contender} | {p50:.1f} ms | {p99:.1f} ms | {m.runs} |")
    return "\n".join(lines) + "\n"


def _formats_section(results: list[Measurement]) -> str:
    rows = [m for m in results if m.bench == "formats"]
    if not rows:
        return ""
    lines = [
        "## 8. Formats\n",
        "The same report as plain CSV, gzip CSV (`compressao: gzip`, zlib level 1) and XLSX "
        "(`formato: xlsx`, constant-memory writers: libxlsxwriter in C, XlsxWriter in Python), "
        "each worker timed end to end; pandas is `read_sql` + `to_excel` (XlsxWriter engine, the "
        "whole frame in memory) after its imports. Size is the file's.\n",
        "| case | contender | rows | file | time | rows/s | peak RSS | runs |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for m in rows:
        lines.append(
            f"| {m.case} | {m.contender} | {_n(m.rows)} | {m.bytes / 1e6:.1f} MB | "
            f"{_s(m.seconds)} | {_n(m.rows_per_s)} | {_mb(m)} | {m.runs} |"
        )
    return "\n".join(lines) + "\n"


def _method() -> str:
    return """## Method

- `make bench` (full, about half an hour on 2 cores) or `make bench-quick` (a few minutes;
  small databases, one repetition, written to `var/bench/quick/`, never over this file).
  They run in a virtual environment of their own, `.venv-bench` (`make bench-deps`: the project
  and the peers of bench/requirements.txt, whose arq keeps redis-py below 6).
  `.venv-bench/bin/python -m bench --only export,ingest` reruns some benchmarks and keeps the
  other results (`var/bench/full/results.json`).
- Databases are generated once by `relatorios.dbgen` (seed 42) into `var/bench/` and reused.
- Contenders of one benchmark alternate (the order rotates each repetition) on the same data,
  after one untimed `count(*)` that warms the page cache. Times are medians; peak RSS is the
  largest of the repetitions, read from the kernel: GNU `time`'s "Maximum resident set size"
  for one-shot processes, `VmHWM` for workers. Each is the contender's own process: a `wait4()`
  of the benchmark's own child would count the 45 MB of the benchmark process it was forked
  from (Linux keeps `ru_maxrss` across `exec`), which is what earlier reports showed for the
  sqlite3 shell (45.3 MB; its own peak is about 6 MB). MB = 10^6 bytes.
- A private `redis-server` is started for the run, configured as `make run` starts it.
- Benchmarks are not tests: they never run in `make test` and never fail a build.
- Where the Python worker's time and memory go, and what was tried: docs/profiling.md.
"""


# --- chart --------------------------------------------------------------------------------


def _chart(results: list[Measurement], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    exports = [m for m in results if m.bench == "export" and m.runs and " @ " in m.case]
    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    (rss_ax, time_ax), (tp_ax, ingest_ax) = axes
    for report, style in (("PAGAMENTOS_PENDENTES", "-"), ("GASTOS_POR_DEPARTAMENTO", "--")):
        for contender in EXPORT_ORDER:
            points = sorted(
                (m.rows, m)
                for m in exports
                if m.contender == contender and m.case.startswith(report + " ")
            )
            if len(points) < 1:
                continue
            xs = [r for r, _ in points]
            label = f"{contender} ({report.split('_')[0].lower()})"
            color = f"C{EXPORT_ORDER.index(contender)}"
            if contender != "count(*)":
                rss_ax.plot(
                    xs, [m.rss_mb for _, m in points], style, marker="o", color=color, label=label
                )
            time_ax.plot(
                xs, [m.seconds for _, m in points], style, marker="o", color=color, label=label
            )
    for ax, title, unit in (
        (rss_ax, "Export: peak RSS", "MB (log)"),
        (time_ax, "Export: wall time", "s (log)"),
    ):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(title)
        ax.set_xlabel("result rows (log)")
        ax.set_ylabel(unit)
        ax.grid(True, which="both", alpha=0.3)
    rss_ax.legend(fontsize=7)
    time_ax.legend(fontsize=7)
    _bars(
        tp_ax,
        [m for m in results if m.bench == "throughput" and m.runs],
        "tasks_per_s",
        "Small tasks: tasks/s",
    )
    _bars(
        ingest_ax,
        [m for m in results if m.bench == "ingest" and m.runs],
        "requests_per_s",
        "Ingest: requests/s (1,000 clients)",
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def _bars(ax: Any, rows: list[Measurement], key: str, title: str) -> None:
    ax.set_title(title)
    if not rows:
        ax.text(0.5, 0.5, "not measured", ha="center", transform=ax.transAxes)
        return
    values = [m.extra[key] for m in rows]
    ax.barh([m.contender for m in rows], values, color=[f"C{i % 10}" for i in range(len(rows))])
    for i, value in enumerate(values):
        if not math.isnan(value):
            ax.text(value, i, f" {value:,.0f}", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, max(values) * 1.2)
