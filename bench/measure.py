"""Run a process and measure it: wall time and peak resident memory (RSS).

Peak RSS comes from the kernel, never from sampling: GNU time's "Maximum resident set size"
(`/usr/bin/time -f %M`) for a process that exits on its own, and `VmHWM` of /proc/<pid>/status for
a long-running worker, read before it is stopped.

Why GNU time and not our own `wait4()`: Linux keeps a child's `ru_maxrss` across `exec()`, and a
child forked (or vforked) by this Python process starts with the benchmark's own resident pages,
about 45 MB. Every contender then "peaked" at 45 MB at least, the 6 MB sqlite3 shell included.
`time` forks from a 2 MB process, so what it reports is the contender's own peak.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VAR = REPO / "var" / "bench"
GNU_TIME = "/usr/bin/time"  # Debian package `time` (scripts/system-packages-test.txt)


@dataclass(frozen=True)
class Run:
    """One finished process: seconds of wall time, peak RSS in KiB, exit code."""

    seconds: float
    peak_rss_kib: int
    returncode: int


def run_process(
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    stdin: Path | None = None,
    stdout: Path | None = None,
    timeout_s: float = 3600,
) -> Run:
    """Run `argv` to completion; stdout goes to `stdout` (or nowhere), stderr is inherited."""
    if not shutil.which(GNU_TIME):
        raise RuntimeError(f"{GNU_TIME} not found: apt-get install time")
    VAR.mkdir(parents=True, exist_ok=True)
    rss_file = VAR / f"maxrss-{os.getpid()}.txt"
    timed = [GNU_TIME, "-q", "-f", "%M", "-o", str(rss_file), *argv]
    with (
        open(stdin or os.devnull, "rb") as fin,
        open(stdout or os.devnull, "wb") as fout,
    ):
        started = time.perf_counter()
        proc = subprocess.Popen(timed, stdin=fin, stdout=fout, env=env, cwd=REPO)
        try:
            returncode = proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            returncode = proc.wait()
        seconds = time.perf_counter() - started
    return Run(seconds, _read_kib(rss_file), returncode)


def _read_kib(rss_file: Path) -> int:
    """GNU time's last line is %M; a killed `time` leaves no figure (0: unknown)."""
    lines = rss_file.read_text().split() if rss_file.exists() else []
    rss_file.unlink(missing_ok=True)
    return int(lines[-1]) if lines and lines[-1].isdigit() else 0


def peak_rss_kib(pid: int) -> int:
    """The peak RSS (VmHWM) of a running process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError(f"VmHWM not found for pid {pid}")


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def rotate(items: Sequence[str], rep: int) -> list[str]:
    """Contenders in a different order each repetition, so none always runs on a warm cache."""
    shift = rep % len(items)
    return [*items[shift:], *items[:shift]]
