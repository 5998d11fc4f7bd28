"""Which webhook destinations a delivery may reach, and the address it then connects to.

A webhook URL is an operator's input, and the worker calls it from inside our network. Without this check a URL
naming ``169.254.169.254`` (a cloud metadata service), ``127.0.0.1:5432`` or a host on the private network would
have the worker probe it for whoever registered the URL. Outside local runs every address the host resolves to must
be public (global unicast), and addresses that only wrap an IPv4 one (IPv4-mapped ``::ffff:0:0/96``, IPv4-compatible
``::/96``, NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``) are judged by the IPv4 address they carry; the local-use NAT64
prefix ``64:ff9b:1::/48`` is refused outright.

Check, then connect to what was checked: the host is resolved once per attempt and the call goes to that resolved
address (``Destination``), with the original name kept in the ``Host`` header and, for https, as the TLS server name
(SNI and certificate check). A name that answers differently a moment later (DNS rebinding) changes nothing: no second
lookup happens.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address only wraps (mapped, compatible, NAT64, 6to4), or None."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64 or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def non_public(address: str) -> bool:
    """Loopback, private, link-local, multicast, reserved, unspecified: anything but a global unicast address."""
    ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 scope id is not part of the address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _NAT64_LOCAL:
            return True
        ip = embedded_ipv4(ip) or ip
    return not ip.is_global or ip.is_multicast


@dataclass(frozen=True)
class Destination:
    """Where one attempt connects: ``url`` names the resolved address; ``headers`` and ``extensions`` keep the
    original host for HTTP and TLS."""

    url: str
    address: str
    headers: dict[str, str]
    extensions: dict[str, Any] = field(default_factory=dict)


def pin(url: str, address: str) -> Destination:
    """``url`` with its host replaced by ``address`` (already checked), the name kept for ``Host`` and SNI."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    literal = f"[{address}]" if ":" in address else address  # httpx takes an IPv6 zone id as it is
    netloc = f"{literal}:{parts.port}" if parts.port else literal
    original = parts.netloc.rpartition("@")[2]  # host[:port] as written (webhook URLs carry no credentials)
    extensions: dict[str, Any] = {"sni_hostname": host} if parts.scheme == "https" else {}
    pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    return Destination(pinned, address, {"Host": original}, extensions)


async def resolve(host: str) -> list[str]:
    """Every address ``host`` resolves to (an address literal resolves to itself), IPv4 first."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for info in sorted(infos, key=lambda i: i[0] != socket.AF_INET):
        address = str(info[4][0])
        if address not in addresses:
            addresses.append(address)
    return addresses


async def destination(url: str, *, allow_private: bool) -> tuple[Destination | None, str | None]:
    """Resolve the URL's host once: (where to connect, None), or (None, why the call is refused)."""
    host = urlsplit(url).hostname
    if not host:
        return None, "refused: the URL names no host"
    try:
        addresses = await resolve(host)
    except OSError as exc:
        return None, f"could not resolve {host}: {exc.strerror or type(exc).__name__}"
    if not addresses:
        return None, f"could not resolve {host}: no address"
    if not allow_private:
        for address in addresses:
            if non_public(address):
                return None, (
                    f"refused: {host} resolves to {address}, not a public address (WEBHOOK_ALLOW_PRIVATE_ADDRESSES)"
                )
    return pin(url, addresses[0]), None


async def refused_destination(url: str) -> str | None:
    """Why a call to ``url`` is refused outside local runs, or None to go ahead."""
    _, refused = await destination(url, allow_private=False)
    return refused
