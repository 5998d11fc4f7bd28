"""Which webhook destinations a delivery may reach: outside local runs, public addresses only.

A webhook URL is an operator's input, and the worker calls it from inside our network. Without this check a URL
naming ``169.254.169.254`` (a cloud metadata service), ``127.0.0.1:5432`` or a host on the private network would
have the worker probe it for whoever registered the URL. The host is resolved just before each attempt and every
address it resolves to must be public (global unicast). A name that changes its answer between this check and the
connection (DNS rebinding) is not caught here: block private ranges at the egress firewall as well.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit


def non_public(address: str) -> bool:
    """Loopback, private, link-local, multicast, reserved, unspecified: anything but a global unicast address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 scope id is not part of the address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


async def refused_destination(url: str) -> str | None:
    """Why a call to ``url`` is refused (the address it resolves to that is not public), or None to go ahead."""
    host = urlsplit(url).hostname
    if not host:
        return "refused: the URL names no host"
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError as exc:
        return f"could not resolve {host}: {exc.strerror or type(exc).__name__}"
    for info in infos:
        address = str(info[4][0])
        if non_public(address):
            return f"refused: {host} resolves to {address}, not a public address (WEBHOOK_ALLOW_PRIVATE_ADDRESSES)"
    return None
