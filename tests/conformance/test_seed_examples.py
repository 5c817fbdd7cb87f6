"""Conformance to the seed documents, driven by their own examples (issue 22).

Each test reads ``../shared/seeds`` (``EARMARK_SEEDS`` overrides): the curl bodies, example
responses, webhook payloads and field tables in the documents, not copies of them, so a
reading of the documents and the code cannot drift apart. Without the seeds (a user's clone)
the tests skip and say why. Where a document contradicts itself, the test says which side
Earmark takes.
"""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from starlette.datastructures import QueryParams

from earmark.core import SAMPLE_RATE
from earmark.core.events import Word
from earmark.core.languages import ModelLanguages
from earmark.core.segments import Segment
from earmark.dialects.chatsight import TagSessionRequest, webhook_body, webhook_payload
from earmark.dialects.file_job_options import parse_job_options
from earmark.dialects.stream_jobs import StreamStartRequest, segment_callback, stream_options
from tests.conftest import ROOT, running_server
from tests.e2e.client import wav_bytes
from tests.e2e.webhook_receiver import WebhookReceiver

SEEDS = Path(os.environ.get("EARMARK_SEEDS", ROOT.parent / "shared" / "seeds"))


def seed(number: str) -> str:
    found = sorted(SEEDS.glob(f"{number}_*.txt"))
    if not found:
        pytest.skip(f"seed {number} not found in {SEEDS} (set EARMARK_SEEDS)")
    return found[0].read_text()


def json_blocks(text: str) -> list[Any]:
    """Every top-level JSON object in ``text`` that parses once ``//`` comments are gone."""
    out, depth, start = [], 0, None
    for i, ch in enumerate(text):
        if ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth:
            depth -= 1
            if depth == 0 and start is not None:
                block = re.sub(r"(?<=[\s,{\[])//[^\n]*", "", text[start:i + 1])
                try:
                    out.append(orjson.loads(block))
                except orjson.JSONDecodeError:
                    pass
    return out


def same_shape(ours: Any, theirs: Any, path: str = "") -> None:
    """Every key of the seed's example is in ours, with the same JSON type, recursively."""
    if isinstance(theirs, dict):
        assert isinstance(ours, dict), f"{path}: {type(ours).__name__}, not an object"
        for key, value in theirs.items():
            assert key in ours, f"{path}.{key} missing"
            same_shape(ours[key], value, f"{path}.{key}")
    elif isinstance(theirs, list):
        assert isinstance(ours, list), f"{path}: not an array"
        if theirs and ours and isinstance(theirs[0], dict):
            same_shape(ours[0], theirs[0], f"{path}[0]")
    elif isinstance(theirs, bool):
        assert isinstance(ours, bool), f"{path}: {ours!r} is not a boolean"
    elif isinstance(theirs, (int, float)):
        assert isinstance(ours, (int, float)) and not isinstance(ours, bool), \
            f"{path}: {ours!r} is not a number"
    elif isinstance(theirs, str):
        assert isinstance(ours, str), f"{path}: {ours!r} is not a string"


# ----------------------------------------------------------------- seeds 000 and 001
def test_seed_001_request_body_and_webhook_example() -> None:
    text = seed("001")
    body = orjson.loads(re.search(r"--data-raw '(\{.*?\})'", text, re.S).group(1))
    TagSessionRequest(**body)  # the curl body, as documented
    TagSessionRequest(**body, seedSentence="Pizza party live")  # and the table's 4th key
    example = next(b for b in json_blocks(text) if b.get("sender"))
    payload = webhook_payload(tags="Fun,Relaxed", undocumented="", convo_id="pizza_stream")
    ours = orjson.loads(webhook_body("secret", payload, 1620487495836))
    same_shape(ours, example)
    assert set(ours) == set(example)
    # The one addition, undocumentedTagNames, carries the phrases undocumentedTags flags.
    assert set(ours["payload"]) - set(example["payload"]) == {"undocumentedTagNames"}
    assert ours["sender"] == example["sender"] and ours["addon"] == example["addon"]
    assert len(base64.b64decode(ours["hmac"])) == len(base64.b64decode(example["hmac"])) == 32


def test_seed_000_formats_are_the_documented_list() -> None:
    text = seed("000")
    listed = re.search(r"accepted: (.*?)\. We support", text).group(1)
    assert {"m3u8", "mp4", "ogg", "AAC", "HLS"} <= {f.split(" ")[0] for f in
                                                    listed.replace(",", "").split()}
    docs = (ROOT / "docs" / "http_api.md").read_text()
    for name in ("HLS", "mp4", "ogg", "AAC", "ts"):
        assert name in docs


# ------------------------------------------------------------------------ seed 003
def test_seed_003_example_queries_parse() -> None:
    text = seed("003")
    languages = ModelLanguages()
    for query in sorted(set(re.findall(r"/v1/process/audio\?([^\"' ]+)", text))):
        options, _, name = parse_job_options(QueryParams(query), languages)
        assert name == "Business Meeting" and options["confidenceThreshold"] == 0.6
    # The example objects, each sent as the query parameters it documents.
    blocks = json_blocks(text)
    entities = next(b for b in blocks if "entities" in b)
    options, _, _ = parse_job_options(QueryParams({
        "detectEntities": "true", "entities": orjson.dumps(entities["entities"]).decode()}),
        languages)
    assert [e["customType"] for e in options["entities"]] == ["identify_people",
                                                              "identify_colour"]
    meta = next(b for b in blocks if "channelMetadata" in b)
    options, _, _ = parse_job_options(QueryParams({
        "enableSeparateRecognitionPerChannel": "true",
        "channelMetadata": orjson.dumps(meta["channelMetadata"]).decode()}), languages)
    assert [m["speaker"]["name"] for m in options["channelMetadata"]] == [
        "Robert Bartheon", "Arya Stark"]


# ------------------------------------------------------------------------ seed 004
def test_seed_004_request_example_and_callback_table() -> None:
    text = seed("004")
    request = next(b for b in json_blocks(text) if "audio_url" in b)
    assert request["audio_url"].startswith("rtmp://")
    options = stream_options(StreamStartRequest(**request), ModelLanguages())
    # The callback table: every documented field, with its type.
    types = {"string": str, "integer": int, "number": (int, float), "boolean": bool,
             "object": dict, "array": list}
    table = text[text.index("Callback Response Parameters"):text.index("\nStatus Codes\n")]
    rows = re.findall(r"^((?:data\.)?[a-z_]+(?:\.[a-z_]+)*)(string|integer|number|boolean|"
                      r"object|array)", table, re.M)
    assert len(rows) >= 25
    seg = Segment(0, 0, 5 * SAMPLE_RATE, (Word(" Hello", 0, 8000, 0.9),
                                          Word(" world.", 8000, 16000, 0.8)))
    ours = segment_callback("t1", seg, options, speech_model="tiny.en")
    for path, kind in rows:
        value: Any = ours
        for part in path.split("."):
            assert isinstance(value, dict) and part in value, f"{path} missing"
            value = value[part]
        if path == "code":
            # The table says string, the document's own JSON example a number (200):
            # Earmark follows the example, as receivers parse it.
            assert value == 200
            continue
        if value is None and path.startswith("data.transcript."):
            continue  # a feature left off: the hosted API sends null for its result
        assert isinstance(value, types[kind]) and not (
            kind in ("integer", "number") and isinstance(value, bool)), (path, value)


@pytest.fixture(scope="module")
def seed_server():
    with running_server(url_allow_networks="127.0.0.0/8") as server:
        yield server


def test_seed_004_start_answer_matches_its_example(seed_server) -> None:
    text = seed("004")
    blocks = json_blocks(text)
    request = next(b for b in blocks if "audio_url" in b)
    answer = next(b for b in blocks if b.get("code") == 200 and "data" in b)
    request = {**request, "audio_url": "rtmp://127.0.0.1:9/live/none"}
    with WebhookReceiver() as receiver, httpx.Client(base_url=seed_server.http,
                                                     timeout=30) as c:
        # "Configure your webhook URL in user settings before using this API."
        assert c.put("/v1/settings/webhook", json={"url": receiver.url}).status_code == 200
        r = c.post("/serve/api/v2/audio-stream/start", json=request,
                   headers={"Authorization": "any-key"})
        assert r.status_code == 200, r.text
        same_shape(r.json(), answer)
        task = r.json()["data"]["task_id"]
        c.post("/serve/api/v2/audio-stream/stop", json={"task_id": task})


def test_seed_002_response_example(seed_server, speak) -> None:
    text = seed("002")
    fields = dict(re.findall(r"^\s{4}(id|status|confidence|text|words|created) (.+?) (?:The|An)",
                             text, re.M))
    assert set(fields) == {"id", "status", "confidence", "text", "words", "created"}
    example = {k: orjson.loads(v.replace(", ...]", "]")) for k, v in fields.items()}
    audio = base64.b64encode(wav_bytes(speak("You know the demons on television."))).decode()
    with httpx.Client(base_url=seed_server.http, timeout=60) as c:
        r = c.post("/v2/stream", json={"audio_data": audio})
    assert r.status_code == 200, r.text
    ours = r.json()
    same_shape(ours, example)
    assert ours["status"] == example["status"] == "completed"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}", ours["created"])
    assert all(isinstance(w[k], int) for w in ours["words"] for k in ("start", "end"))


def test_seed_003_create_answer_and_webhook_example(seed_server, speak) -> None:
    text = seed("003")
    blocks = json_blocks(text)
    created = next(b for b in blocks if set(b) == {"conversationId", "jobId"})
    status = next(b for b in blocks if set(b) == {"jobId", "status"})
    query = re.search(r"/v1/process/audio\?([^\"' ]+)", text).group(1)
    with WebhookReceiver() as receiver, httpx.Client(base_url=seed_server.http,
                                                     timeout=60) as c:
        r = c.post(f"/v1/process/audio?{query}", content=wav_bytes(speak("Hello there.")),
                   params={"webhookUrl": receiver.url},
                   headers={"Content-Type": "audio/wav"})
        assert r.status_code == 201, r.text
        same_shape(r.json(), created)
        got = receiver.wait_for(lambda g: any(orjson.loads(x.body)["status"] == "completed"
                                              for x in g), timeout_s=120)
    for delivery in got:
        body = orjson.loads(delivery.body)
        same_shape(body, status)
        assert body["status"] in ("scheduled", "in_progress", "completed", "failed")
