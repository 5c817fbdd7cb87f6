"""Seed 003's query parameters as the seed's own Node example sends them (``qs`` brackets)."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from starlette.datastructures import QueryParams

from earmark.core.languages import ModelLanguages
from earmark.dialects.file_job_options import parse_job_options
from earmark.errors import InvalidParameter


def parse(query: str):  # noqa: ANN201
    return parse_job_options(QueryParams(query), ModelLanguages())


def test_bracket_arrays_and_objects_read_as_lists_and_json() -> None:
    # What Node's request/qs writes for the seed's params object.
    query = ("name=Business%20Meeting&customVocabulary%5B0%5D=Platform"
             "&customVocabulary%5B1%5D=Discussion&customVocabulary%5B2%5D=Targets"
             "&confidenceThreshold=0.6&enableSeparateRecognitionPerChannel=true"
             "&channelMetadata%5B0%5D%5Bchannel%5D=1"
             "&channelMetadata%5B0%5D%5Bspeaker%5D%5Bname%5D=Robert%20Bartheon"
             "&channelMetadata%5B1%5D%5Bchannel%5D=2"
             "&channelMetadata%5B1%5D%5Bspeaker%5D%5Bname%5D=Arya")
    options, _, name = parse(query)
    assert name == "Business Meeting"
    assert options["customVocabulary"] == ["Platform", "Discussion", "Targets"]
    meta = options["channelMetadata"]
    assert [(m["channel"], m["speaker"]["name"]) for m in meta] == [(1, "Robert Bartheon"),
                                                                    (2, "Arya")]
    # The same as the repeated and JSON forms.
    same, _, _ = parse(urlencode([("customVocabulary", "Platform"),
                                  ("customVocabulary", "Discussion"),
                                  ("customVocabulary", "Targets")]))
    assert same["customVocabulary"] == options["customVocabulary"]
    empty_brackets, _, _ = parse("customVocabulary%5B%5D=a&customVocabulary%5B%5D=b")
    assert empty_brackets["customVocabulary"] == ["a", "b"]


@pytest.mark.parametrize("query", ["nosuch%5B0%5D=x", "customVocabulary%5B0%5D=a&"
                                   "customVocabulary%5B0%5D%5Bx%5D=b"])
def test_bad_bracket_parameters_are_named(query: str) -> None:
    with pytest.raises(InvalidParameter):
        parse(query)
