"""Sending a drift run's requests: captured answers, retries and their waits, bounds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx

from llmcassette._drift import Fresh, Planned, SendOptions, plan_interaction, retry_delay_s
from llmcassette._drift._send import send_all
from llmcassette._models import Interaction, StreamEnd
from llmcassette._scrub import Scrubber


def test_retry_delay_reads_milliseconds_seconds_and_dates() -> None:
    assert retry_delay_s(httpx.Headers({"retry-after-ms": "250", "retry-after": "9"})) == 0.25
    assert retry_delay_s(httpx.Headers({"retry-after": "3"})) == 3.0
    now = datetime(2026, 1, 1, tzinfo=UTC)
    date = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert retry_delay_s(httpx.Headers({"retry-after": date}), now_s=now.timestamp()) == 30.0
    assert retry_delay_s(httpx.Headers({"retry-after": "soon"})) is None
    assert retry_delay_s(httpx.Headers({})) is None


def _planned() -> Planned:
    interaction = Interaction.model_validate(
        {
            "request": {"method": "POST", "uri": "http://127.0.0.1:1/api/chat"},
            "response": {"status": {"code": 200}},
        }
    )
    return plan_interaction(Path("c.yaml"), 0, interaction, environ={})


def _run(handler: httpx.MockTransport, options: SendOptions) -> tuple[list[Fresh], list[float]]:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    answers = asyncio.run(
        send_all([_planned()], options=options, scrubber=Scrubber(), sleep=sleep, transport=handler)
    )
    return answers, slept


def test_a_wait_longer_than_the_bound_keeps_the_busy_answer() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(429, headers={"retry-after": "600"}, json={"error": "busy"})

    answers, slept = _run(httpx.MockTransport(handler), SendOptions(retries=3, max_wait_s=5))
    fresh = answers[0].interaction
    assert len(calls) == 1 and slept == []
    assert fresh is not None and fresh.response.status.code == 429


def test_backoff_doubles_without_a_retry_after_and_errors_are_retried() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            raise httpx.ConnectError("refused")
        if len(calls) == 2:
            return httpx.Response(503)
        return httpx.Response(200, json={"ok": True})

    answers, slept = _run(httpx.MockTransport(handler), SendOptions(retries=3, first_backoff_s=0.5))
    assert slept == [0.5, 1.0]
    fresh = answers[0].interaction
    assert answers[0].attempts == 3 and fresh is not None and fresh.response.status.code == 200


def test_no_answer_after_every_retry_is_a_failure_with_the_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    answers, slept = _run(httpx.MockTransport(handler), SendOptions(retries=2, first_backoff_s=0.1))
    assert answers[0].interaction is None
    assert answers[0].error == "ConnectError: refused"
    assert slept == [0.1, 0.2]


def test_a_stream_cut_mid_way_is_recorded_as_cut() -> None:
    class Cut(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            yield b"data: 1\n\n"
            raise httpx.RemoteProtocolError("peer closed connection")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Cut())

    answers, _ = _run(httpx.MockTransport(handler), SendOptions(retries=0))
    fresh = answers[0].interaction
    assert fresh is not None and fresh.response.stream is not None
    response = fresh.response
    assert response.stream.end is StreamEnd.ERROR
    assert response.stream.error is not None and response.stream.error.type == "RemoteProtocolError"
    assert response.content == b"data: 1\n\n"
