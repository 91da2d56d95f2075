"""
A small chat client for OpenAI-compatible servers, written the way applications write their own
provider wrappers: an ``httpx.AsyncClient``, ``POST /chat/completions``, and a hand-rolled SSE loop
that assembles text deltas, tool calls, the finish reason and token usage.

It knows nothing about llmcassette. The demo replays a cassette underneath it, and the client
cannot tell the difference from a live server.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_MODEL", "ChatClient", "ChatError", "ChatResult", "ToolCall", "Usage"]

#: Where the demo's server listened when the bundled cassette was recorded.
DEFAULT_BASE_URL = "http://127.0.0.1:8000/v1"
DEFAULT_MODEL = "demo-model"


class ChatError(Exception):
    """The server answered with an error status, or an error event in the stream."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


@dataclass
class ToolCall:
    """A function call the model asked for; ``arguments`` is the JSON text as the model wrote it."""

    id: str = ""
    name: str = ""
    arguments: str = ""

    def parsed_arguments(self) -> dict[str, Any]:
        """The arguments as a dict."""
        value = json.loads(self.arguments or "{}")
        if not isinstance(value, dict):
            raise ChatError(f"tool call {self.name!r} has arguments that are not a JSON object")
        return value


@dataclass(frozen=True)
class Usage:
    """Token counts the server reported."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


@dataclass
class ChatResult:
    """One assistant turn, whether it was streamed or not."""

    model: str = ""
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    usage: Usage | None = None

    def as_message(self) -> dict[str, Any]:
        """The assistant message to append to the conversation."""
        message: dict[str, Any] = {"role": "assistant", "content": self.text or None}
        if self.tool_calls:
            message["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in self.tool_calls
            ]
        return message


def _usage(data: Any) -> Usage | None:
    if not isinstance(data, dict):
        return None
    return Usage(
        prompt_tokens=int(data.get("prompt_tokens", 0)),
        completion_tokens=int(data.get("completion_tokens", 0)),
        total_tokens=int(data.get("total_tokens", 0)),
    )


def _error_text(body: bytes) -> str:
    # OpenAI-compatible servers put the reason in {"error": {"message": ...}}; others send text.
    try:
        data = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace").strip()[:200]
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        return str(error.get("message", error))
    return str(error or data)[:200]


class ChatClient:
    """
    Async client for ``/chat/completions`` on any OpenAI-compatible server.

    Example::

        async with ChatClient(api_key=key) as client:
            result = await client.stream_chat([{"role": "user", "content": "Hi"}])
            print(result.text, result.usage)
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        api_key: str | None = None,
        model: str = DEFAULT_MODEL,
        timeout_s: float = 30.0,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.model = model
        self._http = httpx.AsyncClient(base_url=base_url, headers=headers, timeout=timeout_s)

    async def __aenter__(self) -> ChatClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the underlying HTTP client."""
        await self._http.aclose()

    def _payload(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None, stream: bool
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {"model": self.model, "messages": messages, "temperature": 0}
        if tools:
            payload["tools"] = tools
        if stream:
            # Without this option, OpenAI-compatible servers leave usage out of streamed replies.
            payload["stream"] = True
            payload["stream_options"] = {"include_usage": True}
        return payload

    async def chat(
        self, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None
    ) -> ChatResult:
        """Ask for a whole reply in one JSON response."""
        response = await self._http.post("/chat/completions", json=self._payload(messages, tools, False))
        if response.status_code != 200:
            raise ChatError(
                f"server returned {response.status_code}: {_error_text(response.content)}",
                status_code=response.status_code,
            )
        data = response.json()
        choice = data["choices"][0]
        message = choice.get("message") or {}
        calls = [
            ToolCall(
                id=c.get("id", ""), name=c["function"]["name"], arguments=c["function"].get("arguments", "")
            )
            for c in message.get("tool_calls") or []
        ]
        return ChatResult(
            model=data.get("model", ""),
            text=message.get("content") or "",
            tool_calls=calls,
            finish_reason=choice.get("finish_reason"),
            usage=_usage(data.get("usage")),
        )

    async def stream_chat(
        self, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None
    ) -> ChatResult:
        """Stream a reply and assemble it as the deltas arrive."""
        result = ChatResult()
        calls: dict[int, ToolCall] = {}
        text: list[str] = []
        payload = self._payload(messages, tools, True)
        async with self._http.stream("POST", "/chat/completions", json=payload) as response:
            if response.status_code != 200:
                body = await response.aread()
                raise ChatError(
                    f"server returned {response.status_code}: {_error_text(body)}",
                    status_code=response.status_code,
                )
            async for line in response.aiter_lines():
                # Blank lines end events; lines starting with ':' are keep-alive comments.
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    # Read on to the end rather than break: the connection then goes back to
                    # the pool instead of being closed mid-response.
                    continue
                try:
                    chunk = json.loads(data)
                except ValueError:
                    continue  # a malformed event is skipped, as most clients do
                if not isinstance(chunk, dict):
                    continue
                if "error" in chunk:
                    raise ChatError(f"error event in stream: {_error_text(data.encode())}")
                result.model = chunk.get("model", result.model)
                if chunk.get("usage"):
                    result.usage = _usage(chunk["usage"])
                for choice in chunk.get("choices") or []:
                    delta = choice.get("delta") or {}
                    if delta.get("content"):
                        text.append(delta["content"])
                    for part in delta.get("tool_calls") or []:
                        # The first delta of a call carries its id and name; later ones only
                        # append to its arguments, and are told apart by index.
                        call = calls.setdefault(part.get("index", 0), ToolCall())
                        call.id = part.get("id") or call.id
                        function = part.get("function") or {}
                        call.name = function.get("name") or call.name
                        call.arguments += function.get("arguments") or ""
                    if choice.get("finish_reason"):
                        result.finish_reason = choice["finish_reason"]
        result.text = "".join(text)
        result.tool_calls = [calls[i] for i in sorted(calls)]
        return result
