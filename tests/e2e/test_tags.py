"""Tags on the live socket and private tag collections, against real servers."""

from __future__ import annotations

import asyncio
import tempfile

import httpx
import numpy as np
import pytest
import websockets

from earmark_eval import read_mono_16k, wer
from tests.conftest import evaldata_items, running_server, silence_pcm
from tests.e2e.client import stream, url

SPORTS = ("The match tonight was incredible. The striker scored twice in the first half, and "
          "the goalkeeper saved a penalty. The coach said the team played its best football of "
          "the season, and the fans sang until the final whistle.")
COOKING = ("Chop the onions and fry them in olive oil until soft. Add the garlic, the "
           "tomatoes and a pinch of salt, and let the sauce simmer while the pasta cooks in "
           "boiling water. Serve it with fresh basil and grated cheese.")


def pcm_of(speak, text: str) -> np.ndarray:
    return np.concatenate([silence_pcm(0.3), speak(text), silence_pcm(4.0)])


@pytest.mark.parametrize(("text", "topic"), [(SPORTS, "Sports"), (COOKING, "Food & Drink")])
async def test_a_topical_passage_gets_its_topic_tag(server, speak, text, topic):
    s = await stream(server.ws, pcm_of(speak, text), pace=4.0)
    assert s.close_code == 1000
    tags = s.of_type("Tags")
    assert tags, [m["type"] for m in s.messages]
    last = tags[-1]
    topics = [t["name"] for t in last["tags"] if t["kind"] == "topic"]
    assert topics and topics[0] == topic, last
    assert sum(t["kind"] == "mood" for t in last["tags"]) == 1
    assert all(0 <= t["score"] <= 1 for t in last["tags"])
    assert all(u["documented"] is False for u in last["undocumented_tags"])
    assert 0 <= last["start"] < last["end"] <= s.of_type("Metadata")[0]["duration"] + 0.1


async def test_tagging_false_sends_no_tags_and_a_lull_says_why(server, speak):
    off = await stream(server.ws, pcm_of(speak, SPORTS), pace=4.0, tagging=False)
    assert off.finals and not off.of_type("Tags")
    lull = await stream(server.ws, pcm_of(speak, "Hello? Can you hear me?"), pace=4.0)
    (tags,) = lull.of_type("Tags")
    assert tags["tags"] == [] and tags["reason"] == "insufficient_speech"


async def test_bad_tag_options_are_refused_before_the_upgrade(server):
    for query, param in [({"tagging": "maybe"}, "tagging"),
                         ({"tag_collection": "no such/name"}, "tag_collection"),
                         ({"tag_collection": "missing"}, "tag_collection"),
                         ({"seed_sentence": "x" * 501}, "seed_sentence")]:
        with pytest.raises(websockets.InvalidStatus) as info:
            async with websockets.connect(url(server.ws, **query)):
                pass
        assert info.value.response.status_code == 400
        assert param in info.value.response.body.decode()


async def test_default_catalogue_is_documented(server):
    async with httpx.AsyncClient(base_url=server.http) as http:
        body = (await http.get("/tags")).json()
    names = {t["name"] for t in body["tags"]}
    assert {"Sports", "Video Gaming", "Music", "Food & Drink", "Technology & Computing",
            "Politics", "Heated", "Fun", "Informative"} <= names
    assert all(t["kind"] in ("topic", "mood") and t["description"] for t in body["tags"])


COLLECTION = {
    "name": "cooking-show",
    "description": "tags for our cooking streams",
    "tags": [
        {"name": "Baking", "kind": "topic", "description": "Baking bread, cakes and pastry.",
         "examples": ["knead the dough", "bake the cake for forty minutes"]},
        {"name": "Sauces", "kind": "topic",
         "description": "Making sauces: tomato sauce, gravy, dressings.",
         "examples": ["let the sauce simmer", "fry the garlic and add the tomatoes"]},
        {"name": "Calm", "kind": "mood", "description": "Calm and relaxed."},
    ],
}


@pytest.fixture(scope="module")
def keyed_server():
    data = tempfile.TemporaryDirectory()
    with running_server(api_keys="key-a,key-b", data_dir=data.name) as s:
        s.data_dir = data.name
        yield s
    data.cleanup()


async def test_collections_crud_scoped_to_the_key_and_used_by_a_session(keyed_server, speak):
    a = {"Authorization": "Token key-a"}
    b = {"Authorization": "Token key-b"}
    async with httpx.AsyncClient(base_url=keyed_server.http) as http:
        assert (await http.get("/v1/tag-collections")).status_code == 401
        r = await http.post("/v1/tag-collections", json=COLLECTION, headers=a)
        assert r.status_code == 201, r.text
        assert r.json()["name"] == "cooking-show" and len(r.json()["tags"]) == 3
        listed = (await http.get("/v1/tag-collections", headers=a)).json()["collections"]
        assert [c["name"] for c in listed] == ["cooking-show"] and listed[0]["tags"] == 3
        # Another key sees nothing of it.
        assert (await http.get("/v1/tag-collections/cooking-show", headers=b)).status_code == 404
        assert (await http.get("/v1/tag-collections", headers=b)).json()["collections"] == []
        assert (await http.delete("/v1/tag-collections/cooking-show",
                                  headers=b)).status_code == 404
        # A session with key b cannot use it; with key a it can.
        with pytest.raises(websockets.InvalidStatus) as info:
            async with websockets.connect(url(keyed_server.ws, tag_collection="cooking-show"),
                                          additional_headers=b):
                pass
        assert info.value.response.status_code == 400
    s = await stream(keyed_server.ws, pcm_of(speak, COOKING), pace=4.0, headers=a,
                     tag_collection="cooking-show")
    last = s.of_type("Tags")[-1]
    assert [t["name"] for t in last["tags"]][:1] == ["Sauces"], last
    assert {t["name"] for t in last["tags"]} <= {"Baking", "Sauces", "Calm"}
    async with httpx.AsyncClient(base_url=keyed_server.http) as http:
        # Update replaces the tags; the update is what a new session gets.
        new = {"description": "v2", "tags": COLLECTION["tags"][:1]}
        r = await http.put("/v1/tag-collections/cooking-show", json=new, headers=a)
        assert r.status_code == 200 and [t["name"] for t in r.json()["tags"]] == ["Baking"]
        got = (await http.get("/v1/tag-collections/cooking-show", headers=a)).json()
        assert got["description"] == "v2" and got["updated"] >= got["created"]
        assert (await http.put("/v1/tag-collections/nope", json=new,
                               headers=a)).status_code == 404
        assert (await http.delete("/v1/tag-collections/cooking-show",
                                  headers=a)).status_code == 204
        assert (await http.get("/v1/tag-collections/cooking-show",
                               headers=a)).status_code == 404


async def test_bad_collections_get_clear_4xx(keyed_server):
    a = {"Authorization": "Bearer key-a"}
    tag = {"name": "T", "kind": "topic", "description": "d"}
    cases = [
        (b"{not json", 400, None),
        ({"name": "x"}, 400, "tags"),
        ({"name": "bad name!", "tags": [tag]}, 400, "name"),
        ({"name": "x", "tags": [{**tag, "kind": "colour"}]}, 400, "tags.0.kind"),
        ({"name": "x", "tags": [tag, {**tag, "name": "t"}]}, 400, "tags"),
        ({"name": "x", "tags": [{**tag, "name": f"T{i}"} for i in range(201)]}, 400, "tags"),
        ({"name": "x", "tags": [{**tag, "extra": 1}]}, 400, "tags.0.extra"),
    ]
    async with httpx.AsyncClient(base_url=keyed_server.http) as http:
        for body, status, param in cases:
            if isinstance(body, bytes):
                r = await http.post("/v1/tag-collections", content=body,
                                    headers={**a, "Content-Type": "application/json"})
            else:
                r = await http.post("/v1/tag-collections", json=body, headers=a)
            assert r.status_code == status, (body, r.text)
            err = r.json()
            assert err["code"] == "INVALID_PARAMETER" and err["message"], err
            if param:
                assert err["param"] == param, err
        ok = {"name": "dup", "tags": [tag]}
        assert (await http.post("/v1/tag-collections", json=ok, headers=a)).status_code == 201
        r = await http.post("/v1/tag-collections", json=ok, headers=a)
        assert r.status_code == 409 and r.json()["code"] == "CONFLICT"


async def test_collections_survive_a_restart(speak):
    data = tempfile.TemporaryDirectory()
    body = {"name": "kept", "tags": [{"name": "T", "kind": "topic", "description": "d"}]}
    try:
        with running_server(data_dir=data.name, tagging="false") as s:
            async with httpx.AsyncClient(base_url=s.http) as http:
                assert (await http.post("/v1/tag-collections", json=body)).status_code == 201
        with running_server(data_dir=data.name, tagging="false") as s:
            async with httpx.AsyncClient(base_url=s.http) as http:
                got = await http.get("/v1/tag-collections/kept")
            assert got.status_code == 200 and got.json()["tags"][0]["name"] == "T"
    finally:
        data.cleanup()


@pytest.mark.evaldata
async def test_real_speech_gets_tags_without_slowing_transcripts(server):
    """Real recordings: tags arrive and the finals come as fast as without tagging."""
    items = [it for it in evaldata_items("short_read") if it.reference][:6]
    audio = np.concatenate([np.concatenate([read_mono_16k(it.path), np.zeros(16000)])
                            for it in items])
    pcm = np.concatenate([(np.clip(audio, -1, 1) * 32767).astype(np.int16), silence_pcm(4)])
    on, off = await asyncio.gather(stream(server.ws, pcm, pace=2.0),
                                   stream(server.ws, pcm, pace=2.0, tagging=False))
    assert on.of_type("Tags") and not off.of_type("Tags")
    # Finals inside an utterance depend on when interim decodes land; the endpoints do not.
    ends = [[m for m in s.finals if m["speech_final"]] for s in (on, off)]
    assert len(ends[0]) == len(ends[1]) >= len(items)
    assert wer([off.final_text], [on.final_text]) <= 0.05, (on.final_text, off.final_text)
