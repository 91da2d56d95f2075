"""
The five SDKs as the fault tests drive them: one chat call each, sync or async, JSON or streamed,
and how to read the text (and each streamed item) out of what the call produced.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx
import httpx2
import ollama
import openai
from google import genai
from google.genai import types as genai_types

# The real waits, taken before any virtual clock replaces them.
REAL_SLEEP = time.sleep
REAL_ASYNC_SLEEP = asyncio.sleep

KEY = "sk-test-faults"
PROMPT = "What is the weather in Paris?"
MESSAGES = [{"role": "user", "content": PROMPT}]


class Call:
    """An SDK call, sync or async; ``got`` collects what it yields as it goes."""

    def sync(self, got: list[Any]) -> None:
        raise NotImplementedError

    async def run_async(self, got: list[Any]) -> None:
        raise NotImplementedError


@dataclass
class SdkCall(Call):
    """One SDK's chat call against ``base_url``; ``options`` go to its client (or, for litellm, the call)."""

    base_url: str
    stream: bool
    options: Mapping[str, Any] = field(default_factory=dict)


def _collect(result: Any, stream: bool, got: list[Any]) -> None:
    if stream:
        got.extend(result)
    else:
        got.append(result)


async def _collect_async(result: Any, stream: bool, got: list[Any]) -> None:
    if stream:
        async for item in result:
            got.append(item)
    else:
        got.append(result)


class OpenAICall(SdkCall):
    def _client_kwargs(self) -> dict[str, Any]:
        return {"api_key": KEY, "base_url": f"{self.base_url}/v1", "max_retries": 2, **self.options}

    def _request(self) -> dict[str, Any]:
        request: dict[str, Any] = {"model": "gpt-test", "messages": MESSAGES}
        if self.stream:
            request["stream"] = True
        return request

    def sync(self, got: list[Any]) -> None:
        with openai.OpenAI(**self._client_kwargs()) as client:
            _collect(client.chat.completions.create(**self._request()), self.stream, got)

    async def run_async(self, got: list[Any]) -> None:
        async with openai.AsyncOpenAI(**self._client_kwargs()) as client:
            await _collect_async(await client.chat.completions.create(**self._request()), self.stream, got)


class AnthropicCall(SdkCall):
    def _client_kwargs(self) -> dict[str, Any]:
        return {"api_key": KEY, "base_url": self.base_url, "max_retries": 2, **self.options}

    def _request(self) -> dict[str, Any]:
        return {"model": "claude-test", "max_tokens": 256, "messages": MESSAGES, "stream": self.stream}

    def sync(self, got: list[Any]) -> None:
        with anthropic.Anthropic(**self._client_kwargs()) as client:
            _collect(client.messages.create(**self._request()), self.stream, got)

    async def run_async(self, got: list[Any]) -> None:
        async with anthropic.AsyncAnthropic(**self._client_kwargs()) as client:
            await _collect_async(await client.messages.create(**self._request()), self.stream, got)


class GenaiCall(SdkCall):
    """google-genai; ``options`` are its ``HttpOptions`` (``retry_options``, for one)."""

    def _client(self) -> genai.Client:
        # The async client is left as it comes: with aiohttp installed (litellm brings it) it sends
        # through aiohttp, else through httpx2 (see `genai_without_aiohttp`).
        options = genai_types.HttpOptions(base_url=self.base_url, **self.options)
        return genai.Client(api_key=KEY, http_options=options)

    def _request(self) -> dict[str, Any]:
        return {"model": "gemini-test", "contents": PROMPT}

    def sync(self, got: list[Any]) -> None:
        with self._client() as client:
            if self.stream:
                got.extend(client.models.generate_content_stream(**self._request()))
            else:
                got.append(client.models.generate_content(**self._request()))

    async def run_async(self, got: list[Any]) -> None:
        async with self._client().aio as client:
            if self.stream:
                await _collect_async(
                    await client.models.generate_content_stream(**self._request()), True, got
                )
            else:
                got.append(await client.models.generate_content(**self._request()))


@contextlib.contextmanager
def genai_without_aiohttp() -> Iterator[None]:
    """
    google-genai as it runs where aiohttp is not installed: its async client sends through
    httpx2. (It decides by a flag it set on import, which is all this turns off.)
    """
    from google.genai import _api_client

    saved = _api_client.has_aiohttp
    _api_client.has_aiohttp = False
    try:
        yield
    finally:
        _api_client.has_aiohttp = saved


class OllamaCall(SdkCall):
    def _request(self) -> dict[str, Any]:
        return {"model": "llama-test", "messages": MESSAGES, "stream": self.stream}

    def sync(self, got: list[Any]) -> None:
        with ollama.Client(host=self.base_url, **self.options) as client:
            _collect(client.chat(**self._request()), self.stream, got)

    async def run_async(self, got: list[Any]) -> None:
        async with ollama.AsyncClient(host=self.base_url, **self.options) as client:
            await _collect_async(await client.chat(**self._request()), self.stream, got)


class LitellmCall(SdkCall):
    """litellm through its OpenAI provider; ``options`` go to ``completion`` (``num_retries``, for one)."""

    def _request(self) -> dict[str, Any]:
        return {
            "model": "openai/gpt-test",
            "messages": MESSAGES,
            "api_base": f"{self.base_url}/v1",
            "api_key": KEY,
            "stream": self.stream,
            **self.options,
        }

    def sync(self, got: list[Any]) -> None:
        import litellm

        # litellm's sync path calls asyncio.get_event_loop() to dispatch its logging hooks, which
        # creates a loop for the thread and never closes it (a ResourceWarning, an error here, when
        # it is collected). Give it a loop of ours for the call, and close it after.
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            _collect(litellm.completion(**self._request()), self.stream, got)
        finally:
            asyncio.set_event_loop(None)
            loop.close()

    async def run_async(self, got: list[Any]) -> None:
        import litellm

        await _collect_async(await litellm.acompletion(**self._request()), self.stream, got)


# -- reading what a call produced ----------------------------------------------------------------


def _openai_piece(chunk: Any) -> str:
    return (chunk.choices[0].delta.content or "") if chunk.choices else ""


def openai_text(got: list[Any]) -> str:
    """The answer's text, from a completion or from its chunks (litellm's objects read the same)."""
    if got and got[0].object == "chat.completion":
        return str(got[0].choices[0].message.content)
    return "".join(_openai_piece(chunk) for chunk in got)


def openai_finish(got: list[Any]) -> str | None:
    if got and got[0].object == "chat.completion":
        return str(got[0].choices[0].finish_reason)
    return next((c.choices[0].finish_reason for c in got if c.choices and c.choices[0].finish_reason), None)


def _anthropic_piece(event: Any) -> str:
    is_text = event.type == "content_block_delta" and event.delta.type == "text_delta"
    return str(event.delta.text) if is_text else str(event.type)


def anthropic_text(got: list[Any]) -> str:
    if got and got[0].type == "message":
        return "".join(block.text for block in got[0].content if block.type == "text")
    return "".join(
        event.delta.text
        for event in got
        if event.type == "content_block_delta" and event.delta.type == "text_delta"
    )


def _genai_piece(response: Any) -> str:
    return "".join(part.text or "" for part in response.candidates[0].content.parts)


def genai_text(got: list[Any]) -> str:
    return "".join(_genai_piece(response) for response in got)


def _ollama_piece(part: Any) -> str:
    return str(part.message.content or "")


def ollama_text(got: list[Any]) -> str:
    return "".join(_ollama_piece(part) for part in got)


@dataclass(frozen=True)
class Sdk:
    """How the tests drive one SDK and read its answer."""

    name: str
    call: type[SdkCall]
    #: The answer's text, from what the call produced (JSON or streamed).
    text: Callable[[list[Any]], str]
    #: What one streamed item carried: its text, or (Anthropic's events without text) its type.
    piece: Callable[[Any], str]
    #: The request header in which the SDK counts the retries it has made, if it sends one.
    retry_header: str | None = None


SDKS: dict[str, Sdk] = {
    sdk.name: sdk
    for sdk in (
        Sdk("openai", OpenAICall, openai_text, _openai_piece, "x-stainless-retry-count"),
        Sdk("anthropic", AnthropicCall, anthropic_text, _anthropic_piece, "x-stainless-retry-count"),
        Sdk("genai", GenaiCall, genai_text, _genai_piece),
        Sdk("ollama", OllamaCall, ollama_text, _ollama_piece),
        Sdk("litellm", LitellmCall, openai_text, _openai_piece, "x-stainless-retry-count"),
    )
}


# -- wrappers ------------------------------------------------------------------------------------


@contextlib.contextmanager
def counting_transports(counts: Counter[str]) -> Iterator[None]:
    """
    Count the requests each transport class handles. Entered inside a cassette, it wraps
    llmcassette's interception, so it tells which transport a client really sent through.
    aiohttp's are counted as the connections its connector makes: one per request under a
    cassette, which closes each connection it answers.
    """
    import aiohttp
    from litellm.llms.custom_httpx.aiohttp_transport import LiteLLMAiohttpTransport

    targets: list[tuple[str, type, str]] = [
        ("httpx", httpx.HTTPTransport, "handle_request"),
        ("httpx2", httpx2.HTTPTransport, "handle_request"),
        ("httpx async", httpx.AsyncHTTPTransport, "handle_async_request"),
        ("httpx2 async", httpx2.AsyncHTTPTransport, "handle_async_request"),
        ("litellm aiohttp", LiteLLMAiohttpTransport, "handle_async_request"),
        ("aiohttp", aiohttp.TCPConnector, "_create_connection"),
    ]
    saved: list[tuple[type, str, Any]] = []

    def counting(name: str, inner: Any) -> Any:
        if inspect.iscoroutinefunction(inner):

            async def handle_async(self: Any, *args: Any) -> Any:
                counts[name] += 1
                return await inner(self, *args)

            return handle_async

        def handle(self: Any, *args: Any) -> Any:
            counts[name] += 1
            return inner(self, *args)

        return handle

    for name, owner, attribute in targets:
        inner = owner.__dict__[attribute]
        saved.append((owner, attribute, inner))
        setattr(owner, attribute, counting(name, inner))
    try:
        yield
    finally:
        for owner, attribute, inner in saved:
            setattr(owner, attribute, inner)


@dataclass
class Probed(Call):
    """Another call, with the requests counted per transport while it runs."""

    inner: Call
    counts: Counter[str] = field(default_factory=Counter)

    def sync(self, got: list[Any]) -> None:
        with counting_transports(self.counts):
            self.inner.sync(got)

    async def run_async(self, got: list[Any]) -> None:
        with counting_transports(self.counts):
            await self.inner.run_async(got)


@dataclass
class Lingering(Call):
    """Another call, then a real pause before the cassette and the clock are left."""

    inner: Call
    seconds: float

    def sync(self, got: list[Any]) -> None:
        self.inner.sync(got)
        REAL_SLEEP(self.seconds)

    async def run_async(self, got: list[Any]) -> None:
        await self.inner.run_async(got)
        await REAL_ASYNC_SLEEP(self.seconds)
