"""Relative dates: parameter values of a schedule that name a day (or a year) relative to the
occurrence being fired, resolved when the task is queued, in the schedule's time zone.

The catalog's parameter kind decides which words a parameter accepts (docs/operations.md,
"Relative dates"):

- `date`: `hoje`, `ontem`, `hoje-7d` / `hoje+1d` (any number of days up to 3660),
  `inicio_do_mes`, `fim_do_mes`, `inicio_do_mes_passado`, `fim_do_mes_passado`,
  `inicio_do_ano`, `fim_do_ano`, `inicio_do_ano_passado`, `fim_do_ano_passado`;
- `integer`: `ano_atual`, `ano_passado`.

Any other value is left as it is, and the parameter's own validation judges it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

from relatorios.catalog import Param

MAX_DAYS = 3660
_DAYS_RE = re.compile(r"^hoje([+-])(\d{1,4})d\Z")


def _month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def _previous_month_end(day: dt.date) -> dt.date:
    return _month_start(day) - dt.timedelta(days=1)


def _month_end(day: dt.date) -> dt.date:
    following = (_month_start(day) + dt.timedelta(days=32)).replace(day=1)
    return following - dt.timedelta(days=1)


DATE_WORDS: dict[str, Callable[[dt.date], dt.date]] = {
    "hoje": lambda d: d,
    "ontem": lambda d: d - dt.timedelta(days=1),
    "inicio_do_mes": _month_start,
    "fim_do_mes": _month_end,
    "inicio_do_mes_passado": lambda d: _month_start(_previous_month_end(d)),
    "fim_do_mes_passado": _previous_month_end,
    "inicio_do_ano": lambda d: d.replace(month=1, day=1),
    "fim_do_ano": lambda d: d.replace(month=12, day=31),
    "inicio_do_ano_passado": lambda d: d.replace(year=d.year - 1, month=1, day=1),
    "fim_do_ano_passado": lambda d: d.replace(year=d.year - 1, month=12, day=31),
}
INTEGER_WORDS: dict[str, Callable[[dt.date], int]] = {
    "ano_atual": lambda d: d.year,
    "ano_passado": lambda d: d.year - 1,
}
# What docs and error messages list: the words, and the form with a number of days.
DATE_FORMS = (*DATE_WORDS, "hoje-Nd", "hoje+Nd")


def is_relative(param: Param, value: object) -> bool:
    if not isinstance(value, str):
        return False
    if param.kind == "date":
        return value in DATE_WORDS or _days(value) is not None
    return param.kind == "integer" and value in INTEGER_WORDS


def _days(value: str) -> int | None:
    match = _DAYS_RE.match(value)
    if not match or int(match[2]) > MAX_DAYS:
        return None
    return int(match[2]) * (1 if match[1] == "+" else -1)


def resolve(param: Param, value: object, today: dt.date) -> object:
    """The value a relative word stands for on `today` (an ISO date text or an integer);
    any other value unchanged."""
    if not is_relative(param, value):
        return value
    assert isinstance(value, str)
    if param.kind == "integer":
        return INTEGER_WORDS[value](today)
    days = _days(value)
    day = today + dt.timedelta(days=days) if days is not None else DATE_WORDS[value](today)
    return day.isoformat()


def resolve_all(
    params: tuple[Param, ...], values: dict[str, object], today: dt.date
) -> dict[str, object]:
    """Every value of `values` resolved for `today` (names not in `params` are left as they are,
    for the validation to refuse)."""
    by_name = {p.name: p for p in params}
    return {
        name: resolve(by_name[name], value, today) if name in by_name else value
        for name, value in values.items()
    }
