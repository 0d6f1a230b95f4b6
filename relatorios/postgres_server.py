"""A private, real PostgreSQL server for the tests and the benchmarks (never for production).

`initdb` in a new temporary folder, `pg_ctl start` on a free port of 127.0.0.1 with password
(SCRAM) authentication, `pg_ctl stop` and the folder removed at the end. PostgreSQL refuses to
run as root, so when this process is root the server's commands run as the `postgres` system
user (Debian's `postgresql` package creates it) through `runuser`, and the folder is theirs.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

SUPERUSER = "postgres"
APT_HINT = "sudo apt-get install -y postgresql"


class PostgresNotFound(RuntimeError):
    pass


def bin_dir() -> Path:
    """The folder of initdb and pg_ctl: Debian keeps them out of PATH, per major version."""
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).resolve().parent  # a symlink on PATH: the folder of the real one
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=_major, reverse=True)
    if not found:
        raise PostgresNotFound(
            f"PostgreSQL (initdb, pg_ctl) não encontrado. Instale com: {APT_HINT}"
        )
    return Path(found[0]).parent


def _major(path: str) -> int:
    version = Path(path).parent.parent.name
    return int(version) if version.isdigit() else 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PrivatePostgres:
    """One running server: `url()` for a user of it, `stop()`, `restart()`."""

    folder: Path
    port: int
    password: str
    run_as: str | None  # the system user running the server's commands, when we are root
    durable: bool = False  # PostgreSQL's own fsync settings (benchmarks); off for tests

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def url(self, user: str = SUPERUSER, password: str | None = None, db: str = "postgres") -> str:
        secret = self.password if password is None else password
        return f"postgresql://{user}:{secret}@127.0.0.1:{self.port}/{db}"

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        prefix = ["runuser", "-u", self.run_as, "--"] if self.run_as else []
        return subprocess.run(
            [*prefix, *argv], check=check, capture_output=True, cwd=self.folder, timeout=120
        )

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder}"
        if not self.durable:
            # Test data, rebuilt every run: durability buys nothing here and costs seconds.
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        log = self.folder / "server.log"
        self._run(str(bin_dir() / "pg_ctl"), "-D", str(self.data), "-l", str(log), "-o", options,
                  "-w", "-t", "60", "start")  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                psycopg.connect(self.url(), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                time.sleep(0.1)
        raise RuntimeError(f"PostgreSQL did not accept connections: {log.read_text()[-2000:]}")

    def stop(self, mode: str = "fast") -> None:
        self._run(str(bin_dir() / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop",
                  check=False)  # fmt: skip

    def restart(self) -> None:
        self.stop()
        self.start()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def sql(self, statement: str, db: str = "postgres") -> None:
        """Run one statement as the superuser (set-up of roles, grants, databases)."""
        with psycopg.connect(self.url(db=db), autocommit=True) as conn:
            conn.execute(statement.encode())


def start(
    port: int | None = None, password: str = "relatorios-teste", durable: bool = False
) -> PrivatePostgres:
    """initdb a new cluster in a temporary folder and start it; the caller calls remove().
    `durable`: keep PostgreSQL's fsync defaults (a benchmark's server), else turn them off."""
    run_as = SUPERUSER if os.geteuid() == 0 else None
    folder = Path(tempfile.mkdtemp(prefix="relatorios-pg-"))
    if run_as:
        user = pwd.getpwnam(run_as)
        os.chown(folder, user.pw_uid, user.pw_gid)
    server = PrivatePostgres(folder, port or free_port(), password, run_as, durable)
    pwfile = folder / "pwfile"
    pwfile.write_text(password + "\n")
    if run_as:
        os.chown(pwfile, pwd.getpwnam(run_as).pw_uid, -1)
    try:
        server._run(str(bin_dir() / "initdb"), "-D", str(server.data), "-U", SUPERUSER,
                    "--pwfile", str(pwfile), "--auth-host=scram-sha-256", "--auth-local=trust",
                    "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")  # fmt: skip
        pwfile.unlink()
        server.start()
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return server
