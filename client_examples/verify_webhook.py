"""Verify Earmark's webhooks (standard library only; copy it into your receiver).

Each webhook POST carries:
  Earmark-Timestamp: <unix seconds>
  Earmark-Signature: v1=<hex HMAC-SHA256 over "<timestamp>.<raw body>", keyed with your secret>
  Earmark-Delivery:  <delivery id; delivery is at-least-once, so dedupe on it>

Tagging-session webhooks (seed 001's shape) also carry the seed's in-body ``hmac``:
  base64(HMAC-SHA256(secret, "<time>." + the payload as compact JSON with sorted keys))
where ``time`` is the body's own (ms); ``verify_tag_webhook`` checks it and the time.

Your key's secret: ``curl -H "Authorization: Bearer $KEY" $EARMARK/v1/webhooks/secret``.

Run as a tiny receiver that prints each verified event:
  python verify_webhook.py --secret whsec_... --port 9000
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def verify(secret: str, headers: Mapping[str, str], body: bytes, *,
           tolerance_s: float = 300.0, now: float | None = None) -> bool:
    """True when the signature matches the raw body and the timestamp is recent.

    Use the body bytes exactly as received (before any JSON parsing). ``headers`` lookups are
    tried as given and in lower case.
    """
    def header(name: str) -> str:
        return headers.get(name) or headers.get(name.lower()) or ""

    timestamp, signature = header("Earmark-Timestamp"), header("Earmark-Signature")
    if not timestamp.isdigit() or not signature.startswith("v1="):
        return False
    if abs((now if now is not None else time.time()) - int(timestamp)) > tolerance_s:
        return False  # too old (or from the future): a replay
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body,
                        hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature[3:])


def verify_tag_webhook(secret: str, body: bytes, *, tolerance_s: float = 300.0,
                       now: float | None = None) -> bool:
    """True when a tagging-session webhook's ``hmac`` matches its payload and ``time``, and
    that time is recent (each retry is signed anew, so a retry is never too old)."""
    try:
        message = json.loads(body)
        time_ms, payload, given = message["time"], message["payload"], message["hmac"]
    except (ValueError, KeyError, TypeError):
        return False
    if not isinstance(time_ms, int) or not isinstance(given, str):
        return False
    if abs((now if now is not None else time.time()) - time_ms / 1000) > tolerance_s:
        return False  # a replay
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"),
                           ensure_ascii=False).encode()
    mac = hmac.new(secret.encode(), str(time_ms).encode() + b"." + canonical, hashlib.sha256)
    return hmac.compare_digest(base64.b64encode(mac.digest()).decode(), given)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--secret", required=True)
    parser.add_argument("--port", type=int, default=9000)
    args = parser.parse_args()
    seen: set[str] = set()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            ok = verify(args.secret, self.headers, body)
            if ok and b'"sender":"chatsight-webhooks"' in body:
                ok = verify_tag_webhook(args.secret, body)
            self.send_response(200 if ok else 401)
            self.end_headers()
            delivery = self.headers.get("Earmark-Delivery", "")
            if ok and delivery not in seen:
                seen.add(delivery)
                print(json.loads(body), flush=True)
            elif not ok:
                print("rejected: bad signature or stale timestamp", flush=True)

    ThreadingHTTPServer(("0.0.0.0", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
