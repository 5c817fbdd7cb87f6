"""Downloads one audio file from a client's URL (Deepgram's ``{"url": ...}`` body) to disk.

The same outbound policy as pulled sources and webhooks: http(s) only, every address a name
resolves to must be public unless ``--url-allow-networks`` allows it, and the connection goes
to the vetted address (never re-resolved, so DNS rebinding cannot redirect it). Redirects are
followed by hand, each target vetted again. The body is counted as it arrives and cut off at
the upload limit.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urljoin

import httpx

from earmark.errors import BadAudio, InvalidParameter, PayloadTooLarge
from earmark.outbound.url_safety import parse_networks, pinned_url, resolve_checked

SCHEMES = ("http", "https")
MAX_REDIRECTS = 5
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 30.0  # between bytes; a whole download may take longer
TOTAL_TIMEOUT_S = 900.0


async def download(url: str, dest: Path, *, allow_networks: str, max_bytes: int,
                   param: str = "url") -> int:
    """Writes the body at ``url`` to ``dest``; returns its size. Raises InvalidParameter
    (refused or unreachable URL, an HTTP error), PayloadTooLarge, BadAudio (empty)."""
    networks = parse_networks(allow_networks)
    timeout = httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
        try:
            async with asyncio.timeout(TOTAL_TIMEOUT_S):
                for _ in range(MAX_REDIRECTS + 1):
                    parts, address = await asyncio.to_thread(
                        resolve_checked, url, networks, schemes=SCHEMES, param=param)
                    target, host = pinned_url(parts, address)
                    extensions = ({"sni_hostname": parts.hostname}
                                  if parts.scheme == "https" else {})
                    request = client.build_request("GET", target, headers={"Host": host},
                                                   extensions=extensions)
                    response = await client.send(request, stream=True)
                    try:
                        if response.is_redirect and "location" in response.headers:
                            url = urljoin(url, response.headers["location"])
                            continue
                        if response.status_code != 200:
                            raise InvalidParameter(
                                f"{param} answered HTTP {response.status_code}", param=param)
                        return await _save(response, dest, max_bytes)
                    finally:
                        await response.aclose()
        except TimeoutError:
            raise InvalidParameter(f"{param}: the download took over {TOTAL_TIMEOUT_S:g} s",
                                   param=param) from None
        except httpx.HTTPError as exc:
            raise InvalidParameter(f"{param} could not be fetched: {type(exc).__name__}",
                                   param=param) from None
    raise InvalidParameter(f"{param} redirected more than {MAX_REDIRECTS} times", param=param)


async def _save(response: httpx.Response, dest: Path, max_bytes: int) -> int:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"the file is {int(declared)} bytes; the limit is {max_bytes}")
    size = 0
    with dest.open("wb") as f:
        async for piece in response.aiter_bytes():
            size += len(piece)
            if size > max_bytes:
                raise PayloadTooLarge(f"the file is over the {max_bytes}-byte upload limit")
            f.write(piece)
    if size == 0:
        raise BadAudio("the URL's body is empty")
    return size
