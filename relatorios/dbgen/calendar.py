"""How many transactions each day of the period gets, and who may spend on that day.

Transactions are generated day by day in date order, so `transacoes.id` grows with `data`
(as in a real ledger) and each day is one `INSERT ... SELECT` with the date bound as a parameter.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from relatorios.dbgen.pools import PERIOD_END, PERIOD_START

# Monday..Sunday: offices spend mostly on working days.
WEEKDAY_WEIGHT = (1.0, 1.0, 1.0, 1.0, 0.95, 0.25, 0.1)
DAILY_JITTER = 0.15


@dataclass(frozen=True)
class Chunk:
    """`count` transactions with ids first_id.. on day `data`, by employees 1..`elegiveis`.

    The loader lets SQLite number the rows (max + 1), which gives these ids as chunks are
    inserted in order; first_id documents the plan and lets tests check it.
    """

    first_id: int
    count: int
    data: str
    elegiveis: int


def plan(
    transactions: int, hire_dates: Sequence[str], rng: random.Random, max_rows: int
) -> list[Chunk]:
    """Split `transactions` over the days of the period, at most `max_rows` per chunk.

    `hire_dates` are ISO dates sorted ascending, employee id i hired on hire_dates[i - 1]:
    employees 1..k are exactly those hired by a given day, so a transaction never predates
    its employee's hire date. Each day's share follows the weekday, the headcount and a little
    noise; cumulative rounding makes the counts add up to `transactions` exactly.
    """
    days = [PERIOD_START + timedelta(d) for d in range((PERIOD_END - PERIOD_START).days + 1)]
    eligible = [bisect.bisect_right(hire_dates, day.isoformat()) for day in days]
    weights = [
        WEEKDAY_WEIGHT[day.weekday()] * n * rng.uniform(1 - DAILY_JITTER, 1 + DAILY_JITTER)
        for day, n in zip(days, eligible, strict=True)
    ]
    total = sum(weights)
    chunks: list[Chunk] = []
    next_id, done, acc = 1, 0, 0.0
    for day, n, weight in zip(days, eligible, weights, strict=True):
        acc += weight
        # The last day takes whatever float rounding left over.
        upto = transactions if day == days[-1] else round(transactions * acc / total)
        chunks.extend(_split(next_id, upto - done, day, n, max_rows))
        next_id += upto - done
        done = upto
    return chunks


def _split(first_id: int, count: int, day: date, eligible: int, max_rows: int) -> list[Chunk]:
    return [
        Chunk(first_id + start, min(max_rows, count - start), day.isoformat(), eligible)
        for start in range(0, count, max_rows)
    ]
