"""A small HTTP client of the API, for the `relatorios` command (httpx).

Every failure becomes an ApiError whose message is one line in Portuguese, ready for a user:
the CLI prints it and exits, never with a traceback.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx

from relatorios.protocol import DEFAULT_COMPRESSION, DEFAULT_FORMAT, TASK_ID_RE, F, M

DEFAULT_API = "http://localhost:8000"
TIMEOUT_S = 10.0


class ApiError(Exception):
    """The API refused or failed a request; the message is for the user."""


class ApiUnreachable(ApiError):
    """Nothing answered at the API's address."""


class UsageError(ApiError):
    """The user asked for something that cannot exist (unknown type, bad id, bad parameter)."""


def api_url() -> str:
    return os.environ.get("RELATORIOS_API", DEFAULT_API).rstrip("/")


def check_task_id(task_id: str) -> str:
    normalized = task_id.strip().lower()
    if not TASK_ID_RE.match(normalized):
        raise UsageError(f"ID de tarefa inválido: {task_id!r} (esperado um UUID, veja `listar`)")
    return normalized


def api_key() -> str:
    return os.environ.get("RELATORIOS_CHAVE", "").strip()


class ApiClient:
    def __init__(self, base_url: str | None = None, key: str | None = None) -> None:
        self.base_url = base_url or api_url()
        key = api_key() if key is None else key
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.http = httpx.Client(base_url=self.base_url, timeout=TIMEOUT_S, headers=headers)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self.http.request(method, path, **kwargs)
        except httpx.ConnectError:
            raise ApiUnreachable(
                f"API inacessível em {self.base_url} (defina RELATORIOS_API ou rode "
                "`relatorios up`)"
            ) from None
        except httpx.TimeoutException:
            raise ApiUnreachable(f"a API em {self.base_url} não respondeu a tempo") from None
        except httpx.HTTPError as exc:
            raise ApiUnreachable(f"erro ao falar com a API em {self.base_url}: {exc}") from None

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        if response.is_success:
            return _body(response)
        raise error_for(response)

    # ---- the endpoints ----

    def catalog(self) -> list[dict[str, Any]]:
        data = self.json("GET", "/tipos-relatorio")
        return data if isinstance(data, list) else []

    def submit(
        self,
        report_type: str,
        params: dict[str, Any],
        output: tuple[str, str] = (DEFAULT_FORMAT, DEFAULT_COMPRESSION),
    ) -> dict[str, Any]:
        formato, compressao = output
        body = {M.TYPE: report_type, M.PARAMS: params, M.FORMAT: formato, M.COMPRESSION: compressao}
        return dict(self.json("POST", "/gerar-relatorio", json=body))

    def status(self, task_id: str) -> dict[str, Any]:
        return dict(self.json("GET", f"/relatorios/{check_task_id(task_id)}"))

    def list(self, status: str | None, report_type: str | None, limit: int) -> dict[str, Any]:
        query: dict[str, str | int] = {"limite": limit}
        if status:
            query["status"] = status
        if report_type:
            query["tipo"] = report_type
        return dict(self.json("GET", "/relatorios", params=query))

    def cancel(self, task_id: str) -> dict[str, Any]:
        return dict(self.json("DELETE", f"/relatorios/{check_task_id(task_id)}"))

    def download(self, task_id: str, target: Path | None) -> Path:
        """Stream the CSV to `target` (default: the report's file name, here). Returns the path."""
        task_id = check_task_id(task_id)
        if target is None:
            target = Path(self.status(task_id)[F.FILE])
        part = target.with_name(target.name + ".part")
        try:
            with self.http.stream("GET", f"/relatorios/{task_id}/download") as response:
                if not response.is_success:
                    response.read()
                    raise error_for(response)
                with open(part, "wb") as out:
                    for chunk in response.iter_bytes(1 << 16):
                        out.write(chunk)
            part.replace(target)
        except httpx.ConnectError:
            part.unlink(missing_ok=True)
            raise ApiUnreachable(f"API inacessível em {self.base_url}") from None
        except httpx.HTTPError as exc:
            part.unlink(missing_ok=True)
            raise ApiError(f"download interrompido: {exc}") from None
        except OSError as exc:
            part.unlink(missing_ok=True)
            raise ApiError(f"não foi possível gravar {target}: {exc.strerror or exc}") from None
        except ApiError:
            part.unlink(missing_ok=True)
            raise
        return target


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def error_for(response: httpx.Response) -> ApiError:
    """One line for a failed response: the API's own Portuguese message when it sent one."""
    data = _body(response)
    message = None
    if isinstance(data, dict):
        message = data.get("mensagem") or data.get("detail")
    if not isinstance(message, str):
        message = f"a API respondeu HTTP {response.status_code}"
    if response.status_code == 401:
        hint = "defina RELATORIOS_CHAVE" if not api_key() else "confira RELATORIOS_CHAVE"
        return ApiError(f"{message} ({hint}; crie uma com `relatorios chaves criar NOME`)")
    if response.status_code == 422:
        return UsageError(message)
    return ApiError(message)
