"""
The gateway client's token refresh, proven on a real recording.

``cassettes/gateway.yaml`` holds a token fetch, a chat, and a second token fetch (see
``record.py``). The faults answer the chat endpoint with the gateway's own 401 instead of the
recording. They are filtered to the chat path: the token fetch is a request too, and it comes
first, so a bare ``unauthorized:times=1`` would refuse the token fetch rather than the chat.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

import llmcassette
from examples.gateway_client.client import ChatReply, GatewayAuthError, GatewayClient, GatewayError
from examples.gateway_client.record import BASE_URL, CASSETTE, CLIENT_ID, CLIENT_SECRET, MESSAGES, MODEL

CHAT_REFUSED_ONCE = "unauthorized:times=1,path=/v1/chat/completions"
CHAT_REFUSED_ALWAYS = "unauthorized:path=/v1/chat/completions"
REPLY = "Hello, gateway! Your token worked."


def make_client() -> GatewayClient:
    return GatewayClient(BASE_URL, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)


def route(attempt: llmcassette.Attempt) -> tuple[str, int | None]:
    return urlsplit(attempt.url).path, attempt.status


def chats(cassette: llmcassette.Cassette) -> list[llmcassette.Attempt]:
    return [a for a in cassette.attempts if a.url.endswith("/v1/chat/completions")]


def test_a_chat_replays_offline() -> None:
    with llmcassette.use_cassette(CASSETTE) as cassette, make_client() as client:
        reply = client.chat(MESSAGES, model=MODEL)

    assert reply == ChatReply(text=REPLY, model=MODEL, finish_reason="stop")
    assert [route(a) for a in cassette.attempts] == [("/oauth/token", 200), ("/v1/chat/completions", 200)]


def test_a_refused_token_is_refreshed_and_the_chat_retried_once() -> None:
    with (
        llmcassette.use_cassette(CASSETTE, faults=[CHAT_REFUSED_ONCE]) as cassette,
        make_client() as client,
    ):
        reply = client.chat(MESSAGES, model=MODEL)

    assert reply.text == REPLY
    assert [route(a) for a in cassette.attempts] == [
        ("/oauth/token", 200),
        ("/v1/chat/completions", 401),  # the fault, in place of the recording
        ("/oauth/token", 200),  # the refresh
        ("/v1/chat/completions", 200),  # the recording
    ]
    refused, retried = chats(cassette)
    assert refused.faults == [CHAT_REFUSED_ONCE]
    assert retried.faults == []
    # The log never holds the tokens (both read "Bearer REDACTED"), but their fingerprints
    # tell them apart: the retry carried the new one.
    assert refused.headers["authorization"] == retried.headers["authorization"] == "Bearer REDACTED"
    assert refused.fingerprints["authorization"] != retried.fingerprints["authorization"]


def test_a_token_refused_twice_gives_up_after_one_retry() -> None:
    with (
        llmcassette.use_cassette(CASSETTE, faults=[CHAT_REFUSED_ALWAYS]) as cassette,
        make_client() as client,
    ):
        with pytest.raises(GatewayAuthError, match="refused a freshly issued token") as raised:
            client.chat(MESSAGES, model=MODEL)

    assert raised.value.status == 401
    refused, retried = chats(cassette)  # exactly two chat attempts: no retry loop
    assert [refused.status, retried.status] == [401, 401]
    assert refused.fingerprints["authorization"] != retried.fingerprints["authorization"]


def test_refused_client_credentials_fail_before_any_chat() -> None:
    with (
        llmcassette.use_cassette(CASSETTE, faults=["unauthorized:path=/oauth/token"]) as cassette,
        make_client() as client,
    ):
        with pytest.raises(GatewayAuthError, match="refused the client credentials"):
            client.chat(MESSAGES, model=MODEL)

    assert [route(a) for a in cassette.attempts] == [("/oauth/token", 401)]


def test_other_gateway_errors_are_raised_without_a_retry() -> None:
    with (
        llmcassette.use_cassette(CASSETTE, faults=["bad_gateway:path=/v1/chat/completions"]) as cassette,
        make_client() as client,
    ):
        with pytest.raises(GatewayError, match="gateway error 502") as raised:
            client.chat(MESSAGES, model=MODEL)

    assert raised.value.status == 502
    assert len(chats(cassette)) == 1
