"""Generate `app/protocol.h`, the C worker's view of relatorios/protocol.py.

    python -m relatorios.protocol_header            # rewrite app/protocol.h
    python -m relatorios.protocol_header --check    # exit 1 if app/protocol.h is stale

The header is committed (the C build needs no Python) and `make protocol-header` regenerates it;
tests/test_protocol.py fails when it differs from what this module writes. Every constant, key,
state, field, counter and error code of the protocol reaches C only through this file.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

from relatorios import protocol
from relatorios.protocol import ERROR_TEXTS, Beat, Dead, ErrorCode, F, M, Stat, Status

HEADER = Path(__file__).resolve().parent.parent / "app" / "protocol.h"


def c_string(text: str) -> str:
    """A C string literal of `text` (UTF-8). JSON's escapes are C's for what we write."""
    return json.dumps(text, ensure_ascii=False)


def c_number(value: int | float) -> str:
    if isinstance(value, float) and not value.is_integer():
        return repr(value)
    number = int(value)
    return f"{number}LL" if abs(number) > 2**31 - 1 else str(number)


def constants(module: ModuleType) -> Iterator[str]:
    """PROTO_<NAME> for each UPPER_CASE int, float or str of the module (keys apart)."""
    for name, value in vars(module).items():
        if not name.isupper() or name.startswith("KEY_") or name.startswith("_"):
            continue
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            yield f"#define PROTO_{name} {c_number(value)}"
        elif isinstance(value, str):
            yield f"#define PROTO_{name} {c_string(value)}"


def keys(module: ModuleType) -> Iterator[str]:
    """KEY_<NAME>_FMT: printf formats whose arguments are the queue, then the id if any."""
    for name, value in vars(module).items():
        if name.startswith("KEY_") and isinstance(value, str):
            fmt = value.replace("{queue}", "%s").replace("{id}", "%s")
            yield f"#define {name}_FMT {c_string(fmt)}"


def members(prefix: str, holder: type) -> Iterator[str]:
    for name, value in vars(holder).items():
        if name.isupper() and isinstance(value, str):
            yield f"#define {prefix}_{name} {c_string(value)}"


def render() -> str:
    lines = [
        "/* protocol.h -- GENERATED from relatorios/protocol.py by `make protocol-header`.",
        " * Do not edit: change relatorios/protocol.py and regenerate (a test fails when stale).",
        " *",
        " * The only place of the C worker that spells a Redis key, a field of the task hash, a",
        " * task state, an error code or a protocol limit (docs/protocol.md). */",
        "#ifndef RELATORIOS_PROTOCOL_H",
        "#define RELATORIOS_PROTOCOL_H",
        "",
        "/* Constants: limits, timings, defaults and patterns (POSIX ERE, whole string). */",
        *constants(protocol),
        "",
        "/* Keys: every key starts with the queue name. Arguments: queue, then the id. */",
        *keys(protocol),
        "",
        "/* Task states (field `status`). */",
        *(f"#define STATUS_{s.name} {c_string(s.value)}" for s in Status),
        "",
        "/* Members of a queue message, a heartbeat and a dead letter. */",
        *members("M", M),
        *members("BEAT", Beat),
        *members("DEAD", Dead),
        "",
        "/* Fields of the task hash. */",
        *members("F", F),
        "",
        "/* Counters of the statistics hash. */",
        *members("STAT", Stat),
        "",
        "/* Error codes (field `erro_codigo`) and their default Portuguese texts. */",
        *(f"#define ERR_{c.name} {c_string(c.value)}" for c in ErrorCode),
        *(f"#define ERR_{c.name}_TEXT {c_string(ERROR_TEXTS[c])}" for c in ErrorCode),
        "",
        "#endif",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the header is stale")
    parser.add_argument("--output", type=Path, default=HEADER)
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.output.read_text("utf-8") if args.output.is_file() else ""
        if current != text:
            print(f"{args.output} is stale: run `make protocol-header`", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text, "utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
