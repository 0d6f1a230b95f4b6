"""The message rules of docs/protocol.md, as relatorios.protocol enforces them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from relatorios.protocol import (
    FILE_NAME_RE,
    MAX_MESSAGE_BYTES,
    InvalidMessage,
    Message,
    bind_value,
    file_name,
    new_task_id,
    parse_message,
)

TASK = "0b7f6b8e-5d0e-4a2b-9a53-2f4f5b6c7d8e"


def message(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "versao": 1,
        "task_id": TASK,
        "tipo_relatorio": "PAGAMENTOS_PENDENTES",
        "parametros": {},
        "arquivo": f"relatorio_PAGAMENTOS_PENDENTES_20261128T232324Z_{TASK[:8]}.csv",
    }
    base.update(changes)
    return base


def test_a_message_round_trips_through_json() -> None:
    task_id = new_task_id()
    sent = Message(
        task_id,
        "GASTOS_POR_DEPARTAMENTO",
        {"departamento": 'Ação, "x"'},
        file_name("GASTOS_POR_DEPARTAMENTO", task_id),
    )
    assert parse_message(sent.to_json()) == sent
    assert FILE_NAME_RE.match(sent.file)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "não é JSON"),
        (b"\xff\xfe", "não é JSON"),
        (b"[1, 2]", "não é um objeto"),
        (json.dumps(message(task_id="abc")).encode(), "task_id"),
        (json.dumps(message(task_id=TASK.upper())).encode(), "task_id"),
        (json.dumps(message(versao=2)).encode(), "versao"),
        (json.dumps(message(versao=True)).encode(), "versao"),
        (json.dumps(message(tipo_relatorio="../etc")).encode(), "tipo_relatorio"),
        (json.dumps(message(arquivo="../../etc/passwd")).encode(), "arquivo"),
        (json.dumps(message(arquivo="/tmp/x.csv")).encode(), "arquivo"),
        (json.dumps(message(parametros=[])).encode(), "parametros"),
        (json.dumps(message(parametros={"a": True})).encode(), "texto, número ou null"),
        (json.dumps(message(parametros={"a": [1]})).encode(), "texto, número ou null"),
        (json.dumps(message(parametros={"A": 1})).encode(), "nome de parâmetro"),
        (json.dumps(message(parametros={"a": "x" * 1025})).encode(), "1024 bytes"),
        (json.dumps(message(parametros={"a": 2**53 + 1})).encode(), "±2^53"),
        (json.dumps(message(parametros={f"p{i}": 1 for i in range(33)})).encode(), "32"),
        (b'{"task_id": "%s", "versao": 1, "versao": 1}' % TASK.encode(), "chave repetida"),
        (b'{"task_id": "%s", "versao": NaN}' % TASK.encode(), "NaN"),
        (b" " * (MAX_MESSAGE_BYTES + 1), "maior que"),
        (b"[" * 5000, "não é JSON"),
        (json.dumps(message(tipo_relatorio="PAGAMENTOS_PENDENTES\n")).encode(), "tipo_relatorio"),
        (json.dumps(message(task_id=TASK + "\n")).encode(), "task_id"),
        (json.dumps(message(parametros={"a": "x\u0000y"})).encode(), "NUL"),
        (json.dumps(message(parametros={"a": "\ud800"})).encode(), "surrogate"),
    ],
)
def test_invalid_messages_are_rejected_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(InvalidMessage) as caught:
        parse_message(raw)
    assert reason in caught.value.reason


def test_the_task_id_is_kept_when_the_rest_is_invalid() -> None:
    with pytest.raises(InvalidMessage) as caught:
        parse_message(json.dumps(message(tipo_relatorio=5)))
    assert caught.value.task_id == TASK


def test_unknown_top_level_members_are_ignored_for_forward_compatibility() -> None:
    assert parse_message(json.dumps(message(prioridade="alta"))).task_id == TASK


@pytest.mark.parametrize(
    ("value", "bound"), [(5.0, 5), (5.5, 5.5), (2.0**60, 2.0**60), ("5", "5"), (None, None), (7, 7)]
)
def test_integral_numbers_bind_as_integers(value: object, bound: object) -> None:
    result = bind_value(value)  # type: ignore[arg-type]
    assert result == bound and type(result) is type(bound)
