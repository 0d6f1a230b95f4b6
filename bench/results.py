"""One measured figure (the median of its repetitions), and the run's results file."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Measurement:
    """`contender` on `case` of benchmark `bench`: medians over `runs` repetitions.

    `peak_rss_kib` is the largest peak of the repetitions (the conservative figure), `seconds`
    the median. `extra` holds figures specific to a benchmark (requests/s, latencies...).
    """

    bench: str
    case: str
    contender: str
    seconds: float = float("nan")
    peak_rss_kib: int = 0
    rows: int = 0
    bytes: int = 0
    runs: int = 0
    samples: list[float] = field(default_factory=list)
    extra: dict[str, float] = field(default_factory=dict)
    note: str = ""

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("nan")

    @property
    def mb_per_s(self) -> float:
        return self.bytes / self.seconds / 1e6 if self.seconds > 0 else float("nan")

    @property
    def rss_mb(self) -> float:
        return self.peak_rss_kib * 1024 / 1e6


def save(path: Path, meta: dict[str, Any], results: list[Measurement]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"meta": meta, "results": [asdict(m) for m in results]}
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False, default=str))


def load(path: Path) -> tuple[dict[str, Any], list[Measurement]]:
    if not path.exists():
        return {}, []
    data = json.loads(path.read_text())
    return data["meta"], [Measurement(**m) for m in data["results"]]
