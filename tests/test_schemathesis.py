"""An independent fuzzer (schemathesis) against the real API process and its own OpenAPI schema."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.conftest import ApiProcess, WorkerEnv

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    worker_env: WorkerEnv, start_api: Callable[[WorkerEnv], ApiProcess], tmp_path: Path
) -> None:
    api = start_api(worker_env)
    binary = str(SCHEMATHESIS) if SCHEMATHESIS.exists() else shutil.which("schemathesis")
    assert binary, "schemathesis not installed: run `make test`"
    result = subprocess.run(
        [
            binary,
            "run",
            f"{api.url}/openapi.json",
            "--checks",
            "all",
            "--max-examples",
            "40",
            "--seed",
            "20261128",
            "--workers",
            "2",
            "--max-failures",
            "5",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
