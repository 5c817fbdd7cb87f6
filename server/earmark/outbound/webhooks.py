"""Webhook signing and the dispatcher that drains the persistent outbox.

Signature (documented in docs/webhooks.md): each request carries
``Earmark-Timestamp: <unix seconds>`` and ``Earmark-Signature: v1=<hex>`` where the hex is
HMAC-SHA256, keyed with the API key's webhook secret, over ``<timestamp>.<exact body>``.
``Earmark-Delivery`` is the delivery id (delivery is at-least-once: receivers dedupe on it).

Each key's secret is derived from one master secret (``--webhook-secret``, or a random one
kept in the data directory), so it survives restarts and is never stored per key.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import secrets
import time
from pathlib import Path
from typing import Any

import httpx

from earmark import __version__
from earmark.config import Settings
from earmark.core.jobs import gives_up, retry_delay_s
from earmark.dialects.chatsight import restamp
from earmark.errors import InvalidParameter
from earmark.outbound.url_safety import check_url, parse_networks, pinned_url, resolve_checked
from earmark.store.webhooks import Delivery, Outbox

logger = logging.getLogger(__name__)

WEBHOOK_SCHEMES = ("http", "https")
MAX_IN_FLIGHT = 16
MAX_ERROR_CHARS = 300
MAX_RESPONSE_BYTES = 64 * 1024  # only the status matters; a receiver cannot make us read more


def load_master_secret(settings: Settings) -> bytes:
    if settings.webhook_secret:
        return settings.webhook_secret.encode()
    path = Path(settings.data_dir) / "webhook-master.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


def owner_secret(master: bytes, owner: str) -> str:
    """The webhook secret of one key (owner = sha256 of the key, or "local")."""
    return "whsec_" + hmac.new(master, b"webhook:" + owner.encode(), hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


async def post_pinned(client: httpx.AsyncClient, url: str, settings: Settings, body: bytes,
                      headers: dict[str, str]) -> int:
    """POSTs to the address the URL was vetted at (never re-resolved: DNS rebinding cannot
    redirect it), without following redirects, reading at most ``MAX_RESPONSE_BYTES`` of the
    answer. Returns the status code. Raises InvalidParameter for a refused URL."""
    parts, address = await asyncio.to_thread(
        resolve_checked, url, parse_networks(settings.url_allow_networks),
        schemes=WEBHOOK_SCHEMES, param="webhookUrl")
    target, host = pinned_url(parts, address)
    # TLS still checks the certificate against the URL's name (SNI), not the address.
    extensions = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
    request = client.build_request("POST", target, content=body,
                                   headers={**headers, "Host": host}, extensions=extensions)
    response = await client.send(request, stream=True, follow_redirects=False)
    try:
        read = 0
        if not response.is_stream_consumed:
            async for chunk in response.aiter_raw():
                read += len(chunk)
                if read >= MAX_RESPONSE_BYTES:
                    break
    finally:
        await response.aclose()
    return response.status_code


def check_webhook_url(url: str, settings: Settings, param: str) -> str:
    """Blocks on DNS: call from a thread."""
    return check_url(url, parse_networks(settings.url_allow_networks),
                     schemes=WEBHOOK_SCHEMES, param=param)


class WebhookDispatcher:
    """Sends due deliveries (at most ``MAX_IN_FLIGHT`` at once, in order per subject) and
    records every attempt; failures retry with doubling delays until the retry window ends."""

    def __init__(self, outbox: Outbox, settings: Settings, master: bytes) -> None:
        self.outbox = outbox
        self.settings = settings
        self.master = master
        self._wake = asyncio.Event()
        self._inflight: dict[int, asyncio.Task[None]] = {}
        # Deliveries whose attempt ended while the due list was being read: that list may
        # still show them as due (read before their result was recorded), so they are not
        # sent again from it.
        self._settled: set[int] = set()
        # Attempts made but not recorded (a full disk): each is held here and its delivery is
        # not sent again until the record is written (it used to be re-sent every tick).
        self._held: dict[int, tuple[Delivery, dict[str, Any]]] = {}
        self.sent = 0
        self.failed_attempts = 0

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        timeout = httpx.Timeout(self.settings.webhook_timeout_s)
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
            try:
                while True:
                    await self._tick(client)
            finally:
                for task in self._inflight.values():
                    task.cancel()
                await asyncio.gather(*self._inflight.values(), return_exceptions=True)

    async def _tick(self, client: httpx.AsyncClient) -> None:
        self._wake.clear()
        self._settled.clear()
        await self._record_held()
        room = MAX_IN_FLIGHT - len(self._inflight)
        due = await asyncio.to_thread(self.outbox.due, time.time(), MAX_IN_FLIGHT * 2) \
            if room > 0 else []
        busy_subjects = {d.subject for d in self._inflight_deliveries()}
        for delivery in due:
            if room <= 0:
                break
            if (delivery.id in self._inflight or delivery.id in self._settled
                    or delivery.id in self._held or delivery.subject in busy_subjects):
                continue
            busy_subjects.add(delivery.subject)
            task = asyncio.create_task(self._send(client, delivery))
            task.delivery = delivery  # type: ignore[attr-defined]
            self._inflight[delivery.id] = task
            task.add_done_callback(lambda t, i=delivery.id: self._done(i, t))
            room -= 1
        next_at = await asyncio.to_thread(self.outbox.next_due_at)
        wait_s = 5.0 if next_at is None else min(5.0, max(0.02, next_at - time.time()))
        if self._held:  # due but held: retry the records once a second, not in a spin
            wait_s = max(wait_s, 1.0)
        # A timer rather than wait_for: no helper task per tick (loop task counts stay flat).
        timer = asyncio.get_running_loop().call_later(wait_s, self._wake.set)
        try:
            await self._wake.wait()
        finally:
            timer.cancel()

    def _inflight_deliveries(self) -> list[Delivery]:
        return [t.delivery for t in self._inflight.values()]  # type: ignore[attr-defined]

    def _done(self, delivery_id: int, task: asyncio.Task[None]) -> None:
        self._inflight.pop(delivery_id, None)
        self._settled.add(delivery_id)
        self._wake.set()
        if not task.cancelled() and task.exception() is not None:
            logger.error("webhook %d: %r", delivery_id, task.exception())

    async def _record_held(self) -> None:
        for delivery_id, (delivery, result) in list(self._held.items()):
            try:
                await asyncio.to_thread(self.outbox.record, delivery, **result)
            except Exception:  # noqa: BLE001 - still full: try again next tick
                return
            del self._held[delivery_id]
            logger.info("webhook %d: its held attempt is recorded", delivery_id)

    async def _send(self, client: httpx.AsyncClient, delivery: Delivery) -> None:
        s = self.settings
        started = time.time()
        status: int | None = None
        error: str | None = None
        text = delivery.body
        if delivery.kind == "tag":  # the seed's in-body hmac signs the attempt's time too
            text = restamp(text, owner_secret(self.master, delivery.owner), int(started * 1000))
        body = text.encode()
        try:
            timestamp = int(started)
            headers = {
                "Content-Type": "application/json",
                "User-Agent": f"Earmark-Webhooks/{__version__}",
                "Earmark-Delivery": str(delivery.id),
                "Earmark-Timestamp": str(timestamp),
                "Earmark-Signature": sign(owner_secret(self.master, delivery.owner),
                                          timestamp, body),
            }
            # httpx's timeout is per read; a receiver dripping bytes meets this one.
            async with asyncio.timeout(s.webhook_timeout_s * 2):
                status = await post_pinned(client, delivery.url, s, body, headers)
            # Tagging-session webhooks count only an exact 200 (seed 001); others any 2xx.
            ok = status == 200 if delivery.kind == "tag" else 200 <= status < 300
            if not ok:
                error = f"HTTP {status}"
        except InvalidParameter as exc:
            error = exc.message
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS] or type(exc).__name__
        except TimeoutError:
            error = f"no complete answer within {s.webhook_timeout_s * 2:g} s"
        finished = time.time()
        delivered = error is None
        next_at: float | None = None
        if not delivered:
            self.failed_attempts += 1
            if not gives_up(finished - delivery.created, window_s=s.webhook_retry_window_h * 3600):
                next_at = finished + retry_delay_s(delivery.attempts + 1,
                                                   base_s=s.webhook_retry_base_s,
                                                   cap_s=s.webhook_retry_cap_s)
            else:
                logger.warning("webhook %d to %s abandoned after %d attempts", delivery.id,
                               delivery.url, delivery.attempts + 1)
        else:
            self.sent += 1
        result = dict(at=finished, duration_ms=(finished - started) * 1000,
                      status_code=status, error=error, delivered=delivered,
                      next_attempt_at=next_at, body=text)
        try:
            await asyncio.to_thread(self.outbox.record, delivery, **result)
        except Exception as exc:  # noqa: BLE001 - a full disk, a locked database
            self._held[delivery.id] = (delivery, result)
            logger.error("webhook %d: the attempt could not be recorded (%s); it is not sent "
                         "again until it is", delivery.id, type(exc).__name__)
