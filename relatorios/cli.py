"""The `relatorios` command: run the system, and order and follow reports through the API."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from relatorios.protocol import COMPRESSIONS, DEFAULT_COMPRESSION, DEFAULT_FORMAT, FORMATS, Status

EXIT_ERROR = 1  # the API refused or failed, or the task failed
EXIT_USAGE = 2  # as argparse: the command asked for something that cannot exist


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="relatorios",
        description="Gerador de relatórios CSV. Os comandos de relatório falam com a API em "
        "RELATORIOS_API (padrão http://localhost:8000) com a chave de RELATORIOS_CHAVE.",
    )
    sub = parser.add_subparsers(dest="comando", required=True, metavar="COMANDO")
    add_report_commands(sub)
    up = sub.add_parser("up", help="sobe Redis (se preciso), API e workers; Ctrl-C para tudo")
    up.add_argument("--workers", type=int, default=int(os.environ.get("WORKERS", "1")))
    up.add_argument("--worker", choices=("c", "python"), default=os.environ.get("WORKER", "c"))
    sub.add_parser("api", help="só a API (uvicorn, HOST/PORT)")
    worker = sub.add_parser("worker", help="um worker")
    kind = worker.add_mutually_exclusive_group()
    kind.add_argument("--c", dest="kind", action="store_const", const="c", help="o worker C")
    kind.add_argument("--python", dest="kind", action="store_const", const="python")
    chaves = sub.add_parser(
        "chaves",
        help="chaves de API: criar, listar, revogar (fala com o Redis de REDIS_URL ou do make run)",
    )
    acoes = chaves.add_subparsers(dest="acao", required=True, metavar="AÇÃO")
    criar = acoes.add_parser("criar", help="cria uma chave e a mostra uma única vez")
    criar.add_argument("nome", metavar="NOME")
    criar.add_argument("--admin", action="store_true", help="vê e cancela as tarefas de todos")
    acoes.add_parser("listar", help="as chaves: nome, papel, criação e último uso")
    revogar = acoes.add_parser("revogar", help="revoga uma chave na hora")
    revogar.add_argument("nome", metavar="NOME")
    sub.add_parser(
        "popular-banco",
        help="gera data/empresa.db (mesmas opções de popular_banco.py)",
        add_help=False,
    )
    return parser


def add_report_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    gerar = sub.add_parser("gerar", help="pede um relatório (veja os tipos em `listar-tipos`)")
    gerar.add_argument("tipo", metavar="TIPO", help="ex.: GASTOS_POR_DEPARTAMENTO")
    gerar.add_argument(
        "--param",
        "-p",
        action="append",
        default=[],
        metavar="CHAVE=VALOR",
        help="um parâmetro do relatório (repita para vários)",
    )
    gerar.add_argument(
        "--formato",
        choices=FORMATS,
        default=DEFAULT_FORMAT,
        help="csv (padrão), csv_excel (abre direto no Excel) ou xlsx",
    )
    gerar.add_argument(
        "--compressao",
        choices=COMPRESSIONS,
        default=DEFAULT_COMPRESSION,
        help="gzip grava .csv.gz (só para os formatos CSV)",
    )
    gerar.add_argument(
        "--esperar", action="store_true", help="mostra o progresso e imprime o caminho do arquivo"
    )
    status = sub.add_parser("status", help="status de uma tarefa")
    status.add_argument("id", metavar="ID")
    status.add_argument("--json", action="store_true", help="a resposta da API, em JSON")
    listar = sub.add_parser("listar", help="lista as tarefas, mais novas primeiro")
    listar.add_argument("--status", choices=[s.value for s in Status])
    listar.add_argument("--tipo", metavar="TIPO")
    listar.add_argument("--limite", type=int, default=20, choices=range(1, 101), metavar="1-100")
    listar.add_argument("--json", action="store_true", help="a resposta da API, em JSON")
    sub.add_parser("listar-tipos", help="os tipos de relatório e seus parâmetros")
    baixar = sub.add_parser("baixar", help="baixa o CSV de uma tarefa concluída")
    baixar.add_argument("id", metavar="ID")
    baixar.add_argument("-o", "--saida", type=Path, metavar="ARQUIVO", help="onde gravar")
    cancelar = sub.add_parser("cancelar", help="cancela uma tarefa na fila ou em andamento")
    cancelar.add_argument("id", metavar="ID")


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

        from relatorios.api import FACTORY
        from relatorios.settings import get_settings

        settings = get_settings()
        uvicorn.run(
            FACTORY,
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.api_workers,
        )
        return 0
    if args.comando == "worker":
        return run_worker(args.kind or "python")
    if args.comando == "chaves":
        from relatorios.commands import chaves

        return chaves(args.acao, getattr(args, "nome", ""), getattr(args, "admin", False))
    return run_report_command(args)


def run_report_command(args: argparse.Namespace) -> int:
    """The commands that talk to the API; any failure is one line on stderr, no traceback."""
    from relatorios import commands
    from relatorios.client import ApiClient, ApiError, UsageError

    try:
        with ApiClient() as client:
            if args.comando == "gerar":
                output = (args.formato, args.compressao)
                return commands.gerar(client, args.tipo, args.param, args.esperar, output)
            if args.comando == "status":
                return commands.status(client, args.id, args.json)
            if args.comando == "listar":
                return commands.listar(client, args.status, args.tipo, args.limite, args.json)
            if args.comando == "listar-tipos":
                return commands.listar_tipos(client)
            if args.comando == "baixar":
                return commands.baixar(client, args.id, args.saida)
            if args.comando == "cancelar":
                return commands.cancelar(client, args.id)
    except UsageError as exc:
        commands.err.print(f"Erro: {exc}", markup=False)
        return EXIT_USAGE
    except ApiError as exc:
        commands.err.print(f"Erro: {exc}", markup=False)
        return EXIT_ERROR
    except KeyboardInterrupt:
        commands.err.print("Interrompido (a tarefa continua no servidor).")
        return 130
    return EXIT_USAGE


def run_worker(kind: str) -> int:
    if kind == "c":
        from relatorios.supervisor import C_WORKER

        os.execv(C_WORKER, [str(C_WORKER)])
    from relatorios.worker.loop import main as worker_main

    return worker_main()
