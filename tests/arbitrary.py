"""
Hypothesis strategies for cassettes nobody would write: bodies made of the pieces that steer
framing detection and parsing, for tests that whatever is loaded never crashes a reader.
"""

from __future__ import annotations

from hypothesis import strategies as st

from llmcassette._models import CassetteDocument

__all__ = ["BODIES", "CONTENT_TYPES", "STATUSES", "URLS", "one_interaction"]

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
