"""
A streaming chat client for OpenAI-compatible servers, sync and async, on httpx2.

Why httpx2 rather than httpx: httpx2 reads server-sent events itself (``client.sse(...)``,
including events and characters split across network reads), so this client only deals with
events, not bytes. It is also what the current openai and anthropic SDKs run on, so an app that
uses them has it already. (``provider_wrapper`` shows the same kind of client on httpx, reading
``data:`` lines by hand.)

What the tests prove, fault by fault:

- 5xx and 429 answers, and connection failures before any text arrived, are retried with
  exponential backoff: 0.5 s, 1 s, 2 s, then :class:`UpstreamError`. Sleeps go through
  ``time.sleep`` / ``asyncio.sleep`` looked up at call time, so a test's virtual clock sees them.
- An event whose JSON does not parse is logged and skipped; the rest of the text still arrives.
- A stream that breaks once text has been delivered raises :class:`StreamInterrupted`, carrying
  the partial text. It is not retried: the caller already has those deltas, and a second request
  would repeat them (and pay for them twice). The same goes for a stream that ends without
  ``data: [DONE]`` and for the provider's own error event mid-stream.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx2

__all__ = [
    "AsyncStreamingClient",
    "Backoff",
    "StreamInterrupted",
    "StreamingClient",
    "StreamingError",
    "UpstreamError",
]

logger = logging.getLogger(__name__)

CHAT_PATH = "/v1/chat/completions"


class StreamingError(Exception):
    """Base class of this client's errors."""


class UpstreamError(StreamingError):
    """No stream was obtained: an error status, or no connection. ``status`` is None for the latter."""

    def __init__(self, message: str, *, status: int | None) -> None:
        super().__init__(message)
        self.status = status

    @property
    def retryable(self) -> bool:
        return self.status is None or self.status == 429 or self.status >= 500


class StreamInterrupted(StreamingError):
    """The stream broke after text was delivered; ``partial`` is the text received until then."""

    def __init__(self, message: str, *, partial: str) -> None:
        super().__init__(message)
        self.partial = partial


@dataclass(frozen=True)
class Backoff:
    """
    Up to ``attempts`` tries, waiting ``first_s``, then ``factor`` times longer each time, at most
    ``max_s``. No jitter, to keep the example short; a real client adds some (from a seeded
    ``random.Random`` in tests) so that many clients do not retry in step.
    """

    attempts: int = 4
    first_s: float = 0.5
    factor: float = 2.0
    max_s: float = 8.0

    def delay_s(self, failures: int) -> float:
        """The wait after the ``failures``-th failed attempt (from 1)."""
        return min(self.max_s, self.first_s * self.factor ** (failures - 1))


class _Assembler:
    """Turns the stream's events into text deltas; shared by the sync and async clients."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.done = False

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def feed(self, data: str) -> str | None:
        """The text delta carried by one event's data, or None."""
        if data == "[DONE]":
            self.done = True
            return None
        try:
            chunk = json.loads(data)
        except ValueError:
            # One bad event should not cost the whole answer: note it and read on.
            logger.warning("skipping a malformed chunk: %.80r", data)
            return None
        if not isinstance(chunk, dict):
            logger.warning("skipping a chunk that is not a JSON object: %.80r", data)
            return None
        if "error" in chunk:
            raise StreamInterrupted(
                f"the provider reported an error mid-stream: {_error_message(chunk)}", partial=self.text
            )
        choices = chunk.get("choices") or [{}]
        content = (choices[0].get("delta") or {}).get("content")
        if not content:
            return None  # the role chunk, the finish chunk
        self.parts.append(str(content))
        return self.parts[-1]

    def finish(self) -> None:
        """Check that the stream ended with its terminator, not just stopped."""
        if not self.done:
            raise StreamInterrupted("the stream ended without data: [DONE]", partial=self.text)

    def dropped(self, exc: httpx2.TransportError) -> UpstreamError:
        """
        The retryable error for a connection that failed before any text arrived; once text has
        been delivered, :class:`StreamInterrupted` is raised instead.
        """
        if self.parts:
            raise StreamInterrupted(f"the connection dropped mid-stream: {exc}", partial=self.text) from exc
        return UpstreamError(f"the request failed: {type(exc).__name__}: {exc}", status=None)


def _error_message(body: Any) -> str:
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or error)
    return str(error or body)


def _status_error(status: int, body: bytes) -> UpstreamError:
    try:
        message = _error_message(json.loads(body))
    except ValueError:
        message = body.decode("utf-8", "replace")[:200]
    return UpstreamError(f"HTTP {status}: {message}", status=status)


def _gave_up(last: UpstreamError, attempts: int) -> UpstreamError:
    return UpstreamError(
        f"gave up after {attempts} attempts; the last failed with {last}", status=last.status
    )


class _Base:
    """What the sync and async clients share: the model, the backoff and the request body."""

    def __init__(self, model: str, backoff: Backoff | None) -> None:
        self.model = model
        self.backoff = backoff or Backoff()

    def _payload(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        return {"model": self.model, "messages": messages, "stream": True}


class StreamingClient(_Base):
    """The blocking client. ``stream()`` yields text deltas; ``complete()`` joins them."""

    def __init__(self, base_url: str, *, api_key: str, model: str, backoff: Backoff | None = None) -> None:
        super().__init__(model, backoff)
        self._http = httpx2.Client(base_url=base_url, headers={"Authorization": f"Bearer {api_key}"})

    def complete(self, messages: list[dict[str, str]]) -> str:
        return "".join(self.stream(messages))

    def stream(self, messages: list[dict[str, str]]) -> Iterator[str]:
        last: UpstreamError | None = None
        for attempt in range(1, self.backoff.attempts + 1):
            if last is not None:
                # Looked up on the module at call time (not `from time import sleep`), so that a
                # test's virtual clock, which patches `time.sleep`, sees the wait.
                time.sleep(self.backoff.delay_s(attempt - 1))
            assembler = _Assembler()
            try:
                with self._http.sse(CHAT_PATH, method="POST", json=self._payload(messages)) as source:
                    response = source.response
                    if response.is_success:
                        for event in source:
                            delta = assembler.feed(event.data)
                            if delta is not None:
                                yield delta
                        assembler.finish()
                        return
                    last = _status_error(response.status_code, response.read())
            except httpx2.TransportError as exc:
                last = assembler.dropped(exc)
            if not last.retryable:
                raise last
        assert last is not None
        raise _gave_up(last, self.backoff.attempts)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> StreamingClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncStreamingClient(_Base):
    """The asyncio twin of :class:`StreamingClient`, with the same behaviour."""

    def __init__(self, base_url: str, *, api_key: str, model: str, backoff: Backoff | None = None) -> None:
        super().__init__(model, backoff)
        self._http = httpx2.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {api_key}"})

    async def complete(self, messages: list[dict[str, str]]) -> str:
        return "".join([delta async for delta in self.stream(messages)])

    async def stream(self, messages: list[dict[str, str]]) -> AsyncIterator[str]:
        last: UpstreamError | None = None
        for attempt in range(1, self.backoff.attempts + 1):
            if last is not None:
                await asyncio.sleep(self.backoff.delay_s(attempt - 1))  # as above: a virtual clock sees it
            assembler = _Assembler()
            try:
                async with self._http.sse(CHAT_PATH, method="POST", json=self._payload(messages)) as source:
                    response = source.response
                    if response.is_success:
                        async for event in source:
                            delta = assembler.feed(event.data)
                            if delta is not None:
                                yield delta
                        assembler.finish()
                        return
                    last = _status_error(response.status_code, await response.aread())
            except httpx2.TransportError as exc:
                last = assembler.dropped(exc)
            if not last.retryable:
                raise last
        assert last is not None
        raise _gave_up(last, self.backoff.attempts)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncStreamingClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
