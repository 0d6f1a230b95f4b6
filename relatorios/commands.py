"""The `relatorios` subcommands that talk to the API (gerar, status, listar, baixar, cancelar),
and `chaves`, which manages API keys in Redis directly.

Human output goes to stdout (tables via Rich), progress bars to stderr, so
`path=$(relatorios gerar TIPO --esperar)` captures just the file path.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from relatorios.client import ApiClient, ApiError, UsageError
from relatorios.protocol import (
    DEFAULT_COMPRESSION,
    DEFAULT_FORMAT,
    FINAL_STATES,
    STATUS_LABELS,
    TASK_FIELDS,
    F,
    Status,
)

POLL_S = 0.5


def label(status: str) -> str:
    """A state as read in the middle of a sentence (`na fila`, `concluído`); unknown, as it is."""
    try:
        return STATUS_LABELS[Status(status)].lower()
    except ValueError:
        return status


# soft_wrap: a message or a path is one line, however narrow the terminal. Piped output gets
# room for a whole table instead of Rich's default 80 columns.
_PIPED_WIDTH = None if sys.stdout.isatty() or "COLUMNS" in os.environ else 200
out = Console(highlight=False, soft_wrap=True, width=_PIPED_WIDTH)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class TaskFailed(ApiError):
    """The task ended without a file (failed or cancelled)."""


def parse_params(pairs: list[str], report: dict[str, Any]) -> dict[str, Any]:
    """`chave=valor` strings -> the request's parameters, typed by the catalog."""
    kinds = {p["nome"]: p["tipo"] for p in report["parametros"]}
    params: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"parâmetro mal formado: {pair!r} (use --param chave=valor)")
        if name not in kinds:
            known = ", ".join(kinds) or "nenhum"
            raise UsageError(
                f"parâmetro desconhecido para {report['tipo']}: {name} (parâmetros: {known})"
            )
        params[name] = _typed(value, kinds[name])
    return params


def _typed(value: str, kind: str) -> Any:
    # An integer parameter that does not parse is sent as text: the API names the problem.
    if kind == "integer":
        try:
            return int(value)
        except ValueError:
            return value
    return value


def find_report(client: ApiClient, report_type: str) -> dict[str, Any]:
    catalog = client.catalog()
    wanted = report_type.strip().upper()
    for report in catalog:
        if report["tipo"] == wanted:
            return report
    valid = ", ".join(r["tipo"] for r in catalog)
    raise UsageError(f"tipo de relatório desconhecido: {report_type} (tipos válidos: {valid})")


def gerar(
    client: ApiClient,
    report_type: str,
    pairs: list[str],
    wait: bool,
    output: tuple[str, str] = (DEFAULT_FORMAT, DEFAULT_COMPRESSION),
) -> int:
    report = find_report(client, report_type)
    accepted = client.submit(report["tipo"], parse_params(pairs, report), output)
    task_id = accepted["task_id"]
    if not wait:
        print(task_id)
        err.print(f"Pedido aceito ({report['titulo']}). Acompanhe: relatorios status {task_id}")
        return 0
    err.print(f"Pedido aceito: {report['titulo']} (tarefa {task_id})")
    final = follow(client, task_id, report["titulo"])
    if final[F.STATUS] != Status.DONE:
        reason = f": {final[F.ERROR]}" if final.get(F.ERROR) else ""
        raise TaskFailed(f"tarefa {task_id} terminou como '{label(final[F.STATUS])}'{reason}")
    print(result_location(client, final))
    return 0


def follow(client: ApiClient, task_id: str, title: str) -> dict[str, Any]:
    """Poll the task until it ends, with a progress bar (rows; the total is unknown)."""
    columns = (
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[linhas]} linhas"),
        TextColumn("{task.fields[estado]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=False) as progress:
        bar = progress.add_task(title, total=None, linhas="0", estado=label(Status.QUEUED))
        while True:
            task = client.status(task_id)
            rows = int(task.get(F.ROWS) or 0)
            done = task[F.STATUS] in FINAL_STATES
            progress.update(
                bar,
                completed=rows,
                total=max(rows, 1) if done else None,
                linhas=f"{rows:,}".replace(",", "."),
                estado=label(task[F.STATUS]),
            )
            if done:
                return task
            time.sleep(POLL_S)


def result_location(client: ApiClient, task: dict[str, Any]) -> str:
    """The CSV's path when this machine shares EXPORT_DIR with the workers, else its URL."""
    local = Path(os.environ.get("EXPORT_DIR", "export")) / task[F.FILE]
    if local.is_file():
        return str(local.resolve())
    err.print(f"(arquivo no servidor; baixe com: relatorios baixar {task['task_id']})")
    return str(task.get("download_url") or f"{client.base_url}/relatorios/{task['task_id']}")


def status(client: ApiClient, task_id: str, as_json: bool) -> int:
    task = client.status(task_id)
    if as_json:
        out.print_json(data=task)
        return 0
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key in ("task_id", *(f.name for f in TASK_FIELDS), "download_url"):
        value = task.get(key)
        if value is None or value == "":
            continue
        if key == F.PARAMS:
            value = json.dumps(value, ensure_ascii=False)
        table.add_row(key, str(value))
    out.print(table)
    ended_without_file = task[F.STATUS] in FINAL_STATES and task[F.STATUS] != Status.DONE
    return 1 if ended_without_file else 0


def listar(
    client: ApiClient, status_filter: str | None, report_type: str | None, limit: int, as_json: bool
) -> int:
    page = client.list(status_filter, report_type, limit)
    if as_json:
        out.print_json(data=page)
        return 0
    tasks = page["tarefas"]
    if not tasks:
        out.print("Nenhuma tarefa.")
        return 0
    table = Table(title=f"{len(tasks)} de {page['total']} tarefas (mais novas primeiro)")
    table.add_column("ID", no_wrap=True, min_width=36)  # whole, to be copied
    for name in ("tipo", "estado", F.ROWS, "criado em", F.ERROR):
        table.add_column(name, overflow="fold")
    for task in tasks:
        table.add_row(
            task["task_id"],
            task[F.TYPE],
            STATUS_LABELS.get(task[F.STATUS], task[F.STATUS]),
            f"{task[F.ROWS]:,}".replace(",", "."),
            (task.get(F.CREATED) or "")[:19].replace("T", " "),
            task.get(F.ERROR) or "",
        )
    out.print(table)
    return 0


def baixar(client: ApiClient, task_id: str, target: Path | None) -> int:
    path = client.download(task_id, target)
    print(path.resolve())
    return 0


def cancelar(client: ApiClient, task_id: str) -> int:
    task = client.cancel(task_id)
    out.print(f"Tarefa {task_id}: {label(str(task.get(F.STATUS, 'cancelamento pedido')))}")
    return 0


def listar_tipos(client: ApiClient) -> int:
    for report in client.catalog():
        out.print(f"[bold]{report['tipo']}[/bold] — {escape(report['titulo'])}")
        out.print(f"  {report['descricao']}", markup=False)
        for param in report["parametros"]:
            need = "obrigatório" if param["obrigatorio"] else f"padrão {param.get('padrao')}"
            line = f"  --param {param['nome']}=…  ({param['tipo']}, {need}) {param['rotulo']}"
            out.print(line, markup=False)
        out.print()
    return 0


def chaves(action: str, name: str, admin: bool) -> int:
    """`relatorios chaves criar|listar|revogar`: in the Redis of the settings (REDIS_URL, or
    make run's private one, found through its URL file in the state folder)."""
    import redis

    from relatorios.apikeys import KeyProblem, create_key, list_keys, revoke_key
    from relatorios.protocol import K, Keys
    from relatorios.settings import get_settings

    settings = get_settings()
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True, socket_timeout=5)
    keys = Keys(settings.queue_name)
    try:
        if action == "criar":
            secret = create_key(client, keys, name, admin)
            err.print(f"Chave {name!r} criada ({'admin' if admin else 'usuario'}). Guarde-a: ela "
                      "não será mostrada de novo.", markup=False)  # fmt: skip
            print(secret)
        elif action == "listar":
            rows = list_keys(client, keys)
            if not rows:
                out.print("Nenhuma chave.")
                return 0
            table = Table()
            for column in ("nome", "papel", "criada em", "último uso"):
                table.add_column(column)
            for row in rows:
                table.add_row(
                    row.get(K.NAME, ""),
                    row.get(K.ROLE, ""),
                    row.get(K.CREATED, "")[:19].replace("T", " "),
                    (row.get(K.LAST_USED) or "nunca")[:19].replace("T", " "),
                )
            out.print(table)
        elif action == "revogar":
            if not revoke_key(client, keys, name):
                err.print(f"Erro: não há chave chamada {name!r}", markup=False)
                return 1
            err.print(f"Chave {name!r} revogada.", markup=False)
    except KeyProblem as exc:
        err.print(f"Erro: {exc}", markup=False)
        return 2
    except redis.RedisError as exc:
        err.print(
            f"Erro: Redis inacessível ({type(exc).__name__}); defina REDIS_URL ou rode `make run`",
            markup=False,
        )
        return 1
    finally:
        client.close()
    return 0
