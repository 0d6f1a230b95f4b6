"""The named parameters of a catalog SQL (`:name`), found the same way for every source.

The catalog writes parameters as `:name` (docs/catalog.md). SQLite binds them by name itself;
PostgreSQL numbers them (`$1`, `$2`…), so a PostgreSQL source rewrites each `:name` as the `$n` of
its first appearance and binds the values in that order: the SQL text changes, the values never
enter it. The C worker's app/sql_params.c follows these rules to the letter:

- outside string literals (`'…'` with `''`, `E'…'` with backslash escapes, `$tag$…$tag$`), quoted
  identifiers (`"…"`), `--` line comments and `/* … */` block comments (nested, as in PostgreSQL);
- `::` is a cast, never a parameter; a positional `$1` is refused (it would collide with ours);
- `:` followed by a letter starts a parameter; the name is the longest run of letters, digits and
  `_` after it and must match PARAM_NAME_PATTERN (lowercase).
"""

from __future__ import annotations

from collections.abc import Iterator

from relatorios.protocol import PARAM_NAME_RE


class SqlParamError(ValueError):
    """A `:name` that is not a valid parameter name, or a literal or comment left open."""


def _word_char(ch: str) -> bool:
    return ch.isascii() and (ch.isalnum() or ch == "_")


def _dollar_tag(sql: str, i: int) -> str | None:
    """The `$tag$` opening a dollar-quoted string at sql[i], or None."""
    j = i + 1
    if j < len(sql) and (sql[j].isdigit() and sql[j].isascii()):
        return None  # $1 is a positional parameter, not a quote
    while j < len(sql) and _word_char(sql[j]):
        j += 1
    return sql[i : j + 1] if j < len(sql) and sql[j] == "$" else None


def _skip_quoted(sql: str, i: int, quote: str, backslash: bool) -> int:
    """Index after the literal or identifier opened at sql[i]."""
    j = i + 1
    while j < len(sql):
        if backslash and sql[j] == "\\":
            j += 2
            continue
        if sql[j] == quote:
            if j + 1 < len(sql) and sql[j + 1] == quote:
                j += 2
                continue
            return j + 1
        j += 1
    raise SqlParamError(f"literal aberto e não fechado ({quote})")


def _skip_block_comment(sql: str, i: int) -> int:
    depth, j = 0, i
    while j < len(sql):
        if sql.startswith("/*", j):
            depth, j = depth + 1, j + 2
        elif sql.startswith("*/", j):
            depth, j = depth - 1, j + 2
            if depth == 0:
                return j
        else:
            j += 1
    raise SqlParamError("comentário /* aberto e não fechado")


def _spans(sql: str) -> Iterator[tuple[int, int, str]]:
    """(start, end, name) of every parameter of `sql`, in order."""
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch == "'":
            escaped = i > 0 and sql[i - 1] in "eE" and (i < 2 or not _word_char(sql[i - 2]))
            i = _skip_quoted(sql, i, "'", backslash=escaped)
        elif ch == '"':
            i = _skip_quoted(sql, i, '"', backslash=False)
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif sql.startswith("/*", i):
            i = _skip_block_comment(sql, i)
        elif ch == "$" and (i == 0 or not _word_char(sql[i - 1])) and (tag := _dollar_tag(sql, i)):
            end = sql.find(tag, i + len(tag))
            if end < 0:
                raise SqlParamError(f"literal {tag} aberto e não fechado")
            i = end + len(tag)
        elif (
            ch == "$"
            and (i == 0 or not _word_char(sql[i - 1]))
            and (sql[i + 1 : i + 2] or "x") in "0123456789"
        ):
            raise SqlParamError("parâmetro posicional ($1): use :nome")
        elif sql.startswith("::", i):
            i += 2
        elif ch == ":" and i + 1 < n and sql[i + 1].isascii() and sql[i + 1].isalpha():
            j = i + 1
            while j < n and _word_char(sql[j]):
                j += 1
            name = sql[i + 1 : j]
            if not PARAM_NAME_RE.match(name):
                raise SqlParamError(f"nome de parâmetro inválido: :{name}")
            yield i, j, name
            i = j
        else:
            i += 1


def param_names(sql: str) -> list[str]:
    """The distinct parameter names of `sql`, in order of first appearance."""
    return list(dict.fromkeys(name for _, _, name in _spans(sql)))


def to_numbered(sql: str) -> tuple[str, list[str]]:
    """`sql` with each `:name` replaced by `$n` (n: the name's rank of first appearance), and the
    names in that order: the values are bound as parameters 1..len(names)."""
    names: dict[str, int] = {}
    parts: list[str] = []
    last = 0
    for start, end, name in _spans(sql):
        number = names.setdefault(name, len(names) + 1)
        parts += [sql[last:start], f"${number}"]
        last = end
    parts.append(sql[last:])
    return "".join(parts), list(names)
