"""
The cassette document models: what they accept, what their bodies stand for, what they keep.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError

from llmcassette._models import (
    HTTP_SCHEMA_VERSION,
    SCHEMA_VERSION,
    CassetteDocument,
    Interaction,
    RecordedRequest,
    RecordedResponse,
    StreamEnd,
    StreamRecord,
    header_get,
)


def interaction(request: dict[str, Any] | None = None, response: dict[str, Any] | None = None) -> Interaction:
    return Interaction.model_validate(
        {
            "request": {
                "method": "POST",
                "uri": "https://api.openai.com/v1/chat/completions",
                **(request or {}),
            },
            "response": {"status": {"code": 200, "message": "OK"}, **(response or {})},
        }
    )


# --- headers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(["text/event-stream"], ["text/event-stream"], id="list"),
        pytest.param("text/event-stream", ["text/event-stream"], id="bare-value"),
        pytest.param(1024, ["1024"], id="bare-number"),
        pytest.param([1, "a"], ["1", "a"], id="mixed-list"),
        pytest.param(None, [], id="no-value"),
        pytest.param([None], [""], id="empty-item"),
        pytest.param(b"\xe9t\xe9", ["\xe9t\xe9"], id="bytes-as-latin1"),
        pytest.param([b"gzip"], ["gzip"], id="bytes-in-a-list"),
    ],
)
def test_header_values_are_lists_of_text(raw: Any, expected: list[str]) -> None:
    request = RecordedRequest.model_validate({"method": "GET", "uri": "http://x/", "headers": {"h": raw}})
    assert request.headers == {"h": expected}


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        pytest.param("", "it is empty", id="empty"),
        pytest.param("  ", "it is empty", id="blank"),
        pytest.param("api.openai.com/v1/chat", "it does not begin with a scheme and a host", id="no-scheme"),
        pytest.param("localhost:8000/v1", "it does not begin with a scheme and a host", id="host-as-scheme"),
        pytest.param("https:///v1/chat", "it does not begin with a scheme and a host", id="no-host"),
        pytest.param("http://:8080/v1", "it does not begin with a scheme and a host", id="port-only"),
    ],
)
def test_a_url_no_request_could_have_is_refused(uri: str, reason: str) -> None:
    # A client always sends an absolute URL: a recorded one without scheme and host (a hand edit)
    # would load, match nothing and replay nothing, with no word from lint.
    with pytest.raises(ValidationError) as info:
        RecordedRequest.model_validate({"method": "GET", "uri": uri})
    (error,) = info.value.errors()
    assert error["loc"] == ("uri",)
    assert error["msg"].startswith(f"is not a URL: {reason}; ")
    assert "`*` for one that answers any request" in error["msg"]


@pytest.mark.parametrize("method", ["", " ", "PO ST", "GET\n", "GET:"])
def test_a_method_no_request_could_have_is_refused(method: str) -> None:
    # A hand edit that leaves no method, or two words, loaded and matched nothing, and lint was silent.
    with pytest.raises(ValidationError) as info:
        RecordedRequest.model_validate({"method": method, "uri": "http://h/"})
    (error,) = info.value.errors()
    assert error["loc"] == ("method",)
    assert error["msg"] == (
        f"{method!r} is not an HTTP method (a method is one word, such as GET or POST, or `*` for one "
        "that answers any request), so no request would match it"
    )


@pytest.mark.parametrize("method", ["GET", "post", "PROPFIND", "*"])
def test_methods_are_kept_as_written(method: str) -> None:
    assert RecordedRequest.model_validate({"method": method, "uri": "http://h/"}).method == method


def test_header_get_ignores_case_and_returns_the_first_value() -> None:
    headers = {"Content-Type": ["application/json", "text/plain"], "x-empty": []}
    assert header_get(headers, "content-type") == "application/json"
    assert header_get(headers, "CONTENT-TYPE") == "application/json"
    assert header_get(headers, "x-empty") is None
    assert header_get(headers, "missing") is None


# --- the request URL -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        pytest.param("http://[::1/v1/chat", "Invalid IPv6 URL", id="unclosed-bracket"),
        pytest.param(
            "http://[abc]/v1/chat", "'abc' does not appear to be an IPv4 or IPv6 address", id="not-ip"
        ),
        pytest.param("http://h:99999999/", "Port out of range 0-65535", id="port-too-big"),
        pytest.param("http://h:-1/", "Port could not be cast to integer value as '-1'", id="negative-port"),
        pytest.param("http://h:abc/", "Port could not be cast to integer value as 'abc'", id="port-text"),
        pytest.param(
            "http://ex\uff03ample.com/", "contains invalid characters under NFKC normalization", id="nfkc"
        ),
    ],
)
def test_a_url_that_does_not_split_is_refused_with_the_reason(uri: str, reason: str) -> None:
    with pytest.raises(ValidationError) as info:
        RecordedRequest.model_validate({"method": "GET", "uri": uri})
    (error,) = info.value.errors()
    assert error["loc"] == ("uri",)
    assert error["msg"].startswith("is not a URL: ")
    assert reason in error["msg"]


@pytest.mark.parametrize(
    "uri",
    [
        "*",
        "https://api.openai.com/v1/chat/completions?x=1#f",
        "http://[::1]:8080/v1",
        "http://h:65535/",
        "http://h:/",
        "/v1/chat",
        "http://exa mple.com/x",
    ],
)
def test_urls_that_split_are_kept_as_written(uri: str) -> None:
    assert RecordedRequest.model_validate({"method": "GET", "uri": uri}).uri == uri


# --- bodies --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_fields", "content"),
    [
        pytest.param({}, b"", id="no-body"),
        pytest.param({"body": None}, b"", id="null-body"),
        pytest.param({"body": '{"model":"m"}'}, b'{"model":"m"}', id="vcrpy-bare-string"),
        pytest.param({"body": {"string": "hi"}}, b"hi", id="response-style-mapping"),
        # vcrpy's aiohttp stub stores the value given as `json=` (it failed to load: "Input should
        # be a valid string"); aiohttp sends `json.dumps` of it.
        pytest.param(
            {"body": {"s": 1, "t": "caf\u00e9"}}, b'{"s": 1, "t": "caf\\u00e9"}', id="vcrpy-aiohttp-json"
        ),
        pytest.param({"body": [1, {"a": None}]}, b'[1, {"a": null}]', id="vcrpy-aiohttp-json-list"),
        pytest.param({"body": b"\x00\x01"}, b"\x00\x01", id="binary"),
        pytest.param({"parsed_body": {"model": "m"}}, b'{"model": "m"}', id="parsed-default-format"),
        pytest.param(
            {"parsed_body": {"model": "m"}, "json_format": "compact"}, b'{"model":"m"}', id="parsed-compact"
        ),
        pytest.param({"parsed_body": None}, b"null", id="parsed-null-is-a-body"),
        pytest.param({"body": "ignored", "parsed_body": [1]}, b"[1]", id="parsed-wins"),
    ],
)
def test_request_content(request_fields: dict[str, Any], content: bytes) -> None:
    assert interaction(request=request_fields).request.content == content


@pytest.mark.parametrize(
    ("response_fields", "content"),
    [
        pytest.param({}, b"", id="no-body"),
        pytest.param({"body": {"string": "data: [DONE]\n\n"}}, b"data: [DONE]\n\n", id="sse-text"),
        pytest.param({"body": {"string": "é"}}, "é".encode(), id="utf8"),
        pytest.param({"body": {"string": b"\x1f\x8b"}}, b"\x1f\x8b", id="binary"),
        pytest.param({"body": {}}, b"", id="empty-mapping"),
        pytest.param(
            {"parsed_body": {"id": "x", "n": 1}, "json_format": "indent2+nl"},
            b'{\n  "id": "x",\n  "n": 1\n}\n',
            id="parsed-indented",
        ),
    ],
)
def test_response_content(response_fields: dict[str, Any], content: bytes) -> None:
    assert interaction(response=response_fields).response.content == content


def test_stored_body_tells_parsed_from_string() -> None:
    parsed = interaction(response={"parsed_body": {"a": 1}, "json_format": "compact"}).response.stored_body()
    assert parsed.is_parsed and parsed.parsed == {"a": 1} and parsed.json_format == "compact"
    text = interaction(response={"body": {"string": "x"}}).response.stored_body()
    assert not text.is_parsed and text.string == "x"


# --- streams -------------------------------------------------------------------------------------


def test_stream_record_defaults_to_a_complete_stream() -> None:
    record = StreamRecord()
    assert record.end is StreamEnd.COMPLETE
    assert record.chunks is None and record.offsets_ms is None and record.error is None


def test_stream_record_reads_an_error_end() -> None:
    response = interaction(
        response={
            "body": {"string": "data: {}\n\n"},
            "stream": {
                "chunks": [4, 6],
                "offsets_ms": [120.5, 180],
                "end": "error",
                "error": {"type": "RemoteProtocolError", "message": "peer closed connection"},
            },
        }
    ).response
    assert response.stream is not None
    assert response.stream.end is StreamEnd.ERROR
    assert response.stream.offsets_ms == [120.5, 180.0]
    assert response.stream.error is not None and response.stream.error.type == "RemoteProtocolError"


@pytest.mark.parametrize(
    "stream",
    [
        pytest.param({"end": "finished"}, id="unknown-end"),
        pytest.param({"chunks": ["a"]}, id="chunk-not-a-number"),
        pytest.param({"error": {"message": "no type"}}, id="error-without-type"),
    ],
)
def test_invalid_stream_records_are_refused(stream: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        interaction(response={"stream": stream})


HANG_UP_MESSAGE = "Server disconnected without sending a response."
HUNG_UP = {
    "stream": {
        "end": "error",
        "error": {"type": "RemoteProtocolError", "message": HANG_UP_MESSAGE},
    }
}


NEEDS_ERROR = "needs `stream: {end: error"
NOTHING_ELSE = "has no headers, body or chunks"


def test_a_response_without_status_is_a_connection_that_failed_before_any_answer() -> None:
    response = RecordedResponse.model_validate(HUNG_UP)
    assert response.status is None and response.failed_before_head
    assert response.headers == {} and response.content == b""
    assert response.stream is not None and response.stream.error is not None
    assert response.stream.error.type == "RemoteProtocolError"


@pytest.mark.parametrize(
    ("response", "message"),
    [
        pytest.param({"headers": {}, "body": {"string": "x"}}, "Field required", id="no-status"),
        pytest.param({"stream": {"end": "closed"}}, "Field required", id="closed-without-status"),
        pytest.param({"status": None, "body": {"string": "x"}}, NEEDS_ERROR, id="null-status"),
        pytest.param({"stream": {"end": "error"}}, NEEDS_ERROR, id="error-not-said"),
        pytest.param({**HUNG_UP, "headers": {"a": ["b"]}}, NOTHING_ELSE, id="headers"),
        pytest.param({**HUNG_UP, "body": {"string": "x"}}, NOTHING_ELSE, id="body"),
        pytest.param({**HUNG_UP, "parsed_body": {"a": 1}}, NOTHING_ELSE, id="parsed-body"),
    ],
)
def test_a_response_without_status_that_is_not_a_failed_connection_is_refused(
    response: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        RecordedResponse.model_validate(response)


@pytest.mark.parametrize("end", list(StreamEnd))
def test_stream_ends_are_their_names(end: StreamEnd) -> None:
    assert StreamEnd(end.value) is end
    assert str(end) == end.value


# --- the document --------------------------------------------------------------------------------


def test_document_defaults() -> None:
    document = CassetteDocument()
    assert document.version == 1
    assert document.llmcassette_schema is None
    assert document.interactions == []
    assert (HTTP_SCHEMA_VERSION, SCHEMA_VERSION) == (1, 2)


def test_unknown_keys_are_kept_at_every_level() -> None:
    document = CassetteDocument.model_validate(
        {
            "version": 1,
            "recorded_with": "VCR.py 7",
            "interactions": [
                {
                    "request": {"method": "GET", "uri": "http://x/", "recorded_at": "today"},
                    "response": {
                        "status": {"code": 200, "message": "OK", "http_version": "HTTP/1.1"},
                        "url": "http://x/",
                        "stream": {"chunks": [1], "note": "kept"},
                    },
                    "comment": "by hand",
                }
            ],
        }
    )
    item = document.interactions[0]
    assert document.model_extra == {"recorded_with": "VCR.py 7"}
    assert item.model_extra == {"comment": "by hand"}
    assert item.request.model_extra == {"recorded_at": "today"}
    assert item.response.model_extra == {"url": "http://x/"}
    assert item.response.status.model_extra == {"http_version": "HTTP/1.1"}
    assert item.response.stream is not None and item.response.stream.model_extra == {"note": "kept"}


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({"request": {"method": "GET"}, "response": {"status": {"code": 200}}}, id="no-uri"),
        pytest.param({"request": {"method": "GET", "uri": "http://h/"}, "response": {}}, id="no-status"),
        pytest.param(
            {"request": {"method": "GET", "uri": "http://h/"}, "response": {"status": {"code": "OK"}}},
            id="status-text",
        ),
        pytest.param(
            {
                "request": {"method": "GET", "uri": "http://h/", "body": 42},
                "response": {"status": {"code": 200}},
            },
            id="request-body-number",  # (a mapping or list is the JSON vcrpy's aiohttp stub stores)
        ),
    ],
)
def test_invalid_interactions_are_refused(data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Interaction.model_validate(data)


def test_responses_read_the_same_as_constructed() -> None:
    built = RecordedResponse.model_validate({"status": {"code": 429}, "headers": {"retry-after": "2"}})
    assert built.status.code == 429 and built.status.message == ""
    assert header_get(built.headers, "Retry-After") == "2"


@pytest.mark.parametrize(
    "raw", [{"a": 1}, [{"a": 1}], [["gzip"]], {"gzip"}], ids=["map", "map-in-list", "list-in-list", "set"]
)
def test_a_header_value_that_is_not_text_is_refused(raw: Any) -> None:
    # Before: it loaded as Python's spelling of it (`{'a': 1}`) and was sent so on replay.
    with pytest.raises(ValidationError, match="a header value is text"):
        RecordedRequest.model_validate({"method": "GET", "uri": "http://x/", "headers": {"h": raw}})


@pytest.mark.parametrize("raw", ["v\ud800", ["ok", "w\udfff"]], ids=["bare", "in-list"])
def test_a_header_value_with_a_lone_surrogate_is_refused(raw: Any) -> None:
    # JSON can escape one (`"\ud800"`) but no header carries it: replay could not encode it, and
    # `lint` stopped with a UnicodeEncodeError traceback scanning it for keys.
    with pytest.raises(ValidationError, match=r"holds \\ud800|holds \\udfff"):
        RecordedRequest.model_validate({"method": "GET", "uri": "http://x/", "headers": {"h": raw}})


def test_a_url_with_a_lone_surrogate_is_refused() -> None:
    # As for a header: lint stopped with a UnicodeEncodeError traceback scanning it for keys.
    with pytest.raises(ValidationError, match=r"is not a URL: it holds \\ud800"):
        RecordedRequest.model_validate({"method": "GET", "uri": "http://x/?q=\ud800"})
