"""The CSV file of docs/protocol.md ("CSV format"): the csv module's default dialect, UTF-8 with
invalid bytes kept as they were read, REAL values by the protocol's rule."""

from __future__ import annotations

import csv
import itertools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from relatorios.protocol import format_real

WRITE_BUFFER = 1 << 20
_FLOAT = float


# A new file only: never through a symlink, never into a file that is already there.
CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class CsvSink:
    """Creates and writes `path` (which must not exist); `close()` in every case."""

    def __init__(self, path: Path) -> None:
        fd = os.open(path, CREATE_FLAGS, 0o644)
        self.out = open(  # noqa: SIM115 - closed by close(), across the caller's loop
            fd, "w", encoding="utf-8", errors="surrogateescape", newline="",
            buffering=WRITE_BUFFER,
        )  # fmt: skip
        self.writer = csv.writer(self.out)

    def header(self, names: Sequence[str]) -> None:
        self.writer.writerow(names)

    def rows(self, batch: list[Any]) -> None:
        self.writer.writerows(_with_reals(batch))

    def tell(self) -> int:
        """Bytes of the file so far (flushes: called every PROGRESS_EVERY rows, not per row)."""
        self.out.flush()
        return self.out.tell()

    def close(self) -> None:
        self.out.close()


def _with_reals(batch: list[Any]) -> list[Any]:
    """REAL values formatted by the protocol's rule; most reports have none, and pay one scan."""
    if _FLOAT not in set(map(type, itertools.chain.from_iterable(batch))):
        return batch
    return [[format_real(v) if type(v) is _FLOAT else v for v in row] for row in batch]
