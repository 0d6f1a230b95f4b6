"""Run a process and measure it: wall time and peak resident memory (RSS).

Peak RSS comes from the kernel, never from sampling: `wait4()`'s rusage (`ru_maxrss`, what
`/usr/bin/time -v` prints as "Maximum resident set size") for a process that exits on its own,
and `VmHWM` of /proc/<pid>/status for a long-running worker, read before it is stopped.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VAR = REPO / "var" / "bench"


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
    with (
        open(stdin or os.devnull, "rb") as fin,
        open(stdout or os.devnull, "wb") as fout,
    ):
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=fin, stdout=fout, env=env, cwd=REPO)
        deadline = started + timeout_s
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.002)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
    return Run(seconds, usage.ru_maxrss, proc.returncode)


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
