"""
The profiles' terminator checks read events through the one decoder (:mod:`llmcassette.providers._events`):
on every corpus stream they pick out the events the decoder's reading says end a stream, and where
their rules differ from the decoder's ``type`` (the payload's ``type`` first), the old rule holds.
"""

from __future__ import annotations

from collections import Counter
from functools import cache

import pytest

import llmcassette
from llmcassette import Interaction
from llmcassette._exchange import RequestInfo
from llmcassette._framing import Framing, detect_framing, split_events
from llmcassette.providers import Profile, detect_profile, get_profile
from llmcassette.providers._events import DONE, NOT_JSON, Event, decode_event, decode_events
from llmcassette.providers.anthropic import AnthropicProfile
from llmcassette.providers.ollama import OllamaProfile
from llmcassette.providers.openai import _ResponsesWire
from tests.corpus import CORPUS, MISSING_REASON, corpus_files, corpus_path, decoded, header, params

ANTHROPIC = get_profile("anthropic")
RESPONSES = get_profile("openai-responses")
OLLAMA = get_profile("ollama")
_RESPONSES_END = {"response.completed", "response.incomplete", "response.failed"}


def _ends_stream(profile: Profile, event: Event) -> bool:
    """Whether ``event``, as the decoder reads it, is the one that ends ``profile``'s streams."""
    if isinstance(profile, AnthropicProfile):
        return event.type == "message_stop"
    if isinstance(profile, _ResponsesWire):
        return event.type in _RESPONSES_END
    if isinstance(profile, OllamaProfile):
        return isinstance(event.value, dict) and event.value.get("done") is True
    if profile.terminator is not None:
        return event.value is DONE
    return False  # Gemini, Bedrock and unknown upstreams send no terminator


@cache
def _streams(rel: str) -> tuple[tuple[Profile, Framing, bytes], ...]:
    """(profile, framing, body) of every streamed response of a corpus file."""
    streams = []
    for interaction in llmcassette.load_cassette(corpus_path(rel)).interactions:
        streams += _stream(interaction)
    return tuple(streams)


def _stream(interaction: Interaction) -> list[tuple[Profile, Framing, bytes]]:
    request, response = interaction.request, interaction.response
    headers = {name.lower(): values[0] for name, values in request.headers.items() if values}
    profile = detect_profile(RequestInfo(request.method, request.uri, headers, request.content))
    body = decoded(response.headers, response.content)
    framing = detect_framing(header(response.headers, "content-type"), body, url=request.uri)
    return [] if framing is Framing.NONE else [(profile, framing, body)]


@pytest.mark.parametrize("rel", params())
def test_terminator_check_agrees_with_the_decoder(rel: str) -> None:
    for profile, framing, body in _streams(rel):
        # The pieces the engine and lint hand the check, less those that carry no event.
        pieces = [piece for piece in split_events(body, framing) if decode_event(piece, framing) is not None]
        events = decode_events(body, framing)
        assert [decode_event(piece, framing) for piece in pieces] == events
        checked = [profile.is_terminator(piece) for piece in pieces]
        assert checked == [_ends_stream(profile, event) for event in events], (profile.name, framing)


@pytest.mark.skipif(CORPUS is None, reason=MISSING_REASON)
def test_the_corpus_has_terminators_of_every_kind() -> None:
    # Without this, a check that never fires would agree with a reference that never fires.
    found: Counter[str] = Counter()
    for rel in corpus_files():
        for profile, framing, body in _streams(rel):
            found[profile.name] += sum(profile.is_terminator(piece) for piece in split_events(body, framing))
    for name in ("anthropic", "openai", "openai-responses", "ollama"):
        assert found[name] > 0, f"no {name} stream in the corpus ends with a terminator"


# -- where the checks keep rules of their own ------------------------------------------------------


def test_a_bare_named_event_still_ends_a_stream() -> None:
    # The decoder drops an SSE block without data; the checks have always read its name alone.
    bare = b"event: message_stop\n\n"
    assert decode_event(bare, Framing.SSE) is None
    named = Event("message_stop", NOT_JSON, "message_stop")
    assert decode_event(bare, Framing.SSE, named_without_data=True) == named
    assert ANTHROPIC.is_terminator(bare)
    assert RESPONSES.is_terminator(b"event: response.completed\r\n\r\n")
    assert not ANTHROPIC.is_terminator(b": keep-alive\n\n")
    assert not RESPONSES.is_terminator(b"event:\n\n")


def test_the_payload_type_comes_before_the_event_name() -> None:
    # The decoder's `type` is the `event:` name first; the checks go by the payload's `type`.
    renamed = b'event: ping\ndata: {"type": "message_stop"}\n\n'
    assert decode_event(renamed, Framing.SSE) == Event("ping", {"type": "message_stop"}, "ping")
    assert ANTHROPIC.is_terminator(renamed)
    assert not ANTHROPIC.is_terminator(b'event: message_stop\ndata: {"type": "ping"}\n\n')
    # Anthropic falls back on the name when the payload has no type; the Responses check does
    # not when the payload is an object, only when it is not one.
    assert ANTHROPIC.is_terminator(b"event: message_stop\ndata: {}\n\n")
    untyped = b'event: response.completed\ndata: {"sequence_number": 9}\n\n'
    assert decode_event(untyped, Framing.SSE) == Event(
        "response.completed", {"sequence_number": 9}, "response.completed"
    )
    assert not RESPONSES.is_terminator(untyped)
    assert RESPONSES.is_terminator(b"event: response.failed\ndata: [DONE]\n\n")


@pytest.mark.parametrize(
    ("line", "ends"),
    [
        (b'{"done": true}\n', True),
        (b'{"done": true}\r\n', True),
        (b'\x0c{"done": true}\x0b\n', True),  # padded with whitespace JSON does not allow
        (b'{"done": 1}\n', False),
        (b'{"done": false}\n', False),
        (b"\n", False),
        (b'data: {"done": true}\n\n', False),  # an SSE event is not an Ollama line
    ],
)
def test_an_ollama_line_ends_the_stream_when_done_is_true(line: bytes, ends: bool) -> None:
    assert OLLAMA.is_terminator(line) is ends
