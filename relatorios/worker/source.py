"""Where a report's rows come from: the source the settings name (docs/protocol.md, "Sources").

SQLite (DB_PATH) by default, PostgreSQL when DATABASE_URL is set. Both read one catalog query
read-only and hand its rows over in batches; export.py does not know which one it drives.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from relatorios.protocol import SOURCE_POSTGRESQL, ParamValue
from relatorios.settings import Settings
from relatorios.worker.report import StopCheck


class Source(Protocol):
    """One query: `run()` it (errors come before any row), then `columns` and `batches()`;
    `stopped` says why `stop` interrupted it; always `close()`."""

    name: str
    columns: list[str]
    stopped: str | None

    def run(self, sql: str, params: dict[str, ParamValue]) -> None: ...

    def batches(self) -> Iterator[list[Any]]: ...

    def close(self) -> None: ...


def open_source(settings: Settings, stop: StopCheck) -> Source:
    """A connection to the configured database. Raises ReportError when it cannot be opened."""
    if settings.source == SOURCE_POSTGRESQL:
        from relatorios.worker.source_postgres import PostgresSource

        return PostgresSource(settings.database_url, settings.statement_timeout_s, stop)
    from relatorios.worker.source_sqlite import SqliteSource

    return SqliteSource(settings.db_path, stop)
