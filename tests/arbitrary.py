"""
Hypothesis strategies for cassettes nobody would write: bodies made of the pieces that steer
framing detection and parsing, for tests that whatever is loaded never crashes a reader; and
streams (a content type and a body cut into chunks, one chunk included) made of the bytes that
storage must carry through YAML untouched, for the record-then-replay round trips.
"""

from __future__ import annotations

from hypothesis import strategies as st

from llmcassette._models import CassetteDocument

__all__ = [
    "BODIES",
    "CONTENT_TYPES",
    "STATUSES",
    "STREAMS",
    "STREAM_BODIES",
    "URLS",
    "chunked",
    "one_interaction",
]

# Bodies built from the pieces that steer framing detection and parsing, plus arbitrary bytes.
_PIECES = st.sampled_from(
    [b"data: ", b"event: x\n", b"\n\n", b"[DONE]", b"{", b"}", b"[", b"]", b'"choices"', b":", b",", b"\r\n"]
    + [b'{"type":"message_start"}', b'{"done":true}\n', b"\x1f\x8b", b"\x00\x00\x00\x20", b": c\n\n", b"1"]
)
BODIES = st.lists(_PIECES, max_size=16).map(b"".join) | st.binary(max_size=48)
CONTENT_TYPES = st.sampled_from(
    [
        None,
        "text/event-stream",
        "application/json",
        "application/x-ndjson",
        "application/vnd.amazon.eventstream",
    ]
)
URLS = st.sampled_from(
    [
        "https://api.openai.com/v1/chat/completions",
        "https://api.anthropic.com/v1/messages",
        "https://generativelanguage.googleapis.com/v1beta/models/g:streamGenerateContent",
        "https://bedrock-runtime.us-east-1.amazonaws.com/model/m/converse-stream",
        "http://127.0.0.1:11434/api/chat",
        "*",
    ]
)


#: None stands for no response: the upstream hung up before answering.
STATUSES = st.sampled_from([200, 400, None])
HUNG_UP = {"stream": {"end": "error", "error": {"type": "ReadError", "message": "Connection reset by peer"}}}


def one_interaction(body: bytes, content_type: str | None, url: str, status: int | None) -> CassetteDocument:
    """
    A cassette of one POST to ``url`` answered by ``body`` (the request carries it too), or, when
    ``status`` is None, by an upstream that hung up before answering.
    """
    headers = {"content-type": [content_type]} if content_type else {}
    response: dict[str, object] = {"status": {"code": status}, "headers": headers, "body": {"string": body}}
    if status is None:
        response = HUNG_UP
    return CassetteDocument.model_validate(
        {"interactions": [{"request": {"method": "POST", "uri": url, "body": body}, "response": response}]}
    )


# Bytes that a text body stored in YAML (or as JSON data) could lose or change: line ends of every
# kind (CR, CRLF, NEL, U+2028), NUL and other controls, invalid and cut UTF-8, a byte order mark,
# YAML's own markers, and JSON escapes of lone surrogates, which Python's JSON reads into a `str`
# that UTF-8 cannot encode.
_STORAGE_PIECES = st.sampled_from(
    [b"\r", b"\n", b"\r\n", b"\n\n", b"\r\n\r\n", b"\x00", b"\x1b", b"\x7f", b"\t", b" ", b"  "]
    + [b"\xff", b"\xc3", b"\x80", "\u0085".encode(), "\u2028".encode(), b"\xef\xbb\xbf", "é🎉".encode()]
    + [b"data: ", b"event: x\n", b"[DONE]", b": ping", b"---", b"...", b"- ", b"# ", b"'", b'"', b"\\"]
    + [b'{"t": "\\ud800"}', b'{"t":"\\udfff \\u0000"}\n', b'"\\ud83d"', b"{", b"}", b"[", b"]", b"abc"]
)
# Whole SSE events and NDJSON lines with those bytes in them.
_EVENTS = st.sampled_from(
    [b"data: a\n\n", b"data: \xff\x00\r\n\r\n", b"data: \xc3\r\r", b": ping\n\n", b"data: [DONE]\n\n"]
    + [b'{"n": 1}\n', b'{"t": "\\ud800"}\r\n', b'{"t": "\xe2\x80\xa8\xff"}\n', b"\n"]
)
# Whole JSON documents with lone surrogates, so that the body is stored as parsed data.
_JSON_DOCUMENTS = st.sampled_from(
    [
        b'{"text": "\\ud800", "n": 1}',
        b'{"a": ["\\udc00\\ud800", null, "\\u0000"]}',
        b'[{"x": "\\ud83d"}]\n',
        b'{"t": "caf\\u00e9 \\ud834"}\r\n',
    ]
)
STREAM_BODIES = (
    st.lists(_STORAGE_PIECES, max_size=14).map(b"".join) | _JSON_DOCUMENTS | st.binary(max_size=40)
)
STREAM_CONTENT_TYPES = st.sampled_from(
    [
        "text/event-stream",
        "text/event-stream; charset=utf-8",
        "application/x-ndjson",
        "application/json",
        "text/plain; charset=utf-8",
        "application/octet-stream",
        None,
    ]
)


@st.composite
def chunked(draw: st.DrawFn, bodies: st.SearchStrategy[bytes] = STREAM_BODIES) -> list[bytes]:
    """A body cut into non-empty chunks at arbitrary points, often none: one chunk is a case too."""
    body = draw(bodies)
    if len(body) < 2:
        return [body] if body else []
    cut_points = st.lists(st.integers(1, len(body) - 1), min_size=1, max_size=6, unique=True)
    cuts = sorted(draw(st.just([]) | cut_points))
    return [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]


#: A response to stream: its content type (None: no header) and its body's chunks. Half of them
#: are streams of several events, which replay would cut per event if it did not keep boundaries.
STREAMS = st.tuples(STREAM_CONTENT_TYPES, chunked()) | st.tuples(
    st.sampled_from(["text/event-stream", "application/x-ndjson"]),
    chunked(st.lists(_EVENTS | _STORAGE_PIECES, min_size=2, max_size=10).map(b"".join)),
)
