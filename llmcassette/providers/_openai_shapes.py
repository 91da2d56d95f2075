"""
Summaries of OpenAI-shaped bodies: Chat Completions (JSON and ``data:``-only SSE, also spoken by
Azure and the OpenAI-compatible gateways) and the Responses API (JSON and named-event SSE).

Chat streams carry ``choices[].delta`` pieces: text in ``content`` (a string, or Mistral's list
of typed parts), reasoning in ``reasoning_content`` or ``reasoning`` (gateways differ), tool calls
as ``tool_calls[]`` fragments told apart by ``index`` (the first fragment has the id and name,
later ones only argument text), usage in a chunk of its own (``choices: []``) or, on Groq, in
``x_groq.usage``. Responses streams name every event; text and tool-call arguments arrive as
``*.delta`` events keyed by ``output_index``, and the final ``response.completed`` (or
``.incomplete`` / ``.failed``) event carries the status and usage.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ._events import Event
from ._types import Summary, ToolCall
from ._wire import ToolCallAssembly, compact_json, error_message, flat_ints

__all__ = [
    "chat_json",
    "chat_stream",
    "content_texts",
    "first_choice",
    "is_responses_json",
    "responses_json",
    "responses_stream",
]


def content_texts(content: Any, thinking: bool = False) -> Iterator[tuple[str, bool]]:
    """
    The text of a chat message's ``content`` (a string, or a list of typed parts), piece by piece,
    each with whether it is reasoning rather than answer.
    """
    if isinstance(content, str):
        yield content, thinking
    for part in content if isinstance(content, list) else ():
        if not isinstance(part, Mapping):
            continue
        if part.get("type") == "text" and isinstance(part.get("text"), str):
            yield part["text"], thinking
        elif part.get("type") == "thinking":  # Mistral: {"type": "thinking", "thinking": [parts]}
            yield from content_texts(part.get("thinking"), True)


def _add_content(content: Any, text: list[str], reasoning: list[str]) -> None:
    for piece, thinking in content_texts(content):
        (reasoning if thinking else text).append(piece)


def _add_reasoning(message: Mapping[str, Any], reasoning: list[str]) -> None:
    for key in ("reasoning_content", "reasoning"):
        if isinstance(message.get(key), str):
            reasoning.append(message[key])
            return


def first_choice(value: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The first choice (``index`` 0) of a chat completion or chunk, the one summaries read."""
    for choice in value.get("choices") or ():
        if isinstance(choice, Mapping) and choice.get("index", 0) == 0:
            return choice
    return None


def _arguments(value: Any) -> str:
    return value if isinstance(value, str) else compact_json(value) if value is not None else ""


def chat_stream(events: Sequence[Event]) -> Summary:
    """The summary of a Chat Completions SSE stream (only the first choice is read)."""
    summary = Summary()
    text: list[str] = []
    reasoning: list[str] = []
    calls = ToolCallAssembly()
    last_key: Any = 0
    for event in events:
        value = event.value
        if not isinstance(value, Mapping):
            continue
        if value.get("error") and summary.error is None:
            summary.error = error_message(value)
        usage = value.get("usage")
        if not isinstance(usage, Mapping):
            usage = (
                (value.get("x_groq") or {}).get("usage") if isinstance(value.get("x_groq"), Mapping) else None
            )
        if isinstance(usage, Mapping):
            summary.usage = flat_ints(usage)
        choice = first_choice(value)
        if choice is None:
            continue
        delta = choice.get("delta") or {}
        if isinstance(delta, Mapping):
            _add_content(delta.get("content"), text, reasoning)
            _add_reasoning(delta, reasoning)
            for call in delta.get("tool_calls") or ():
                if not isinstance(call, Mapping):
                    continue
                # Calls are told apart by index; a gateway that leaves it out starts a call with
                # an id and continues it without one.
                key = call.get("index", call.get("id") or last_key)
                last_key = key
                function = call.get("function") or {}
                calls.add(
                    key, name=function.get("name"), arguments=function.get("arguments"), id=call.get("id")
                )
            legacy = delta.get("function_call")
            if isinstance(legacy, Mapping):
                calls.add("function_call", name=legacy.get("name"), arguments=legacy.get("arguments"))
        if choice.get("finish_reason"):
            summary.finish_reason = str(choice["finish_reason"])
    summary.text = "".join(text)
    summary.reasoning = "".join(reasoning)
    summary.tool_calls = calls.result()
    return summary


def chat_json(value: Any) -> Summary:
    """The summary of a Chat Completions JSON answer (only the first choice is read)."""
    if not isinstance(value, Mapping):
        return Summary()
    summary = Summary(usage=flat_ints(value.get("usage")))
    if value.get("error"):
        summary.error = error_message(value)
    choice = first_choice(value)
    if choice is None:
        return summary
    message = choice.get("message") or {}
    text: list[str] = []
    reasoning: list[str] = []
    if isinstance(message, Mapping):
        _add_content(message.get("content"), text, reasoning)
        _add_reasoning(message, reasoning)
        for call in message.get("tool_calls") or ():
            if isinstance(call, Mapping):
                function = call.get("function") or {}
                summary.tool_calls.append(
                    ToolCall(
                        str(function.get("name") or ""), _arguments(function.get("arguments")), call.get("id")
                    )
                )
        legacy = message.get("function_call")
        if isinstance(legacy, Mapping):
            summary.tool_calls.append(
                ToolCall(str(legacy.get("name") or ""), _arguments(legacy.get("arguments")))
            )
    summary.text = "".join(text)
    summary.reasoning = "".join(reasoning)
    if choice.get("finish_reason"):
        summary.finish_reason = str(choice["finish_reason"])
    return summary


# -- Responses API ----------------------------------------------------------------------------

_CALL_ITEMS = {"function_call": "arguments", "custom_tool_call": "input"}
_FINAL_EVENTS = ("response.completed", "response.incomplete", "response.failed")


def is_responses_json(value: Any) -> bool:
    """Whether a JSON answer is a Responses API object rather than a chat completion."""
    return isinstance(value, Mapping) and value.get("object") == "response"


def _finish(response: Mapping[str, Any]) -> str | None:
    details = response.get("incomplete_details")
    if isinstance(details, Mapping) and details.get("reason"):
        return str(details["reason"])
    status = response.get("status")
    return str(status) if status else None


def _response_error(response: Mapping[str, Any]) -> str | None:
    error = response.get("error")
    return error_message({"error": error}) if error else None


def responses_stream(events: Sequence[Event]) -> Summary:
    """The summary of a Responses API SSE stream."""
    summary = Summary()
    text: list[str] = []
    reasoning: list[str] = []
    calls = ToolCallAssembly()
    for event in events:
        value = event.value
        if not isinstance(value, Mapping):
            continue
        kind = value.get("type") or event.name
        key = value.get("output_index")
        delta = value.get("delta")
        if kind == "response.output_text.delta" and isinstance(delta, str):
            text.append(delta)
        elif kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            reasoning.append(delta if isinstance(delta, str) else "")
        elif kind in ("response.output_item.added", "response.output_item.done"):
            item = value.get("item") or {}
            field = _CALL_ITEMS.get(str(item.get("type"))) if isinstance(item, Mapping) else None
            if field is not None:
                calls.add(key, name=None if key in calls.calls else item.get("name"), id=item.get("call_id"))
                if kind.endswith(".done") and isinstance(item.get(field), str):
                    calls.set_arguments(key, item[field])
        elif kind in ("response.function_call_arguments.delta", "response.custom_tool_call_input.delta"):
            calls.add(key, arguments=delta if isinstance(delta, str) else None)
        elif kind in ("response.function_call_arguments.done", "response.custom_tool_call_input.done"):
            final = value.get("arguments", value.get("input"))
            if isinstance(final, str):
                calls.set_arguments(key, final)
        elif kind in _FINAL_EVENTS and isinstance(value.get("response"), Mapping):
            response = value["response"]
            summary.finish_reason = _finish(response)
            summary.usage = flat_ints(response.get("usage"))
            summary.error = summary.error or _response_error(response)
        elif kind == "error":
            summary.error = summary.error or (
                str(value["message"]) if value.get("message") else error_message(value)
            )
    summary.text = "".join(text)
    summary.reasoning = "".join(reasoning)
    summary.tool_calls = calls.result()
    return summary


def responses_json(value: Any) -> Summary:
    """The summary of a Responses API JSON answer (a ``response`` object)."""
    if not isinstance(value, Mapping):
        return Summary()
    summary = Summary(usage=flat_ints(value.get("usage")), finish_reason=_finish(value))
    summary.error = _response_error(value)
    text: list[str] = []
    reasoning: list[str] = []
    for item in value.get("output") or ():
        if not isinstance(item, Mapping):
            continue
        kind = item.get("type")
        if kind == "message":
            text += [p["text"] for p in item.get("content") or () if _typed(p, "output_text")]
        elif kind == "reasoning":
            parts = [*(item.get("summary") or ()), *(item.get("content") or ())]
            reasoning += [
                p["text"] for p in parts if isinstance(p, Mapping) and isinstance(p.get("text"), str)
            ]
        elif kind in _CALL_ITEMS:
            arguments = _arguments(item.get(_CALL_ITEMS[kind]))
            summary.tool_calls.append(ToolCall(str(item.get("name") or ""), arguments, item.get("call_id")))
    summary.text = "".join(text)
    summary.reasoning = "".join(reasoning)
    return summary


def _typed(part: Any, kind: str) -> bool:
    return isinstance(part, Mapping) and part.get("type") == kind and isinstance(part.get("text"), str)
