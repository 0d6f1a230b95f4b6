"""Progress display for the generator: a Rich bar on a terminal, plain lines otherwise.

Rich is optional (the quick start installs only Faker): without it, or when stderr is not a
terminal (e.g. `docker compose logs`), progress is a few plain lines on stderr.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any, Protocol, TextIO


class Progress(Protocol):
    def phase(self, name: str, total: int) -> None:
        """Start a new phase of `total` steps (the previous one is complete)."""

    def advance(self, steps: int) -> None: ...

    def __enter__(self) -> Progress: ...

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


def milhares(n: int) -> str:
    """5000000 -> '5.000.000' (Brazilian thousands separator)."""
    return f"{n:,}".replace(",", ".")


class SilentProgress:
    def phase(self, name: str, total: int) -> None:
        pass

    def advance(self, steps: int) -> None:
        pass

    def __enter__(self) -> SilentProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass


class LineProgress:
    """One line when a phase starts and one each time it passes another tenth."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._name = ""
        self._total = 0
        self._done = 0
        self._next_tenth = 1

    def phase(self, name: str, total: int) -> None:
        self._name, self._total, self._done, self._next_tenth = name, total, 0, 1
        self._print(f"{name}: 0/{milhares(total)}")

    def advance(self, steps: int) -> None:
        self._done += steps
        if self._total <= 0:
            return
        tenth = self._done * 10 // self._total
        if tenth >= self._next_tenth:
            self._next_tenth = tenth + 1
            percent = self._done * 100 // self._total
            self._print(
                f"{self._name}: {milhares(self._done)}/{milhares(self._total)} ({percent}%)"
            )

    def _print(self, line: str) -> None:
        print(line, file=self._stream, flush=True)

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass


class RichProgress:
    def __init__(self, rich_progress: Any) -> None:
        self._bar = rich_progress
        self._task: Any = None

    def phase(self, name: str, total: int) -> None:
        if self._task is not None:
            self._bar.update(self._task, completed=self._bar.tasks[-1].total)
        self._task = self._bar.add_task(name, total=max(total, 1))

    def advance(self, steps: int) -> None:
        self._bar.advance(self._task, steps)

    def __enter__(self) -> RichProgress:
        self._bar.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        if kind is None and self._task is not None:
            self._bar.update(self._task, completed=self._bar.tasks[-1].total)
        self._bar.stop()


def make_progress(enabled: bool, stream: TextIO | None = None) -> Progress:
    """Rich bar if wanted, importable and on a terminal; else plain lines; else nothing."""
    if not enabled:
        return SilentProgress()
    out = stream if stream is not None else sys.stderr
    if out.isatty():
        try:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichBar
        except ImportError:
            pass
        else:
            return RichProgress(
                RichBar(
                    TextColumn("{task.description:<14}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeElapsedColumn(),
                    TimeRemainingColumn(),
                    console=Console(file=out),
                )
            )
    return LineProgress(out)
