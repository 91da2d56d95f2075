"""
The structural difference between two recordings: real corpus cassettes compared with themselves
and with copies edited the way a provider change (or a mere re-recording) would edit them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmcassette._shape import InteractionShape, document_shapes
from llmcassette._shape_diff import ShapeChange, ShapeDiff, diff_shapes
from llmcassette._storage import load_cassette
from tests import corpus

OPENAI_STREAM = "pydantic-ai/openai/test_run_stream_sync_streams_real_model.yaml"
ANTHROPIC_STREAM = "openllmetry/anthropic/test_anthropic_tools_streaming_legacy.yaml"
OPENAI_JSON = "pydantic-ai/openai/test_openai_tool_output.yaml"

needs_corpus = pytest.mark.skipif(corpus.CORPUS is None, reason=corpus.MISSING_REASON)

Edit = Callable[[list[dict[str, Any]]], None]


def _shapes(path: Path) -> list[InteractionShape]:
    return document_shapes(load_cassette(path), path=path)


def _diff_edited(tmp_path: Path, rel: str, edit: Edit) -> ShapeDiff:
    original = corpus.corpus_path(rel)
    data = yaml.safe_load(original.read_text(encoding="utf-8"))
    edit(data["interactions"])
    copy = tmp_path / "edited.yaml"
    copy.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return diff_shapes(_shapes(original), _shapes(copy))


def _lines(result: ShapeDiff) -> list[str]:
    return [change.line() for change in result.changes]


def _edit_sse(index: int, change: Callable[[str], str]) -> Edit:
    def edit(interactions: list[dict[str, Any]]) -> None:
        body = interactions[index]["response"]["body"]
        body["string"] = change(body["string"])

    return edit


@pytest.mark.parametrize("rel", corpus.params())
def test_a_recording_has_the_shape_of_itself(rel: str) -> None:
    shapes = _shapes(corpus.corpus_path(rel))
    result = diff_shapes(shapes, shapes)
    assert not result.changed, _lines(result)
    assert (result.paired, result.only_a, result.only_b) == (len(shapes), 0, 0)
    noun = "interaction" if len(shapes) == 1 else "interactions"
    assert result.summary() == f"Same shape: {len(shapes)} {noun} paired, no structural change."


@needs_corpus
def test_a_re_recording_with_other_text_ids_and_times_has_the_same_shape(tmp_path: Path) -> None:
    def reword(body: str) -> str:
        body = re.sub(r'"content":"[^"]+"', '"content":"Something else entirely, and longer too"', body)
        body = re.sub(r'"id":"chatcmpl-\w+"', '"id":"chatcmpl-OTHER123"', body)
        body = re.sub(r'"created":\d+', '"created":1999999999', body)
        return body.replace("fp_", "fp_new")

    def edit(interactions: list[dict[str, Any]]) -> None:
        for interaction in interactions:
            body = interaction["response"]["body"]
            body["string"] = reword(body["string"])
            interaction["response"]["headers"]["openai-processing-ms"] = ["9"]
            interaction["request"]["parsed_body"]["messages"][0]["content"] = "Another question"

    result = _diff_edited(tmp_path, OPENAI_STREAM, edit)
    assert not result.changed, _lines(result)


@needs_corpus
def test_a_new_header_is_reported(tmp_path: Path) -> None:
    def edit(interactions: list[dict[str, Any]]) -> None:
        interactions[1]["response"]["headers"]["x-new-quota"] = ["5"]
        interactions[1]["response"]["headers"]["content-length"] = ["100"]  # transport: not shape

    result = _diff_edited(tmp_path, OPENAI_STREAM, edit)
    assert _lines(result) == ["+ header x-new-quota appeared in interaction 1 (POST /v1/chat/completions)"]
    assert result.summary() == "1 structural change in 1 of 2 paired interactions."


@needs_corpus
def test_a_renamed_event_type_is_reported(tmp_path: Path) -> None:
    def rename(body: str) -> str:
        return body.replace("event: ping", "event: heartbeat").replace(
            '"type": "ping"', '"type": "heartbeat"'
        )

    result = _diff_edited(tmp_path, ANTHROPIC_STREAM, _edit_sse(0, rename))
    assert _lines(result) == [
        "+ event type 'heartbeat' appeared in interaction 0 (POST /v1/messages)",
        "- event type 'ping' vanished in interaction 0 (POST /v1/messages)",
    ]


@needs_corpus
def test_a_field_that_changes_type_is_reported(tmp_path: Path) -> None:
    def retype(body: str) -> str:
        # One chunk reports its fingerprint as a number: the path now holds two types.
        return body.replace('"system_fingerprint":"fp_d0469e1700"', '"system_fingerprint":17', 1)

    result = _diff_edited(tmp_path, OPENAI_STREAM, _edit_sse(0, retype))
    assert _lines(result) == [
        "~ field system_fingerprint changed type str -> number|str"
        " in 'chat.completion.chunk' events of interaction 0 (POST /v1/chat/completions)"
    ]
    (change,) = result.changes
    assert (change.kind, change.subject, change.event, change.before, change.after) == (
        "event-field",
        "system_fingerprint",
        "chat.completion.chunk",
        "str",
        "number|str",
    )


@needs_corpus
def test_a_missing_done_marker_is_reported_once_as_a_type_and_once_as_the_end(tmp_path: Path) -> None:
    result = _diff_edited(
        tmp_path, OPENAI_STREAM, _edit_sse(1, lambda body: body.replace("data: [DONE]\n\n", ""))
    )
    assert _lines(result) == [
        "- event type '[DONE]' vanished in interaction 1 (POST /v1/chat/completions)",
        "~ last event changed '[DONE]' -> 'chat.completion.chunk'"
        " in interaction 1 (POST /v1/chat/completions)",
    ]


@needs_corpus
def test_a_vanished_object_is_one_change_not_one_per_field(tmp_path: Path) -> None:
    def edit(interactions: list[dict[str, Any]]) -> None:
        del interactions[0]["response"]["parsed_body"]["usage"]

    result = _diff_edited(tmp_path, OPENAI_JSON, edit)
    assert _lines(result) == [
        "- response field usage (object) vanished in interaction 0 (POST /v1/chat/completions)"
    ]


@needs_corpus
def test_a_status_change_is_not_followed_by_every_field_of_the_error(tmp_path: Path) -> None:
    def edit(interactions: list[dict[str, Any]]) -> None:
        response = interactions[1]["response"]
        response["status"] = {"code": 429, "message": "Too Many Requests"}
        response["parsed_body"] = {"error": {"message": "slow down", "type": "rate_limit", "code": None}}

    result = _diff_edited(tmp_path, OPENAI_JSON, edit)
    assert _lines(result) == ["~ status changed 200 -> 429 in interaction 1 (POST /v1/chat/completions)"]


@needs_corpus
def test_error_bodies_with_the_same_status_are_compared(tmp_path: Path) -> None:
    def edit(interactions: list[dict[str, Any]]) -> None:
        interactions[0]["response"]["parsed_body"]["error"]["param"] = {"name": "messages"}

    result = _diff_edited(
        tmp_path, "pydantic-ai/openai/test_openai_o1_mini_system_role[developer].yaml", edit
    )
    assert _lines(result) == [
        "~ response field error.param changed type str -> object"
        " in interaction 0 (POST /v1/chat/completions)",
        "+ response field error.param.name (str) appeared in interaction 0 (POST /v1/chat/completions)",
    ]


@needs_corpus
def test_interactions_pair_in_order_by_method_and_path(tmp_path: Path) -> None:
    def edit(interactions: list[dict[str, Any]]) -> None:
        extra = json.loads(json.dumps(interactions[0]))
        extra["request"]["uri"] = "https://api.openai.com/v1/embeddings"
        interactions.insert(0, extra)  # B: embeddings, chat 0, chat 1

    result = _diff_edited(tmp_path, OPENAI_JSON, edit)
    assert _lines(result) == ["+ interaction 0 (POST /v1/embeddings) appeared"]
    assert (result.paired, result.only_a, result.only_b) == (2, 0, 1)
    assert result.summary() == "1 interaction only in B."


@needs_corpus
def test_a_change_in_a_shifted_interaction_names_both_indexes(tmp_path: Path) -> None:
    def edit(interactions: list[dict[str, Any]]) -> None:
        interactions[1]["response"]["headers"]["x-new"] = ["1"]
        extra = json.loads(json.dumps(interactions[0]))
        extra["request"]["uri"] = "https://api.openai.com/v1/embeddings"
        interactions.insert(0, extra)

    result = _diff_edited(tmp_path, OPENAI_JSON, edit)
    assert _lines(result) == [
        "+ header x-new appeared in interaction 1, 2 in B (POST /v1/chat/completions)",
        "+ interaction 0 (POST /v1/embeddings) appeared",
    ]
    assert [(c.a_index, c.b_index) for c in result.changes] == [(1, 2), (None, 0)]


@needs_corpus
def test_an_interaction_missing_from_b_has_vanished(tmp_path: Path) -> None:
    def edit(interactions: list[dict[str, Any]]) -> None:
        del interactions[1]

    result = _diff_edited(tmp_path, OPENAI_JSON, edit)
    assert _lines(result) == ["- interaction 1 (POST /v1/chat/completions) vanished"]
    assert result.summary() == "1 interaction only in A."


def _shape(**fields: Any) -> InteractionShape:
    base: dict[str, Any] = {
        "index": 0,
        "method": "POST",
        "path": "/v1/x",
        "query": frozenset(),
        "request_fields": {},
        "status": 200,
        "media_type": "text/event-stream",
        "headers": frozenset(),
        "framing": "sse",
    }
    return InteractionShape(**{**base, **fields})


def test_event_order_is_compared_when_the_types_are_the_same() -> None:
    a = _shape(event_types=("start", "delta", "usage"), last_event="usage")
    b = _shape(event_types=("start", "usage", "delta"), last_event="usage")
    assert _lines(diff_shapes([a], [b])) == [
        "~ event order changed start, delta, usage -> start, usage, delta in interaction 0 (POST /v1/x)"
    ]


def test_query_content_type_framing_and_stream_end() -> None:
    a = _shape(query=frozenset({"alt"}), stream_end="complete")
    b = _shape(media_type="application/json", framing="none", stream_end="error (ReadError)")
    assert _lines(diff_shapes([a], [b])) == [
        "- query parameter alt vanished in interaction 0 (POST /v1/x)",
        "~ content type changed text/event-stream -> application/json in interaction 0 (POST /v1/x)",
        "~ body framing changed sse -> none in interaction 0 (POST /v1/x)",
    ]
    c = _shape(stream_end="closed")
    assert _lines(diff_shapes([replace(a, query=frozenset())], [c])) == [
        "~ stream end changed complete -> closed in interaction 0 (POST /v1/x)"
    ]


def test_change_as_json() -> None:
    change = ShapeChange("+", "header", "x-a", "POST /v1/x", 2, 3)
    assert change.to_dict() == {
        "sign": "+",
        "kind": "header",
        "subject": "x-a",
        "event": None,
        "before": None,
        "after": None,
        "call": "POST /v1/x",
        "a_index": 2,
        "b_index": 3,
        "message": "+ header x-a appeared in interaction 2, 3 in B (POST /v1/x)",
    }
