"""
Sending a drift run's requests to the live upstream and recording the fresh answers.

Each answer is captured as the engine captures a live one (every chunk with its arrival time, a
stream cut mid-way kept as ``end: error``) and stored through the same builders, scrubbed, with the
credentials just sent added to the literal secrets, so they cannot reach a file even if an
upstream echoes them. Busy answers (429, 5xx, 529) are retried after the upstream's own
``retry-after-ms`` / ``Retry-After``, or a doubling backoff, within the run's bounds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from .._models import Interaction
from .._recording import Capture, build_response
from .._scrub import Scrubber
from ._plan import Planned

__all__ = ["Fresh", "SendOptions", "retry_delay_s", "send_all"]

#: Statuses that mean "busy, ask again later".
RETRIED_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 529})


@dataclass(frozen=True)
class SendOptions:
    """The bounds of a drift run's sending."""

    concurrency: int = 4
    retries: int = 3
    max_wait_s: float = 60.0
    timeout_s: float = 120.0
    first_backoff_s: float = 1.0


@dataclass
class Fresh:
    """What the upstream answered to one planned request."""

    planned: Planned
    #: The fresh interaction (the recorded request, the new response), or None when sending failed.
    interaction: Interaction | None
    attempts: int
    #: Why sending failed (no answer after every try), or None.
    error: str | None = None
    #: Seconds waited before retries, in order.
    waits_s: tuple[float, ...] = ()


def retry_delay_s(headers: httpx.Headers, *, now_s: float | None = None) -> float | None:
    """The wait an upstream asks for: ``retry-after-ms``, else ``Retry-After`` (seconds or a date)."""
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            return max(0.0, float(value) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = time.time() if now_s is None else now_s
    return max(0.0, moment.timestamp() - now)


async def _exchange(
    client: httpx.AsyncClient, planned: Planned, scrubber: Scrubber
) -> tuple[Any, Interaction]:
    """One request and its whole answer, captured chunk by chunk."""
    start = time.monotonic()
    request = client.build_request(planned.method, planned.url, headers=planned.headers, content=planned.body)
    response = await client.send(request, stream=True)
    captured: list[Capture] = []
    capture = Capture(start=start, on_finish=captured.append)
    try:
        if response.is_stream_consumed:
            # A transport that answered with its body in hand (a mock, in tests) has no chunks.
            if response.content:
                capture.chunk(response.content)
        else:
            async for chunk in response.aiter_raw():
                capture.chunk(chunk)
    except httpx.TransportError as exc:
        capture.finish(error=exc)
    finally:
        await response.aclose()
    capture.finish()
    reason = response.reason_phrase or ""
    stored = build_response(
        status_code=response.status_code,
        reason=reason,
        raw_headers=list(response.headers.raw),
        capture=captured[0],
        scrubber=scrubber,
        decode_compressed=True,
        url=planned.url,
    )
    # The recorded request stays as it was: it is what the tests send, and what matching needs.
    return response, Interaction(request=planned.interaction.request, response=stored)


async def _send_one(
    client: httpx.AsyncClient,
    planned: Planned,
    scrubber: Scrubber,
    options: SendOptions,
    sleep: Callable[[float], Awaitable[None]],
) -> Fresh:
    waits: list[float] = []
    backoff_s = options.first_backoff_s
    attempts = 0
    while True:
        attempts += 1
        busy: Interaction | None = None
        asked: float | None = None
        try:
            response, interaction = await _exchange(client, planned, scrubber)
        except httpx.HTTPError as exc:
            if attempts > options.retries:
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                return Fresh(planned, None, attempts, error=error, waits_s=tuple(waits))
        else:
            if response.status_code not in RETRIED_STATUSES or attempts > options.retries:
                return Fresh(planned, interaction, attempts, waits_s=tuple(waits))
            busy, asked = interaction, retry_delay_s(response.headers)
        delay = backoff_s if asked is None else asked
        if delay > options.max_wait_s:
            if busy is not None and asked is not None:
                # A scheduled job does not wait that long: the busy answer is what it got.
                return Fresh(planned, busy, attempts, waits_s=tuple(waits))
            delay = options.max_wait_s
        waits.append(delay)
        await sleep(delay)
        backoff_s *= 2


async def send_all(
    plans: Sequence[Planned],
    *,
    options: SendOptions,
    scrubber: Scrubber,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    transport: httpx.AsyncBaseTransport | None = None,
) -> list[Fresh]:
    """Send every planned request (skipped ones excluded by the caller), at most ``concurrency`` at once."""
    secrets = tuple(
        value.removeprefix("Bearer ")
        for plan in plans
        for name, value in plan.headers.items()
        if plan.credential_env is not None and name.lower() in scrubber.secret_headers
    )
    scrubber = dataclasses.replace(scrubber, secrets=(*scrubber.secrets, *sorted(set(secrets))))
    limit = asyncio.Semaphore(options.concurrency)
    timeout = httpx.Timeout(options.timeout_s)

    async with httpx.AsyncClient(timeout=timeout, transport=transport) as client:

        async def bounded(planned: Planned) -> Fresh:
            async with limit:
                return await _send_one(client, planned, scrubber, options, sleep)

        return list(await asyncio.gather(*(bounded(planned) for planned in plans)))
