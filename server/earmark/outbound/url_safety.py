"""Which URLs the server may fetch (pulled sources, webhooks): schemes, and hosts after DNS
resolution.

By default a URL whose host resolves to a loopback, private, link-local, multicast, reserved
or cloud-metadata address is refused (the server must not be a way into its own network).
``allow_networks`` (``--url-allow-networks``) lists CIDRs that are allowed anyway. Every
address a name resolves to must pass. ``resolve_checked`` also returns the vetted address, so
a caller can connect to exactly that address: a DNS answer that changes between the check
and the connection (rebinding) then cannot send the request anywhere else.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import SplitResult, urlsplit, urlunsplit

from earmark.errors import InvalidParameter

ALLOWED_SCHEMES = ("http", "https", "rtmp", "rtmps", "rtsp", "rtsps")
MAX_URL_CHARS = 4096
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_networks(spec: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(part.strip(), strict=False)
            for part in spec.split(",") if part.strip()]


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries: mapped, 6to4 (2002::/16), Teredo, NAT64."""
    found = [a for a in (address.ipv4_mapped, address.sixtofour) if a is not None]
    if address.teredo is not None:
        found.extend(address.teredo)
    if address in _NAT64:
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def _forbidden(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if any(_forbidden(v4) for v4 in embedded):
            return True  # e.g. [2002:7f00:1::] is 6to4 for 127.0.0.1
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
    # Not globally routable covers loopback, private, link-local (cloud metadata), shared
    # carrier-grade NAT, documentation and reserved ranges.
    return (not address.is_global or address.is_multicast or address.is_reserved
            or address.is_unspecified)


def check_url(url: str, allow_networks: list,  # noqa: ANN001 - ipaddress networks
              *, schemes: tuple[str, ...] = ALLOWED_SCHEMES, param: str = "url") -> str:
    """Validates ``url`` (scheme, host, resolved addresses). Raises InvalidParameter naming
    ``param``; returns the URL unchanged. Blocks on DNS: call it from a thread."""
    resolve_checked(url, allow_networks, schemes=schemes, param=param)
    return url


def resolve_checked(url: str, allow_networks: list,  # noqa: ANN001 - ipaddress networks
                    *, schemes: tuple[str, ...] = ALLOWED_SCHEMES,
                    param: str = "url") -> tuple[SplitResult, str]:
    """Like ``check_url``; returns the URL's parts and the first vetted address."""
    if len(url) > MAX_URL_CHARS:
        raise InvalidParameter(f"{param} is too long", param=param)
    parts = urlsplit(url)
    if parts.scheme.lower() not in schemes:
        raise InvalidParameter(
            f"{param} scheme {parts.scheme or '(none)'!r} is not allowed; use one of "
            + ", ".join(schemes), param=param)
    if parts.username is not None or parts.password is not None:
        raise InvalidParameter(f"{param} must not carry credentials (user:password@)",
                               param=param)
    host = parts.hostname
    if not host:
        raise InvalidParameter(f"{param} has no host", param=param)
    try:
        infos = socket.getaddrinfo(host, parts.port or 0, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise InvalidParameter(f"{param} host {host!r} does not resolve: {exc}",
                               param=param) from None
    vetted: list[str] = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if _forbidden(address) and not any(address in net for net in allow_networks):
            raise InvalidParameter(
                f"{param} host {host!r} resolves to {address}, a private or reserved address; "
                "such sources are refused", param=param)
        vetted.append(str(address))
    if not vetted:
        raise InvalidParameter(f"{param} host {host!r} has no address", param=param)
    return parts, vetted[0]


def pinned_url(parts: SplitResult, address: str) -> tuple[str, str]:
    """(the URL with its host replaced by ``address``, the Host header to send)."""
    literal = f"[{address}]" if ":" in address else address
    netloc = literal + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, "")), parts.netloc
