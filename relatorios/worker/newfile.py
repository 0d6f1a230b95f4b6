"""How a worker creates its `.part` file, whatever the format (docs/security.md, finding 7)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

# A new file only: never through a symlink, never into a file that is already there.
CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
WRITE_BUFFER = 1 << 20


def open_new(path: Path) -> BinaryIO:
    """`path`, created for writing; raises OSError (FileExistsError, ELOOP) if anything is there."""
    return open(os.open(path, CREATE_FLAGS, 0o644), "wb", buffering=WRITE_BUFFER)
