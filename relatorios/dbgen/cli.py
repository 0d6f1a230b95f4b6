"""`python popular_banco.py` and `relatorios popular-banco`: options in Portuguese, as the spec."""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from relatorios.dbgen.build import generate
from relatorios.dbgen.progress import milhares
from relatorios.protocol import POSTGRESQL_URL_PREFIXES

DEFAULT_PATH = Path("data/empresa.db")


def main(argv: list[str] | None = None) -> int:
    """Generate the database; 0 on success or when an existing one is kept, 2 on bad options."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.url is not None:
        return _to_postgres(parser, args)
    path: Path = args.saida
    if path.is_dir():
        parser.error(f"--saida {path} é uma pasta; informe o caminho do arquivo .db")
    if path.exists() and not args.force:
        print(f"{path} já existe: mantido como está (use --force para gerar de novo).")
        return 0
    started = time.perf_counter()
    try:
        with _sigterm_as_interrupt():
            generate(path, args.funcionarios, args.transacoes, args.seed, not args.sem_progresso)
    except KeyboardInterrupt:
        print(f"Interrompido: {path} não foi alterado.", file=sys.stderr)
        return 130
    except (OSError, sqlite3.Error) as error:
        print(f"Erro ao gerar {path}: {error}", file=sys.stderr)
        return 1
    elapsed = f"{time.perf_counter() - started:.1f}".replace(".", ",")
    size_mb = milhares(round(path.stat().st_size / 1_000_000))
    print(
        f"Banco gerado: {path} ({milhares(args.funcionarios)} funcionários, "
        f"{milhares(args.transacoes)} transações, {size_mb} MB) em {elapsed} s."
    )
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="popular_banco.py",
        description="Gera o banco SQLite de exemplo (departamentos, funcionários e transações) "
        "usado pelos relatórios. Mesma semente, mesmo banco.",
        add_help=False,
    )
    parser.add_argument("-h", "--help", action="help", help="mostra esta ajuda e sai")
    parser.add_argument(
        "--funcionarios", type=_at_least(1), default=5000, metavar="N",
        help="quantos funcionários gerar (padrão: 5000)",
    )  # fmt: skip
    parser.add_argument(
        "--transacoes", type=_at_least(0), default=5_000_000, metavar="N",
        help="quantas transações gerar (padrão: 5000000)",
    )  # fmt: skip
    parser.add_argument(
        "--seed", type=int, default=42, metavar="N",
        help="semente dos dados aleatórios; a mesma semente gera o mesmo banco (padrão: 42)",
    )  # fmt: skip
    parser.add_argument(
        "--saida", type=Path, default=Path(os.environ.get("DB_PATH") or DEFAULT_PATH),
        metavar="CAMINHO",
        help="arquivo a gerar (padrão: $DB_PATH, ou data/empresa.db)",
    )  # fmt: skip
    parser.add_argument(
        "--url", metavar="URL",
        help="carrega os mesmos dados em um PostgreSQL (postgresql://usuario:senha@servidor/banco)"
        " em vez de gerar o arquivo SQLite",
    )  # fmt: skip
    parser.add_argument(
        "--force", action="store_true",
        help="substitui o banco se ele já existir (sem isso, um banco existente é mantido)",
    )  # fmt: skip
    parser.add_argument(
        "--sem-progresso", action="store_true", help="não mostra a barra de progresso"
    )
    return parser


def _to_postgres(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from relatorios.dbgen.postgres import AlreadyLoaded, generate_postgres, redacted

    url: str = args.url
    if not url.startswith(POSTGRESQL_URL_PREFIXES):
        parser.error("--url deve começar com postgresql:// ou postgres://")
    where = redacted(url)
    started = time.perf_counter()
    try:
        with _sigterm_as_interrupt():
            generate_postgres(
                url, args.funcionarios, args.transacoes, args.seed, not args.sem_progresso,
                replace=args.force,
            )  # fmt: skip
    except AlreadyLoaded:
        print(
            f"{where} já tem as tabelas: mantidas como estão (use --force para carregar de novo)."
        )
        return 0
    except KeyboardInterrupt:
        print(f"Interrompido: {where} não foi alterado.", file=sys.stderr)
        return 130
    except Exception as error:  # psycopg.Error, OSError: psycopg is imported only on this path
        print(f"Erro ao carregar {where}: {str(error).strip()}", file=sys.stderr)
        return 1
    elapsed = f"{time.perf_counter() - started:.1f}".replace(".", ",")
    print(
        f"Banco carregado: {where} ({milhares(args.funcionarios)} funcionários, "
        f"{milhares(args.transacoes)} transações) em {elapsed} s."
    )
    return 0


def _at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"não é um número inteiro: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"deve ser no mínimo {minimum}, recebido {value}")
        return value

    return parse


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (docker stop, kill) unwinds like Ctrl-C, so the temporary file is removed."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
