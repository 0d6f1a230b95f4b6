"""What every part of one report run shares: its error, its callbacks, its batch size."""

from __future__ import annotations

from collections.abc import Callable

from relatorios.protocol import ERROR_TEXTS, ErrorCode

BATCH_ROWS = 1000

Progress = Callable[[int, int], None]
StopCheck = Callable[[], str | None]


class ReportError(Exception):
    """The attempt failed: `code` (ErrorCode) and a Portuguese `erro` for the task.

    `transient` errors (a locked database, an I/O error, a full disk) are worth retrying. The
    library's own message, if any, is `detail`: logged, never shown to users.
    """

    def __init__(
        self, code: ErrorCode, message: str = "", transient: bool = False, detail: str = ""
    ) -> None:
        super().__init__(message or ERROR_TEXTS[code])
        self.code = code
        self.transient = transient
        self.detail = detail


class Interrupted(Exception):
    """The stop callback asked to stop; `reason` is what it returned."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
