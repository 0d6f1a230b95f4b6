"""`python -m bench [--quick] [--only export,ingest,...]`: run the benchmarks, write the report.

A full run writes docs/benchmarks.md and docs/benchmarks.png; a quick run (small databases, one
repetition) writes var/bench/quick/ so that it never replaces the published figures. Results are
kept in var/bench/<full|quick>/results.json: `--only` reruns some benchmarks and keeps the rest.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import (
    bigreport,
    broker,
    dbgen,
    export,
    formats,
    ingest,
    listing,
    postgres,
    report,
    throughput,
)
from bench.measure import REPO, VAR
from bench.plan import FULL, QUICK, Plan
from bench.results import Measurement, load, save

Benchmark = Callable[[Plan, str], list[Measurement]]
BENCHMARKS: dict[str, Benchmark] = {
    # dbgen first: the 5,000,000-transaction database it times is then the cached default one.
    "dbgen": dbgen.run,
    "export": export.run,
    "ingest": ingest.run,
    "throughput": throughput.run,
    "bigreport": bigreport.run,
    "postgres": postgres.run,
    "listing": listing.run,
    "formats": formats.run,
}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small databases, one repetition")
    parser.add_argument(
        "--only", default=",".join(BENCHMARKS), help=f"comma-separated subset of {list(BENCHMARKS)}"
    )
    parser.add_argument(
        "--report-only", action="store_true", help="rewrite the report from the last results"
    )
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(chosen) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {sorted(unknown)}")
    _raise_open_files_limit()
    out_dir = VAR / plan.label
    results_path = out_dir / "results.json"
    meta, results = load(results_path)
    started = time.perf_counter()
    with broker.private_redis(VAR / "redis") as redis_url:
        for name in [] if args.report_only else chosen:
            print(f"== {name} ({plan.label})", flush=True)
            # Other processes on the machine skew the figures: record how busy it was.
            when = f"{_stamp()}, load average {os.getloadavg()[0]:.1f} at start"
            fresh = BENCHMARKS[name](plan, redis_url)
            results = [m for m in results if m.bench != name] + fresh
            meta = {**meta, **machine(plan), name: when}
            save(results_path, meta, results)
    print(f"benchmarks done in {time.perf_counter() - started:.0f} s", flush=True)
    if plan.quick:
        written = report.write(meta, results, out_dir / "benchmarks.md", out_dir)
    else:
        written = report.write(meta, results, REPO / "docs" / "benchmarks.md", REPO / "docs")
    for path in written:
        print(f"wrote {path.relative_to(REPO)}")
    return 0


def _raise_open_files_limit() -> None:
    # 1,000 concurrent clients need more descriptors than the usual soft limit of 1,024.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def machine(plan: Plan) -> dict[str, Any]:
    import sqlite3

    return {
        "plan": plan.label,
        "cpu": _cpu_model(),
        "cores": _cores(),
        "memory_gb": round(_mem_total_kib() / 1024 / 1024, 1),
        "os": _os_name(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "redis": _version(["redis-server", "--version"]),
        "sqlite3_shell": _version(["sqlite3", "--version"]).split(" ")[0],
        "wrk": _version(["wrk", "--version"]),
        "postgresql": _version([str(_pg_bin() / "postgres"), "--version"]),
        "packages": _packages(),
        "date": _stamp(),
    }


def _pg_bin() -> Path:
    from relatorios.postgres_server import PostgresNotFound, bin_dir

    try:
        return bin_dir()
    except PostgresNotFound:
        return Path("/nonexistent")


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def _cores() -> int:
    return len(os.sched_getaffinity(0))


def _mem_total_kib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1])
    return 0


def _os_name() -> str:
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return platform.platform()


def _version(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "not installed"
    text = (done.stdout or done.stderr).strip().splitlines()
    return text[0] if text else "?"


def _packages() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    names = ("fastapi", "uvicorn", "redis", "pandas", "arq", "rq", "faker", "httpx", "psycopg")
    found = {}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


if __name__ == "__main__":
    raise SystemExit(main())
