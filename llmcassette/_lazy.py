"""
Loading a cassette for replay, with responses parsed only when first played.

Matching needs every request up front, but a test usually plays a few of a cassette's responses,
and responses are most of the file (structured JSON bodies are many YAML nodes). Files in the
block layout that llmcassette and vcrpy write (``interactions:`` followed by items that start with
``- `` at the first column, each with a ``  response:`` key) are cut into per-interaction pieces
of text; the request piece is parsed at once and the response piece on first use. Any file that
does not fit that layout, or a piece that does not parse on its own (an alias to an anchor in
another piece), is parsed whole, as :func:`llmcassette.load_cassette` does.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ._models import CassetteDocument, Interaction, RecordedRequest, RecordedResponse
from ._storage import check_complete, format_validation_error, parse_cassette, read_cassette_bytes
from ._yaml import YAMLError, load_yaml

__all__ = ["LazyCassette", "load_lazy"]

_ITEMS_START = b"interactions:\n- "
_RESPONSE_KEY = b"\n  response:"
_TOP_LEVEL_LINE = re.compile(rb"\n(?:[^ \-#\n]|-[^ ])")
# Where a list item starts: at "- " in the first column. The cut keeps the line break before it
# with the previous item, whose last value may be a literal block that keeps its final newlines.
_ITEM_START = re.compile(rb"(?<=\n)(?=- )")


class LazyCassette:
    """A cassette's interactions: requests parsed, responses parsed on first use."""

    def __init__(
        self,
        path: Path,
        *,
        raw: bytes | None,
        version: int,
        extras: dict[str, Any],
        requests: list[RecordedRequest],
        item_extras: list[dict[str, Any]],
        response_texts: list[bytes | None],
        responses: list[RecordedResponse | None],
    ) -> None:
        self.path = path
        self.version = version
        self.extras = extras
        self._raw = raw
        self._requests = requests
        self._item_extras = item_extras
        self._response_texts = response_texts
        self._responses = responses

    @classmethod
    def from_document(cls, path: Path, document: CassetteDocument) -> LazyCassette:
        """Wrap a fully parsed document."""
        return cls(
            path,
            raw=None,
            version=document.version,
            extras=dict(document.model_extra or {}),
            requests=[i.request for i in document.interactions],
            item_extras=[dict(i.model_extra or {}) for i in document.interactions],
            response_texts=[None] * len(document.interactions),
            responses=[i.response for i in document.interactions],
        )

    def __len__(self) -> int:
        return len(self._requests)

    def request(self, index: int) -> RecordedRequest:
        """The request of interaction ``index``."""
        return self._requests[index]

    def response(self, index: int) -> RecordedResponse:
        """The response of interaction ``index``, parsed and validated on first use."""
        response = self._responses[index]
        if response is not None:
            return response
        text = self._response_texts[index]
        assert text is not None
        try:
            item = load_yaml(b"- " + text[2:])[0]
        except (YAMLError, IndexError, KeyError, TypeError):
            return self._from_whole_file(index)
        if not isinstance(item, dict) or "response" not in item:
            return self._from_whole_file(index)
        try:
            response = RecordedResponse.model_validate(item["response"])
        except ValidationError as exc:
            raise format_validation_error(
                exc, self.path, prefix=("interactions", index, "response")
            ) from None
        self._item_extras[index].update({k: v for k, v in item.items() if k != "response"})
        self._responses[index] = response
        return response

    def _from_whole_file(self, index: int) -> RecordedResponse:
        assert self._raw is not None
        document = parse_cassette(self._raw, path=self.path)
        for position, interaction in enumerate(document.interactions):
            if self._responses[position] is None:
                self._responses[position] = interaction.response
        response = self._responses[index]
        assert response is not None
        return response

    def interaction(self, index: int) -> Interaction:
        """Interaction ``index``, whole."""
        return Interaction(
            request=self.request(index), response=self.response(index), **self._item_extras[index]
        )

    def interactions(self) -> list[Interaction]:
        """Every interaction, whole."""
        return [self.interaction(index) for index in range(len(self))]


def load_lazy(path: Path) -> LazyCassette:
    """Load ``path`` for replay; see the module docstring for what is deferred."""
    raw = read_cassette_bytes(path)
    check_complete(raw, path=path)
    pieces = _split(raw)
    if pieces is not None:
        lazy = _from_pieces(path, raw, *pieces)
        if lazy is not None:
            return lazy
    return LazyCassette.from_document(path, parse_cassette(raw, path=path))


def _split(raw: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]] | None:
    if b"\r" in raw[:4096] or raw.startswith(b"\xef\xbb\xbf"):
        return None
    if raw.startswith(_ITEMS_START):
        start = 0
    else:
        start = raw.find(b"\n" + _ITEMS_START)
        if start < 0:
            return None
        start += 1
    body = raw[start + len(_ITEMS_START) - 2 :]
    # Top-level keys may follow the list too (vcrpy writes `version: 1` last): they start at
    # the first column, where a list item's own lines never do.
    trailer_at = _first_top_level_line(body)
    header = raw[:start] + body[trailer_at:]
    pieces: list[tuple[bytes, bytes]] = []
    for text in _ITEM_START.split(body[:trailer_at]):
        cut = text.find(_RESPONSE_KEY)
        if cut < 0:
            return None
        pieces.append((text[:cut], text[cut + 1 :]))
    return header, pieces


def _first_top_level_line(body: bytes) -> int:
    match = _TOP_LEVEL_LINE.search(body)
    return match.start() + 1 if match else len(body)


def _from_pieces(
    path: Path, raw: bytes, header: bytes, pieces: list[tuple[bytes, bytes]]
) -> LazyCassette | None:
    try:
        top = load_yaml(header) if header.strip() else {}
    except YAMLError:
        return None
    if not isinstance(top, dict):
        return None
    requests: list[RecordedRequest] = []
    item_extras: list[dict[str, Any]] = []
    for index, (request_text, _) in enumerate(pieces):
        try:
            parsed = load_yaml(request_text)
        except YAMLError:
            return None
        if not (isinstance(parsed, list) and len(parsed) == 1 and isinstance(parsed[0], dict)):
            return None
        item = parsed[0]
        if "request" not in item or "response" in item:
            return None
        try:
            requests.append(RecordedRequest.model_validate(item["request"]))
        except ValidationError as exc:
            raise format_validation_error(exc, path, prefix=("interactions", index, "request")) from None
        item_extras.append({k: v for k, v in item.items() if k != "request"})
    if "interactions" in top:
        # A second `interactions:` list (a merge gone wrong): the whole parse refuses the key.
        return None
    try:
        # The top-level keys are checked as a whole parse checks them (`version`, the schema).
        document = CassetteDocument.model_validate(top)
    except ValidationError as exc:
        raise format_validation_error(exc, path) from None
    top.pop("version", None)
    top.pop("llmcassette_schema", None)
    return LazyCassette(
        path,
        raw=raw,
        version=document.version,
        extras=top,
        requests=requests,
        item_extras=item_extras,
        response_texts=[response for _, response in pieces],
        responses=[None] * len(pieces),
    )
