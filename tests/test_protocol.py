"""The message rules of docs/protocol.md, as relatorios.protocol enforces them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from relatorios import protocol_header
from relatorios.protocol import (
    FILE_NAME_RE,
    MAX_MESSAGE_BYTES,
    ErrorCode,
    F,
    InvalidMessage,
    M,
    Message,
    Status,
    bind_value,
    file_name,
    format_real,
    new_task_id,
    output_problem,
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
        (
            json.dumps(message(prioridade="\ud800"), ensure_ascii=False).encode(
                "utf-8", "surrogatepass"
            ),
            "não é JSON",
        ),
        (b"[1, 2]", "não é um objeto"),
        (json.dumps(message(task_id="abc")).encode(), "task_id"),
        (json.dumps(message(task_id=TASK.upper())).encode(), "task_id"),
        (json.dumps(message(versao=3)).encode(), "versao"),
        (json.dumps(message(versao=2, formato="XLSX")).encode(), "formato"),
        (json.dumps(message(versao=2, compressao=None)).encode(), "compressao"),
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
        (json.dumps(message(parametros={"a": 2**53})).encode(), "±2^53"),
        (json.dumps(message(parametros={"a": -(2.0**53)})).encode(), "±2^53"),
        (json.dumps(message(parametros={"a": 1e300})).encode(), "±2^53"),
        (json.dumps(message(versao=1.5)).encode(), "versao"),
        (json.dumps(message(parametros={f"p{i}": 1 for i in range(33)})).encode(), "32"),
        (b'{"task_id": "%s", "versao": 1, "versao": 1}' % TASK.encode(), "chave repetida"),
        (b'{"task_id": "%s", "versao": NaN}' % TASK.encode(), "não é JSON"),
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
    ("value", "bound"), [(5.0, 5), (5.5, 5.5), (2.0**52, 2**52), ("5", "5"), (None, None), (7, 7)]
)
def test_integral_numbers_bind_as_integers(value: object, bound: object) -> None:
    result = bind_value(value)  # type: ignore[arg-type]
    assert result == bound and type(result) is type(bound)


def test_a_plain_csv_travels_as_version_1_and_another_format_as_version_2() -> None:
    """Older workers still serve a plain CSV; they refuse (never misread) a version-2 message."""
    plain = Message(TASK, "X", {}, file_name("X", TASK))
    assert json.loads(plain.to_json())["versao"] == 1 and "formato" not in plain.to_json()
    file = file_name("X", TASK, formato="xlsx")
    assert file.endswith(".xlsx")
    xlsx = Message(TASK, "X", {}, file, formato="xlsx")
    body = json.loads(xlsx.to_json())
    assert (body["versao"], body["formato"], body["compressao"]) == (2, "xlsx", "nenhuma")
    assert parse_message(xlsx.to_json()) == xlsx
    assert parse_message(json.dumps({**body, "formato": "ods"})).formato == "ods", (
        "a well-formed word the worker cannot write is refused later: formato_nao_suportado"
    )
    assert parse_message(json.dumps({**body, "versao": 1})).formato == "csv", "v1 is always csv"
    assert output_problem("xlsx", "gzip", "a.xlsx") and output_problem("csv", "gzip", "a.csv")
    assert output_problem("csv", "gzip", "a.csv.gz") is None
    with pytest.raises(ValueError):
        file_name("X", TASK, formato="xlsx", compressao="gzip")


def test_json_numbers_are_one_type_so_versao_may_be_written_as_a_real() -> None:
    # JSON has one number type: cJSON cannot tell 1 from 1.0, so neither may the protocol.
    assert parse_message(json.dumps(message(versao=1.0))).task_id == TASK
    params = parse_message(json.dumps(message(parametros={"a": 2**53 - 1}))).params
    assert params == {"a": 2**53 - 1}


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.1, "0.1"),
        (1.0, "1"),
        (-0.0, "-0"),
        (123.25, "123.25"),
        (1e16, "1e+16"),
        (1e-5, "1e-05"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1 / 3, "0.33333333333333331"),
        (5e-324, "4.94065645841247e-324"),
        (float("inf"), "inf"),
        (float("-inf"), "-inf"),
    ],
)
def test_reals_are_written_as_printf_15_or_17_significant_digits(value: float, text: str) -> None:
    assert format_real(value) == text
    assert float(text) == value, "the text reads back to the same double"


def test_the_c_header_is_generated_from_this_module_and_up_to_date() -> None:
    # `make protocol-header` writes app/protocol.h; a change to protocol.py without it fails here.
    assert protocol_header.HEADER.read_text("utf-8") == protocol_header.render(), (
        "app/protocol.h is stale: run `make protocol-header`"
    )


def test_the_c_header_carries_every_state_field_and_error_code() -> None:
    header = protocol_header.render()
    for value in [*Status, *ErrorCode, *(v for k, v in vars(F).items() if k.isupper())]:
        assert f'"{value}"' in header, value
    assert '#define KEY_TASK_FMT "%s:tarefa:%s"' in header
    assert f"#define PROTO_MAX_SAFE_INTEGER {2**53}LL" in header


# Words that also name other things than a task field: the `status` and `worker` subcommands of
# the CLI, /health's own `status`, the C worker's binary, `parametros` of the catalog's report
# descriptions (GET /tipos-relatorio), `task_id` as every log line and response names the id.
# Everything else is spelled only by relatorios/protocol.py (and app/protocol.h, generated).
OTHER_MEANINGS = {"status", "worker", "parametros", "task_id"}
QUOTED = re.compile(r"""["']([a-z][a-z_]*)["']""")


def protocol_words() -> set[str]:
    words = {str(s) for s in Status} | {str(c) for c in ErrorCode}
    for holder in (F, M):
        words |= {v for k, v in vars(holder).items() if k.isupper() and isinstance(v, str)}
    return words - OTHER_MEANINGS


def test_no_state_field_or_error_code_is_spelled_outside_the_protocol() -> None:
    repo = Path(__file__).resolve().parent.parent
    sources = [*(repo / "relatorios").rglob("*.py"), *(repo / "app").glob("*.[ch]")]
    words = protocol_words()
    spelled = [
        f"{path.relative_to(repo)}:{number}: {match.group(1)}"
        for path in sources
        if path.name not in ("protocol.py", "protocol.h")
        for number, line in enumerate(path.read_text("utf-8").splitlines(), 1)
        for match in QUOTED.finditer(line)
        if match.group(1) in words
    ]
    assert not spelled, "use relatorios.protocol (or app/protocol.h):\n" + "\n".join(spelled)
