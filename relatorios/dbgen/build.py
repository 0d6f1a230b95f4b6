"""generate(): build a database into a temporary file beside the target, then rename it."""

from __future__ import annotations

import contextlib
import glob
import os
import re
import secrets
import sqlite3
from pathlib import Path

from relatorios.dbgen.load import load
from relatorios.dbgen.progress import make_progress


def generate(
    path: Path,
    employees: int = 5000,
    transactions: int = 5_000_000,
    seed: int = 42,
    progress: bool = True,
) -> None:
    """Write a new database at `path`, replacing any file there, atomically.

    The database is built in a temporary file in the same folder and renamed over `path` only
    when complete, so readers never see a half-built database and an interrupted or failed run
    leaves `path` as it was (the temporary file is removed; one orphaned by a SIGKILL is
    removed by the next run).
    Same arguments -> same content. Raises ValueError on bad counts.
    """
    if employees < 1:
        raise ValueError(f"employees must be at least 1, got {employees}")
    if transactions < 0:
        raise ValueError(f"transactions must not be negative, got {transactions}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_orphans(path)
    temp = _new_temp_file(path)
    try:
        con = sqlite3.connect(temp, isolation_level=None)
        try:
            with make_progress(progress) as bar:
                load(con, employees, transactions, seed, bar)
        finally:
            con.close()
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise


def _remove_orphans(path: Path) -> None:
    """Delete temporary files of earlier runs that were killed (their process is gone)."""
    for temp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        match = re.fullmatch(rf"\.{re.escape(path.name)}\.(\d+)-[0-9a-f]+\.tmp", temp.name)
        if match and not _running(int(match.group(1))):
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def _new_temp_file(path: Path) -> Path:
    """An empty, new file beside `path` (same file system, so os.replace is atomic).

    Not tempfile.mkstemp: its 0600 mode would carry over to the database, which workers running
    as other users (containers) must be able to read. Here the umask decides, as for any file.
    """
    while True:
        temp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
        try:
            os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return temp
