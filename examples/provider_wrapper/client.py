"""
A provider wrapper: one async ``acomplete()`` over an OpenAI-compatible streaming endpoint, with
the two retries that multi-provider wrappers need most.

- **429 Too Many Requests**: wait as long as the server asks. The hint is read the way the
  official SDKs read it: ``retry-after-ms`` first (the more precise), then ``retry-after`` in
  seconds, then ``retry-after`` as an HTTP-date; 1 s when there is none. A server that asks for
  more than ``max_wait_s`` is not worth waiting for: :class:`RateLimited` at once.
- **Empty stream**: a 200 that ends with ``data: [DONE]`` and no text is a provider hiccup, not
  a reason to slow down, so it is retried after a short fixed delay.

Both count against one budget of ``max_attempts``; when it is spent, :class:`RetriesExhausted`
says how many attempts were made and how long was waited in total. A successful
:class:`Completion` reports the same. Unlike ``streaming_client`` this one is on plain httpx and
reads the ``data:`` lines itself.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx

__all__ = [
    "Completion",
    "ProviderError",
    "ProviderWrapper",
    "RateLimited",
    "RetriesExhausted",
    "retry_after_s",
]

CHAT_PATH = "/v1/chat/completions"


class ProviderError(Exception):
    """The provider failed in a way this wrapper does not retry."""


class RateLimited(ProviderError):
    """The provider asked to wait longer than the wrapper is willing to."""

    def __init__(self, message: str, *, wait_s: float) -> None:
        super().__init__(message)
        self.wait_s = wait_s


class RetriesExhausted(ProviderError):
    """Every attempt was rate limited or empty."""

    def __init__(self, message: str, *, attempts: int, waited_s: float) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.waited_s = waited_s


@dataclass(frozen=True)
class Completion:
    text: str
    #: How many requests it took.
    attempts: int
    #: Seconds spent waiting between them.
    waited_s: float


@dataclass(frozen=True)
class _Retry:
    """An attempt to try again: why, and how long to wait first."""

    reason: str
    wait_s: float


def retry_after_s(headers: Mapping[str, str], now_s: float) -> float | None:
    """
    The wait a response asks for, in seconds, or None when it names none: ``retry-after-ms``,
    else ``retry-after`` as seconds or as an HTTP-date (counted from ``now_s``, never negative).
    """
    milliseconds = headers.get("retry-after-ms")
    if milliseconds is not None:
        try:
            return max(0.0, float(milliseconds) / 1000.0)
        except ValueError:
            pass  # fall back to retry-after
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        date = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, date.timestamp() - now_s)


class ProviderWrapper:
    """
    Complete chats through an OpenAI-compatible provider, retrying 429s and empty streams.

    ``now`` is the wall clock that HTTP-date hints are counted from (``time.time`` by default,
    looked up at each call so that a patched one is seen).
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str,
        model: str,
        max_attempts: int = 4,
        default_wait_s: float = 1.0,
        max_wait_s: float = 60.0,
        empty_retry_delay_s: float = 0.5,
        now: Callable[[], float] | None = None,
    ) -> None:
        self.model = model
        self.max_attempts = max_attempts
        self.default_wait_s = default_wait_s
        self.max_wait_s = max_wait_s
        self.empty_retry_delay_s = empty_retry_delay_s
        self._now = now
        self._http = httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {api_key}"})

    async def acomplete(self, messages: list[dict[str, str]]) -> Completion:
        payload = {"model": self.model, "messages": messages, "stream": True}
        waited_s = 0.0
        reason = ""
        for attempt in range(1, self.max_attempts + 1):
            outcome = await self._attempt(payload)
            if isinstance(outcome, str):
                return Completion(outcome, attempts=attempt, waited_s=waited_s)
            reason = outcome.reason
            if attempt == self.max_attempts:
                break
            # asyncio.sleep looked up at call time, so a test's virtual clock sees the wait.
            await asyncio.sleep(outcome.wait_s)
            waited_s += outcome.wait_s
        raise RetriesExhausted(
            f"gave up after {self.max_attempts} attempts (the last: {reason}); "
            f"waited {waited_s:g} s in total",
            attempts=self.max_attempts,
            waited_s=waited_s,
        )

    def _rate_limit_wait(self, headers: Mapping[str, str]) -> float:
        now_s = self._now() if self._now is not None else time.time()
        wait_s = retry_after_s(headers, now_s)
        if wait_s is None:
            return self.default_wait_s
        if wait_s > self.max_wait_s:
            raise RateLimited(
                f"the provider asks to wait {wait_s:g} s, more than the {self.max_wait_s:g} s allowed",
                wait_s=wait_s,
            )
        return wait_s

    async def _attempt(self, payload: dict[str, Any]) -> str | _Retry:
        """One request: the text, or why to try again. Other failures raise."""
        async with self._http.stream("POST", CHAT_PATH, json=payload) as response:
            if response.status_code == 429:
                await response.aread()
                return _Retry("rate limited", self._rate_limit_wait(response.headers))
            if response.is_error:
                await response.aread()
                raise ProviderError(f"HTTP {response.status_code}: {response.text[:200]}")
            parts: list[str] = []
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue  # blank separators, comments, other SSE fields
                data = line.removeprefix("data:").strip()
                if data == "[DONE]":
                    # Read on to the end of the body (it ends here) rather than break: a response
                    # read to the end hands its connection back to the pool.
                    continue
                for choice in json.loads(data).get("choices", []):
                    content = (choice.get("delta") or {}).get("content")
                    if content:
                        parts.append(content)
        text = "".join(parts)
        return text if text else _Retry("empty stream", self.empty_retry_delay_s)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> ProviderWrapper:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
