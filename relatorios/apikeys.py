"""API keys (docs/security.md): who may call the API, and as whom.

A key is `secrets.token_urlsafe(32)` (256 random bits), shown once when created and stored only as
its SHA-256: the hash `<queue>:chave:<sha256>` holds its name, role, creation and last-use times
(and optional quota overrides), and `<queue>:chaves` maps each name to its hash, so a key is
revoked at once by name. The CLI (`relatorios chaves`) and `make run` manage keys with the
synchronous functions here; the API looks keys up with `TaskStore.api_key()`.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

import redis

from relatorios.protocol import K, Keys, Role, now_iso

KEY_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}\Z"
KEY_NAME_RE = re.compile(KEY_NAME_PATTERN)
# Longer than any key we make, and a bound on what a request may make us hash.
MAX_SECRET = 256


class KeyProblem(Exception):
    """A key operation that cannot be done (the message is for the user, in Portuguese)."""


@dataclass(frozen=True)
class ApiKey:
    name: str
    role: Role
    fields: dict[str, str]

    @property
    def admin(self) -> bool:
        return self.role == Role.ADMIN

    def quota(self, field: str, default: int) -> int:
        """A quota of this key: its own override, else `default`."""
        value = self.fields.get(field, "")
        return int(value) if value.isdigit() else default


def key_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def create_key(client: redis.Redis, keys: Keys, name: str, admin: bool = False) -> str:
    """Create the key `name` and return its secret (shown once, never stored)."""
    if not KEY_NAME_RE.match(name):
        raise KeyProblem(
            f"nome de chave inválido: {name!r} (letras, números, _ . @ -; até 64 caracteres)"
        )
    secret = secrets.token_urlsafe(32)
    digest = key_hash(secret)
    if not client.hsetnx(keys.api_key_names, name, digest):
        raise KeyProblem(f"já existe uma chave chamada {name!r} (revogue-a antes)")
    role = Role.ADMIN if admin else Role.USER
    client.hset(
        keys.api_key(digest), mapping={K.NAME: name, K.ROLE: role.value, K.CREATED: now_iso()}
    )
    return secret


def list_keys(client: redis.Redis, keys: Keys) -> list[dict[str, str]]:
    """Every key's fields (never its secret, which is not stored), sorted by name."""
    names: dict[str, str] = {str(k): str(v) for k, v in client.hgetall(keys.api_key_names).items()}
    rows = []
    for name in sorted(names):
        fields = client.hgetall(keys.api_key(names[name]))
        rows.append({str(k): str(v) for k, v in fields.items()})
    return [r for r in rows if r]


def revoke_key(client: redis.Redis, keys: Keys, name: str) -> bool:
    """Revoke `name` at once; False if there is no such key."""
    digest = client.hget(keys.api_key_names, name)
    if digest is None:
        return False
    pipe = client.pipeline(transaction=True)
    pipe.delete(keys.api_key(str(digest)))
    pipe.hdel(keys.api_key_names, name)
    pipe.execute()
    return True


def key_exists(client: redis.Redis, keys: Keys, name: str) -> bool:
    return bool(client.hexists(keys.api_key_names, name))
