"""Webhooks: which URLs may be called (the SSRF guard), how a notice is signed, and one delivery.

The guard (docs/operations.md, "Webhooks"): http or https only; the host is resolved and every
address it resolves to must be a public one (no loopback, private, link-local — where cloud
metadata services live —, shared, reserved, unspecified or multicast address), unless the host
or the address is listed in WEBHOOK_HOSTS_PERMITIDOS. The delivery then connects to the very
address that was checked (the URL's host goes in the Host header and, for https, in SNI and the
certificate check), so a DNS answer that changes between the check and the connection
(DNS rebinding) changes nothing. Redirects are never followed; timeouts are short.

Signature: header `X-Relatorios-Assinatura: t=<unix seconds>,v1=<hex>` where hex is
HMAC-SHA256(secret, "<t>.<body>"), the body being the exact bytes sent.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit, urlunsplit

import httpx

from relatorios.protocol import (
    MAX_URL,
    WEBHOOK_EVENT,
    WEBHOOK_EVENT_HEADER,
    WEBHOOK_SIGNATURE_HEADER,
)

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
SCHEMES = ("http", "https")
# What a schema can say of a notification URL (the rest needs DNS: check_url).
URL_PATTERN = r"^https?://[^\s/?#@]+([/?#]\S*)?$"
DEFAULT_PORTS = {"http": 80, "https": 443}


class UnsafeUrl(ValueError):
    """A notification URL that must not be called; the message (Portuguese) says why."""


class DeliveryFailed(Exception):
    """One delivery attempt failed (connection, timeout, or an answer other than 2xx)."""


@dataclass(frozen=True)
class Allowlist:
    """WEBHOOK_HOSTS_PERMITIDOS: host names, addresses and networks (CIDR), comma-separated."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IpNetwork, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Allowlist:
        hosts: set[str] = set()
        networks: list[IpNetwork] = []
        for item in (part.strip().lower() for part in text.split(",")):
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                hosts.add(item.rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    def allows_host(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.hosts

    def allows_address(self, address: IpAddress) -> bool:
        return any(address in network for network in self.networks)


@dataclass(frozen=True)
class Target:
    """A checked URL: what to connect to (`address`) and what the server is told (`url`)."""

    url: str
    scheme: str
    host: str
    port: int
    address: IpAddress

    def connect_url(self) -> str:
        """The URL with the checked address in place of the host name."""
        parts = urlsplit(self.url)
        literal = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        return urlunsplit(parts._replace(netloc=f"{literal}:{self.port}"))

    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


def _parts(url: str) -> tuple[SplitResult, str, int]:
    if len(url) > MAX_URL:
        raise UnsafeUrl(f"URL maior que {MAX_URL} caracteres")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeUrl("URL inválida") from None
    if parts.scheme not in SCHEMES:
        raise UnsafeUrl("URL deve começar com http:// ou https://")
    if not parts.hostname:
        raise UnsafeUrl("URL sem host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl("URL não pode conter usuário ou senha")
    return parts, parts.hostname, port or DEFAULT_PORTS[parts.scheme]


def check_url_syntax(url: str) -> str:
    """`url` if it is an http(s) URL with a host and no credentials; UnsafeUrl otherwise. No
    DNS and no address check (check_url does those)."""
    _parts(url)
    return url


def refused_reason(address: IpAddress) -> str | None:
    """Why a webhook may not reach `address`, or None for a public address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_unspecified:
        return "endereço não especificado"
    if address.is_loopback:
        return "endereço de loopback"
    if address.is_link_local:
        return "endereço link-local (metadados de nuvem)"
    if address.is_multicast:
        return "endereço multicast"
    if address.is_private:
        return "endereço de rede privada"
    if not address.is_global:
        return "endereço reservado ou não público"
    return None


def _resolve(host: str, port: int) -> list[IpAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise UnsafeUrl(f"host {host!r} não encontrado (DNS)") from None
    # getaddrinfo's sockaddr[0] is the address text (an IPv6 one may carry a %scope).
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def check_url(url: str, allowed: Allowlist, resolve: bool = True) -> Target:
    """Resolve and check a notification URL. Raises UnsafeUrl (Portuguese) when refused.

    Every address the host resolves to is checked (the one a client picks could be any).
    `resolve=False` checks without DNS (a host name passes; an address literal is judged):
    for request validation, which must not wait on DNS; the full check follows off the loop.
    """
    parts, host, port = _parts(url)
    if not resolve:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return Target(parts.geturl(), parts.scheme, host, port, ipaddress.ip_address("0.0.0.0"))
    addresses = _resolve(host, port)
    if not addresses:
        raise UnsafeUrl(f"host {host!r} não encontrado (DNS)")
    if not allowed.allows_host(host):
        for address in addresses:
            reason = refused_reason(address)
            if reason and not allowed.allows_address(address):
                raise UnsafeUrl(
                    f"URL recusada: {host} é {reason} ({address}); "
                    "libere-o em WEBHOOK_HOSTS_PERMITIDOS se for de confiança"
                )
    return Target(parts.geturl(), parts.scheme, host, port, addresses[0])


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The value of the X-Relatorios-Assinatura header for `body` sent at `timestamp`."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes, tolerance_s: float = 300) -> bool:
    """What a receiver does: recompute the HMAC and compare in constant time; refuse old
    timestamps (a replayed notice). The reference for docs/operations.md."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - timestamp) > tolerance_s:
        return False
    expected = signature(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, fields.get("v1", ""))


async def check_url_async(url: str, allowed: Allowlist) -> Target:
    """check_url in a thread: DNS never blocks an event loop."""
    return await asyncio.to_thread(check_url, url, allowed)


async def deliver(
    client: httpx.AsyncClient,
    target: Target,
    body: bytes,
    secret: str,
    timeout_s: float,
) -> int:
    """POST `body` to the checked target once; returns the status. Raises DeliveryFailed."""
    headers = {
        "Content-Type": "application/json",
        "Host": target.host_header(),
        WEBHOOK_SIGNATURE_HEADER: signature(secret, int(time.time()), body),
        WEBHOOK_EVENT_HEADER: WEBHOOK_EVENT,
    }
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    try:
        response = await client.post(
            target.connect_url(),
            content=body,
            headers=headers,
            timeout=timeout_s,
            follow_redirects=False,
            extensions=extensions,
        )
    except httpx.HTTPError as exc:
        raise DeliveryFailed(f"falha de conexão: {type(exc).__name__}") from exc
    if not 200 <= response.status_code < 300:
        raise DeliveryFailed(f"resposta HTTP {response.status_code}")
    return response.status_code
