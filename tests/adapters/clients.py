"""
Hand-written LLM clients of the kind llmcassette's users test, on the libraries the in-process
doors serve: an Ollama client on requests (NDJSON), an OpenAI-compatible client on aiohttp (SSE),
a chat client on ``urllib.request`` (JSON), a Bedrock client on boto3 (``converse``), and a
gateway client that checks the server with httpx before chatting through requests.

Each retries what is transient (429 and 5xx, honouring Retry-After; connection failures and
timeouts, also mid-stream) with exponential backoff, never a 4xx, and raises its own errors:
:class:`ChatStatusError` for an error status, :class:`ChatConnectionError` once the network
failures outlast its retries, :class:`ChatStreamError` for an answer that is broken, cut short or
empty. They are test code, not part of llmcassette.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
import boto3
import botocore.config
import botocore.exceptions
import httpx
import requests

__all__ = [
    "Answer",
    "BedrockClient",
    "ChatConnectionError",
    "ChatError",
    "ChatStatusError",
    "ChatStreamError",
    "GatewayClient",
    "OllamaClient",
    "OpenAICompatibleClient",
    "UrllibChatClient",
]

T = TypeVar("T")


class ChatError(Exception):
    """Every error the clients raise."""


class ChatConnectionError(ChatError):
    """The server could not be reached, or the connection broke or timed out."""


class ChatStatusError(ChatError):
    """The server answered an error status."""

    def __init__(self, status: int, detail: str, retry_after_s: float | None = None) -> None:
        super().__init__(f"the server answered {status}: {detail[:200]}")
        self.status = status
        self.retry_after_s = retry_after_s


class ChatStreamError(ChatError):
    """The answer is malformed, carries an error, stopped before its end, or says nothing."""


@dataclass
class Answer:
    text: str = ""
    tools: list[str] = field(default_factory=list)

    def checked(self) -> Answer:
        if not self.text and not self.tools:
            raise ChatStreamError("the answer is empty")
        return self


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after") or headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _json_line(line: bytes | str) -> Any:
    try:
        payload = json.loads(line)
    except ValueError as exc:
        raise ChatStreamError(f"malformed data: {line[:80]!r}") from exc
    if isinstance(payload, dict) and "error" in payload:
        error = payload["error"]
        raise ChatStreamError(str(error.get("message", error) if isinstance(error, dict) else error))
    return payload


@dataclass
class _Retrying:
    max_retries: int = 2
    backoff_s: float = 0.5

    def _delay(self, attempt: int, exc: ChatError) -> float | None:
        """The wait before the next attempt, None when ``exc`` is final."""
        if attempt == self.max_retries or isinstance(exc, ChatStreamError):
            return None
        if isinstance(exc, ChatStatusError):
            if exc.status != 429 and exc.status < 500:
                return None
            if exc.retry_after_s is not None:
                return exc.retry_after_s
        return self.backoff_s * 2**attempt

    def retrying(self, once: Callable[[], T]) -> T:
        attempt = 0
        while True:
            try:
                return once()
            except ChatError as exc:
                delay = self._delay(attempt, exc)
                if delay is None:
                    raise
            time.sleep(delay)
            attempt += 1

    async def aretrying(self, once: Callable[[], Awaitable[T]]) -> T:
        attempt = 0
        while True:
            try:
                return await once()
            except ChatError as exc:
                delay = self._delay(attempt, exc)
                if delay is None:
                    raise
            await asyncio.sleep(delay)
            attempt += 1


def _read_ndjson(lines: Iterable[bytes]) -> Answer:
    answer = Answer()
    for line in lines:
        if not line.strip():
            continue
        chunk = _json_line(line)
        message = chunk.get("message") or {}
        answer.text += message.get("content") or ""
        answer.tools += [call["function"]["name"] for call in message.get("tool_calls") or []]
        if chunk.get("done"):
            return answer.checked()
    raise ChatStreamError("the stream ended before its `done` line")


class OllamaClient(_Retrying):
    """Ollama's ``/api/chat``, streamed as NDJSON, on a requests session."""

    def __init__(self, base_url: str, *, model: str = "llama3", timeout_s: float = 30.0) -> None:
        super().__init__()
        self.base_url = base_url
        self.model = model
        self.timeout_s = timeout_s
        self.session = requests.Session()

    def chat(self, prompt: str) -> Answer:
        return self.retrying(lambda: self._chat_once(prompt))

    def _chat_once(self, prompt: str) -> Answer:
        body = {"model": self.model, "stream": True, "messages": [{"role": "user", "content": prompt}]}
        try:
            with self.session.post(
                f"{self.base_url}/api/chat", json=body, stream=True, timeout=self.timeout_s
            ) as response:
                if response.status_code != 200:
                    raise ChatStatusError(response.status_code, response.text, _retry_after(response.headers))
                return _read_ndjson(response.iter_lines())
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            raise ChatConnectionError(str(exc)) from exc


async def _read_sse(lines: AsyncIterable[bytes]) -> Answer:
    answer = Answer()
    async for raw in lines:
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            return answer.checked()
        for choice in _json_line(data).get("choices") or []:
            delta = choice.get("delta") or {}
            answer.text += delta.get("content") or ""
            answer.tools += [
                call["function"]["name"]
                for call in delta.get("tool_calls") or []
                if (call.get("function") or {}).get("name")
            ]
    raise ChatStreamError("the stream ended before `[DONE]`")


class OpenAICompatibleClient(_Retrying):
    """An OpenAI-compatible ``/v1/chat/completions``, streamed as SSE, on aiohttp."""

    def __init__(self, base_url: str, *, model: str = "gpt-test", read_timeout_s: float = 30.0) -> None:
        super().__init__()
        self.base_url = base_url
        self.model = model
        self.read_timeout_s = read_timeout_s

    async def achat(self, prompt: str) -> Answer:
        return await self.aretrying(lambda: self._achat_once(prompt))

    async def _achat_once(self, prompt: str) -> Answer:
        body = {"model": self.model, "stream": True, "messages": [{"role": "user", "content": prompt}]}
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=self.read_timeout_s)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session:
                async with session.post(f"{self.base_url}/v1/chat/completions", json=body) as response:
                    if response.status != 200:
                        detail = await response.text()
                        raise ChatStatusError(response.status, detail, _retry_after(response.headers))
                    return await _read_sse(response.content)
        except (TimeoutError, aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            raise ChatConnectionError(str(exc) or type(exc).__name__) from exc


class UrllibChatClient(_Retrying):
    """An OpenAI-compatible ``/v1/chat/completions`` answered as JSON, with ``urllib.request``."""

    def __init__(self, base_url: str, *, model: str = "gpt-test", timeout_s: float = 30.0) -> None:
        super().__init__()
        self.base_url = base_url
        self.model = model
        self.timeout_s = timeout_s

    def chat(self, prompt: str) -> Answer:
        return self.retrying(lambda: self._chat_once(prompt))

    def _chat_once(self, prompt: str) -> Answer:
        body = {"model": self.model, "messages": [{"role": "user", "content": prompt}]}
        request = urllib.request.Request(
            f"{self.base_url}/v1/chat/completions",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise ChatStatusError(
                exc.code, exc.read().decode("utf-8", "replace"), _retry_after(exc.headers)
            ) from exc
        except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, a cut body
            raise ChatConnectionError(str(exc)) from exc
        payload = _json_line(raw)
        try:
            message = payload["choices"][0]["message"]
        except (KeyError, IndexError, TypeError) as exc:
            raise ChatStreamError("the answer has no message") from exc
        tools = [call["function"]["name"] for call in message.get("tool_calls") or []]
        return Answer(message.get("content") or "", tools).checked()


class BedrockClient:
    """bedrock-runtime's ``converse`` through boto3, with botocore's standard retries."""

    def __init__(
        self, base_url: str, *, model: str = "anthropic.claude-3-haiku", timeout_s: float = 30.0
    ) -> None:
        self.model = model
        self.client = boto3.client(
            "bedrock-runtime",
            region_name="us-east-1",
            endpoint_url=base_url,
            aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
            aws_secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            config=botocore.config.Config(
                retries={"mode": "standard", "max_attempts": 3},
                read_timeout=timeout_s,
                connect_timeout=timeout_s,
            ),
        )

    def chat(self, prompt: str) -> Answer:
        messages = [{"role": "user", "content": [{"text": prompt}]}]
        try:
            answer = self.client.converse(modelId=self.model, messages=messages)
        except botocore.exceptions.ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            raise ChatStatusError(status, str(exc)) from exc
        except botocore.exceptions.BotoCoreError as exc:  # connection failures, timeouts
            raise ChatConnectionError(str(exc)) from exc
        # botocore does not check a JSON body's length: a cut answer parses without its output.
        output = answer.get("output")
        if not isinstance(output, dict) or "message" not in output:
            raise ChatStreamError("the answer has no output")
        blocks = output["message"].get("content") or []
        return Answer("".join(block.get("text", "") for block in blocks)).checked()


class GatewayClient:
    """Checks the server with httpx (``GET /api/tags``), then chats with :class:`OllamaClient`."""

    def __init__(self, base_url: str, *, model: str = "llama3") -> None:
        self.base_url = base_url
        self.model = model
        self.ollama = OllamaClient(base_url, model=model)

    def models(self) -> list[str]:
        try:
            response = httpx.get(f"{self.base_url}/api/tags", timeout=30.0)
        except httpx.TransportError as exc:
            raise ChatConnectionError(str(exc)) from exc
        if response.status_code != 200:
            raise ChatStatusError(response.status_code, response.text)
        return [model["name"] for model in response.json()["models"]]

    def chat(self, prompt: str) -> Answer:
        if self.model not in self.models():
            raise ChatError(f"the server does not have {self.model!r}")
        return self.ollama.chat(prompt)
