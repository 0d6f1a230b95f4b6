"""The `relatorios` command: run the system's processes (and, later, talk to the API)."""

from __future__ import annotations

import argparse
import os
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="relatorios", description="Gerador de relatórios CSV.")
    sub = parser.add_subparsers(dest="comando", required=True, metavar="COMANDO")
    up = sub.add_parser("up", help="sobe Redis (se preciso), API e workers; Ctrl-C para tudo")
    up.add_argument("--workers", type=int, default=int(os.environ.get("WORKERS", "1")))
    up.add_argument("--worker", choices=("c", "python"), default=os.environ.get("WORKER", "c"))
    sub.add_parser("api", help="só a API (uvicorn, HOST/PORT)")
    worker = sub.add_parser("worker", help="um worker")
    kind = worker.add_mutually_exclusive_group()
    kind.add_argument("--c", dest="kind", action="store_const", const="c", help="o worker C")
    kind.add_argument("--python", dest="kind", action="store_const", const="python")
    sub.add_parser(
        "popular-banco",
        help="gera data/empresa.db (mesmas opções de popular_banco.py)",
        add_help=False,
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args_list = sys.argv[1:] if argv is None else argv
    if args_list[:1] == ["popular-banco"]:
        from relatorios.dbgen import main as dbgen_main

        return dbgen_main(args_list[1:])
    args = build_parser().parse_args(args_list)
    if args.comando == "up":
        from relatorios.supervisor import up

        return up(args.workers, args.worker)
    if args.comando == "api":
        import uvicorn

        from relatorios.settings import get_settings

        settings = get_settings()
        uvicorn.run("relatorios.api.app:app", host=settings.host, port=settings.port)
        return 0
    if args.comando == "worker":
        return run_worker(args.kind or "python")
    return 2


def run_worker(kind: str) -> int:
    if kind == "c":
        from relatorios.supervisor import C_WORKER

        os.execv(C_WORKER, [str(C_WORKER)])
    from relatorios.worker.loop import main as worker_main

    return worker_main()
