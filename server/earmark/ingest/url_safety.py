"""Which URLs the server may pull: schemes, and hosts after DNS resolution.

By default a URL whose host resolves to a loopback, private, link-local, multicast, reserved
or cloud-metadata address is refused (the server must not be a way into its own network).
``allow_networks`` (``--url-allow-networks``) lists CIDRs that are allowed anyway.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from earmark.errors import InvalidParameter

ALLOWED_SCHEMES = ("http", "https", "rtmp", "rtmps", "rtsp", "rtsps")
MAX_URL_CHARS = 4096
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_networks(spec: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(part.strip(), strict=False)
            for part in spec.split(",") if part.strip()]


def _forbidden(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (address.is_loopback or address.is_private or address.is_link_local
            or address.is_multicast or address.is_reserved or address.is_unspecified)


def check_url(url: str, allow_networks: list,  # noqa: ANN001 - ipaddress networks
              *, schemes: tuple[str, ...] = ALLOWED_SCHEMES, param: str = "url") -> str:
    """Validates ``url`` (scheme, host, resolved addresses). Raises InvalidParameter naming
    ``param``; returns the URL unchanged. Blocks on DNS: call it from a thread."""
    if len(url) > MAX_URL_CHARS:
        raise InvalidParameter(f"{param} is too long", param=param)
    parts = urlsplit(url)
    if parts.scheme.lower() not in schemes:
        raise InvalidParameter(
            f"{param} scheme {parts.scheme or '(none)'!r} is not allowed; use one of "
            + ", ".join(schemes), param=param)
    host = parts.hostname
    if not host:
        raise InvalidParameter(f"{param} has no host", param=param)
    try:
        infos = socket.getaddrinfo(host, parts.port or 0, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise InvalidParameter(f"{param} host {host!r} does not resolve: {exc}",
                               param=param) from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if _forbidden(address) and not any(address in net for net in allow_networks):
            raise InvalidParameter(
                f"{param} host {host!r} resolves to {address}, a private or reserved address; "
                "such sources are refused", param=param)
    return url
