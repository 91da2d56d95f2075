"""
Turning a live exchange into an :class:`Interaction`: what was captured while the client read the
stream, then decoded, scrubbed and stored in readable form.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from typing import Any

from ._bodies import StoredBody, store_body
from ._eventstream import scrub_frames
from ._exceptions import CassetteError
from ._framing import Framing, detect_framing
from ._models import (
    Interaction,
    RecordedRequest,
    RecordedResponse,
    ResponseBody,
    Status,
    StreamEnd,
    StreamError,
    StreamRecord,
    header_get,
)
from ._scrub import Scrubber, Span, remap_chunks

__all__ = [
    "BODY_NONE",
    "FRAMING_HEADERS",
    "HANG_UP_ERRORS",
    "WIRE",
    "Capture",
    "build_failure",
    "build_request",
    "build_response",
    "decompress",
    "headers_to_map",
    "hung_up_before_answer",
    "parsed_fields",
    "scrub_body",
    "shift_content_length",
]

_monotonic = time.monotonic


class Capture:
    """Collects a response's chunks and arrival times while the client reads them."""

    def __init__(self, *, start: float, on_finish: Callable[[Capture], None]) -> None:
        self.start = start
        self.elapsed_ms = round((_monotonic() - start) * 1000.0, 1)
        self.chunks: list[bytes] = []
        self.offsets_ms: list[float] = []
        self.end = StreamEnd.COMPLETE
        self.error: BaseException | None = None
        self.finished = False
        self._on_finish = on_finish

    def chunk(self, data: bytes) -> None:
        self.chunks.append(data)
        self.offsets_ms.append(round((_monotonic() - self.start) * 1000.0, 1))

    def finish(self, *, error: BaseException | None = None, closed: bool = False) -> None:
        if self.finished:
            return
        self.finished = True
        if error is not None:
            self.end = StreamEnd.ERROR
            self.error = error
        elif closed:
            self.end = StreamEnd.CLOSED
        self._on_finish(self)


def headers_to_map(raw: list[tuple[bytes, bytes]]) -> dict[str, list[str]]:
    """Raw header pairs as the cassette's ``{name: [values]}``, order and repeats kept."""
    headers: dict[str, list[str]] = {}
    for name, value in raw:
        headers.setdefault(name.decode("latin-1"), []).append(value.decode("latin-1"))
    return headers


#: The headers that frame a body on the wire (lower case).
FRAMING_HEADERS = frozenset({b"transfer-encoding", b"content-length"})
#: The extension the wire doors (http.client, urllib3, urllib.request, aiohttp) put on the
#: requests they read off the wire, rather than take from httpx.
WIRE = "llmcassette.wire"
#: The extension a wire door puts on a request when it saw the body its client's library handed
#: ``http.client`` (``request(method, url, body)``): True when that was None, no body at all.
BODY_NONE = "llmcassette.body_none"


def sent_no_body(request: Any, body: bytes) -> bool:
    """
    Whether a request read off the wire came with no body at all, which vcrpy's stubs for those
    libraries store as ``body: null``: its body matcher then compares None, not b'', with what
    they send again. vcrpy stores the body its ``http.client`` stub is handed, so where the door
    saw that (:data:`BODY_NONE`) it decides: a POST that requests, urllib3 or botocore sends with
    none goes with ``Content-Length: 0``, and is stored None all the same. Else the wire tells (no
    ``Content-Length``, no ``Transfer-Encoding``). httpx's requests always have one (b''), as
    vcrpy's httpx stub stores them.
    """
    if body or not request.extensions.get(WIRE):
        return False
    handed_none = request.extensions.get(BODY_NONE)
    if handed_none is not None:
        return bool(handed_none)
    return not any(name.lower() in FRAMING_HEADERS for name, _ in request.headers.raw)


def build_request(
    *, method: str, url: str, raw_headers: list[tuple[bytes, bytes]], body: bytes, scrubber: Scrubber | None
) -> RecordedRequest:
    """The stored form of a request, scrubbed."""
    headers = headers_to_map(raw_headers)
    if scrubber is not None:
        url = scrubber.scrub_url(url)
        headers = scrubber.scrub_headers(headers)
        scrubbed = scrubber.scrub_body(body)
        headers = shift_content_length(headers, len(scrubbed) - len(body))
        body = scrubbed
    # A request's body has no room for `line_endings` (vcrpy stores it bare), so CRs stay in it.
    stored = store_body(body, content_type=header_get(headers, "content-type"), crlf_as_lf=False)
    fields: dict[str, Any] = {"method": method, "uri": url, "headers": headers, **parsed_fields(stored)}
    if not stored.is_parsed:
        fields["body"] = stored.string
    return RecordedRequest.model_validate(fields)


def scrub_body(scrubber: Scrubber, body: bytes, content_type: str | None) -> tuple[bytes, list[Span]]:
    """
    ``body`` scrubbed, and the spans that changed. An AWS eventstream is scrubbed frame by frame,
    each changed frame rebuilt whole (lengths and checksums), so that its reader still reads it.
    """
    if "vnd.amazon.eventstream" in (content_type or "").lower():
        framed = scrub_frames(body, scrubber.scrub_body)
        if framed is not None:
            return framed
    return scrubber.scrub_body_spans(body)


def parsed_fields(stored: StoredBody) -> dict[str, Any]:
    """The fields of a message that hold a body stored as JSON (``parsed_body``, ``json_format``)."""
    if not stored.is_parsed:
        return {}
    fields: dict[str, Any] = {"parsed_body": stored.parsed}
    if stored.json_format:
        fields["json_format"] = stored.json_format
    return fields


def shift_content_length(headers: dict[str, list[str]], delta: int) -> dict[str, list[str]]:
    """
    ``headers`` with Content-Length moved by ``delta`` bytes: what a body that scrubbing made
    longer or shorter announces.
    """
    # A placeholder is rarely as long as the secret it replaces: Content-Length follows the body.
    # It moves by the difference rather than being set, because the body of a cut stream is
    # shorter than the length its upstream announced, and replay must announce the same.
    if not delta:
        return headers
    resized: dict[str, list[str]] = {}
    for name, values in headers.items():
        if name.lower() == "content-length":
            values = [str(int(v) + delta) if v.strip().isdigit() else v for v in values]
        resized[name] = values
    return resized


def _decoder(encoding: str) -> Any:
    encoding = encoding.strip().lower()
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(zlib.MAX_WBITS | 16)
    if encoding == "deflate":
        return zlib.decompressobj()
    return None


def decompress(chunks: list[bytes], encoding: str | None) -> list[bytes] | None:
    """
    ``chunks`` of a body sent with Content-Encoding ``encoding`` (gzip or deflate), decompressed
    one by one so that each keeps the text that arrived in it; None when the encoding is another
    one, or the bytes do not decompress.
    """
    decoder = _decoder(encoding) if encoding else None
    if decoder is None or not chunks:
        return None
    try:
        decoded = [decoder.decompress(chunk) for chunk in chunks]
        decoded[-1] += decoder.flush()
    except zlib.error:
        return None
    # A stream cut mid-way decodes to the text that arrived, as the client's own decoder reads it.
    return decoded


def build_response(
    *,
    status_code: int,
    reason: str,
    raw_headers: list[tuple[bytes, bytes]],
    capture: Capture,
    scrubber: Scrubber | None,
    decode_compressed: bool,
    url: str | None = None,
) -> RecordedResponse:
    """
    The stored form of a captured response: decoded, scrubbed, readable, chunking kept. ``url``,
    the request's, tells a Gemini JSON-array stream from a JSON body.
    """
    if not 100 <= status_code <= 599:
        # A cassette holding it would be refused when loaded (see `Status`): say so now, in words.
        raise CassetteError(
            f"llmcassette: the upstream answered with status {status_code}, which is not an HTTP "
            "status (100 to 599), so it cannot be recorded; fix the upstream, or leave this request "
            "out of the recording."
        )
    headers = headers_to_map(raw_headers)
    chunks = capture.chunks
    encoding = header_get(headers, "content-encoding")
    if decode_compressed and encoding:
        decoded = decompress(chunks, encoding)
        if decoded is not None:
            chunks = decoded
            headers = {k: v for k, v in headers.items() if k.lower() != "content-encoding"}
            size = str(sum(len(c) for c in chunks))
            headers = {k: ([size] if k.lower() == "content-length" else v) for k, v in headers.items()}
    lengths = [len(c) for c in chunks]
    body = b"".join(chunks)
    if scrubber is not None:
        headers = scrubber.scrub_headers(headers)
        scrubbed, spans = scrub_body(scrubber, body, header_get(headers, "content-type"))
        headers = shift_content_length(headers, len(scrubbed) - len(body))
        lengths = remap_chunks(lengths, spans)
        body = scrubbed
    stored = store_body(body, content_type=header_get(headers, "content-type"))
    fields: dict[str, Any] = {
        "status": Status(code=status_code, message=reason),
        "headers": headers,
        "elapsed_ms": capture.elapsed_ms,
        **parsed_fields(stored),
    }
    if stored.frames is not None:
        fields["eventstream"] = stored.frames
    elif not stored.is_parsed:
        fields["body"] = ResponseBody(
            string=stored.string if stored.string is not None else "", line_endings=stored.line_endings
        )
    if _keeps_boundaries(lengths, capture.end, body, header_get(headers, "content-type"), url):
        error = stream_error(capture.error) if capture.error is not None else None
        fields["stream"] = StreamRecord(
            chunks=lengths, offsets_ms=capture.offsets_ms, end=capture.end, error=error
        )
    return RecordedResponse.model_validate(fields)


#: What httpx and httpx2 raise in place of a response when the upstream, once connected and sent
#: the request, closes the connection (``RemoteProtocolError``: "Server disconnected without
#: sending a response") or resets it (``ReadError``, ``WriteError``).
HANG_UP_ERRORS = frozenset({"RemoteProtocolError", "ReadError", "WriteError"})


def hung_up_before_answer(error: BaseException) -> bool:
    """
    True when ``error``, raised by an httpx or httpx2 transport in place of a response, says that
    the upstream closed or reset the connection without answering: what is recorded as a response
    without status (:func:`build_failure`). A connection that never opened (``ConnectError``) and a
    timeout (the client's own limit) are not recordings of the upstream, and are not recorded.
    """
    return type(error).__name__ in HANG_UP_ERRORS


def stream_error(error: BaseException) -> StreamError:
    """How a transport error is stored: its class name (replay raises the class of that name)."""
    return StreamError(type=type(error).__name__, message=str(error))


def build_failure(error: BaseException) -> RecordedResponse:
    """The stored form of a connection the upstream closed or reset before any answer."""
    return RecordedResponse(status=None, stream=StreamRecord(end=StreamEnd.ERROR, error=stream_error(error)))


def _keeps_boundaries(
    lengths: list[int], end: StreamEnd, body: bytes, content_type: str | None, url: str | None
) -> bool:
    # A response without `stream` is replayed as a hand-written one is (`default_chunks`): one
    # chunk per event of a streamed body, the whole of any other body. So the boundaries are left
    # out only where that is what was recorded: a body that is not a stream, read in one piece.
    # A stream read in one piece keeps `chunks: [N]`, or replay would split it at every event.
    if len(lengths) > 1 or end is not StreamEnd.COMPLETE:
        return True
    return bool(lengths) and detect_framing(content_type, body, url=url) is not Framing.NONE


def build_interaction(request: RecordedRequest, response: RecordedResponse) -> Interaction:
    """Pair a request and its response."""
    return Interaction(request=request, response=response)
