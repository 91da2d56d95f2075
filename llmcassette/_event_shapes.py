"""
Decoded events (see :mod:`llmcassette.providers._events`) read as provider-neutral ones: what a
normalised snapshot holds (see :mod:`llmcassette._snapshot`), and what a transcript reads of a
response no profile knows. One handler per family of events, all writing into one collector.

Each event's own shape says which API it comes from (``choices`` for chat completions,
``candidates`` for Gemini, ``response.*`` types for the Responses API, typed events for
Anthropic, ``done``/``message`` lines for Ollama, event-type keys for Bedrock ConverseStream), so
the handlers need no profile. What each reads mirrors the profiles' ``summarize`` (the two share
the provider modules' readers of candidates, choices and lines), so the text deltas of a
snapshot join to the text the profile reports.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ._framing import Framing
from .providers._events import NOT_JSON, Event
from .providers._openai_shapes import content_texts, first_choice, is_responses_json
from .providers._wire import compact_json, error_message, flat_ints
from .providers.gemini import candidate_parts
from .providers.ollama import line_content, line_end

__all__ = ["normalized"]


def normalized(events: Iterable[Event], framing: Framing) -> list[dict[str, Any]]:
    """
    The provider-neutral events of ``events``, decoded with ``framing``: deltas and errors in
    stream order, then usage and finish (see :mod:`llmcassette._snapshot`). An event that is not
    JSON becomes an error saying which; events of no known shape add nothing.
    """
    out = _Events()
    for number, event in enumerate(events, start=1):
        value = _readable(event, framing)
        if value is NOT_JSON:
            out.add({"type": "error", "message": f"malformed event {number}: its data is not JSON"})
        elif isinstance(value, Mapping):
            _dispatch(value, out)
    return out.result()


def _readable(event: Event, framing: Framing) -> Any:
    """The event as the handlers read it: an eventstream frame says what it is by its keys."""
    value = event.value
    if framing is not Framing.EVENTSTREAM or not isinstance(value, Mapping):
        return value
    if event.exception:
        return {"error": {"message": str(value.get("message") or event.name)}}
    # A chunk frame is the model's own event; a ConverseStream event is keyed by its type
    # (`{"contentBlockDelta": {...}}`), as Nova's InvokeModel chunks are.
    return value if event.name == "chunk" else {event.name: value}


class _Events:
    """The events so far, with tool-call numbering and the usage and finish that come last."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.usage: dict[str, int] = {}
        self.finish: str | None = None
        self.calls: dict[Any, int] = {}
        self.with_arguments: set[int] = set()
        self.blocks: dict[Any, str] = {}  # Anthropic content block index -> block type
        self.last_call: Any = 0  # the chat tool call a fragment without index or id continues

    def add(self, event: dict[str, Any]) -> None:
        self.events.append(event)

    def text(self, text: Any, kind: str = "text_delta") -> None:
        if isinstance(text, str) and text:
            self.add({"type": kind, "text": text})

    def tool(self, key: Any, *, name: Any = None, arguments: Any = None, final: bool = False) -> None:
        """A tool-call fragment; ``final`` arguments only count when no fragment brought any."""
        index = self.calls.setdefault(key, len(self.calls))
        if not isinstance(arguments, str):
            arguments = "" if arguments is None else compact_json(arguments)
        if final and index in self.with_arguments:
            return
        if arguments:
            self.with_arguments.add(index)
        event: dict[str, Any] = {"type": "tool_call_delta", "index": index, "arguments": arguments}
        if isinstance(name, str) and name:
            event["name"] = name
        if arguments or "name" in event:
            self.add(event)

    def error(self, value: Mapping[str, Any]) -> None:
        self.add({"type": "error", "message": error_message(value) or compact_json(value)})

    def result(self) -> list[dict[str, Any]]:
        tail: list[dict[str, Any]] = []
        if self.usage:
            tail.append({**self.usage, "type": "usage"})
        if self.finish is not None:
            tail.append({"type": "finish", "reason": self.finish})
        return [*self.events, *tail]


def _dispatch(value: Mapping[str, Any], out: _Events) -> None:
    """Add what one parsed event says to ``out``; events of no known shape add nothing."""
    # The event's own shape says which API it comes from; no two of them look alike.
    kind = value.get("type")
    if value.get("error") or kind == "error":
        out.error(value)  # then whatever else the event says (OpenRouter's error chunk has a finish)
    if "choices" in value:
        _chat(value, out)
    elif "candidates" in value or "usageMetadata" in value or "promptFeedback" in value:
        _gemini(value, out)
    elif is_responses_json(value) or (isinstance(kind, str) and kind.startswith("response.")):
        _responses(value, out)
    elif isinstance(kind, str):
        _anthropic(value, out)
    elif "done" in value or "message" in value or "response" in value:
        _ollama(value, out)
    else:
        _converse(value, out)


def _chat(value: Mapping[str, Any], out: _Events) -> None:
    groq = value.get("x_groq")
    usage = value.get("usage") or (groq.get("usage") if isinstance(groq, Mapping) else None)
    out.usage.update(flat_ints(usage))
    choice = first_choice(value)
    if choice is None:
        return
    delta = choice.get("delta") or choice.get("message") or {}
    if isinstance(delta, Mapping):
        for text, thinking in content_texts(delta.get("content")):
            out.text(text, "reasoning_delta" if thinking else "text_delta")
        out.text(delta.get("reasoning_content") or delta.get("reasoning"), "reasoning_delta")
        for position, call in enumerate(delta.get("tool_calls") or ()):
            if isinstance(call, Mapping):
                # A whole message numbers its calls by position; stream fragments by `index`, or
                # (some gateways) start a call with an id and continue it with neither.
                default = (call.get("id") or out.last_call) if "delta" in choice else position
                out.last_call = key = call.get("index", default)
                function = call.get("function") or {}
                out.tool(key, name=function.get("name"), arguments=function.get("arguments"))
        legacy = delta.get("function_call")
        if isinstance(legacy, Mapping):
            out.tool("function_call", name=legacy.get("name"), arguments=legacy.get("arguments"))
    if choice.get("finish_reason"):
        out.finish = str(choice["finish_reason"])


def _responses(value: Mapping[str, Any], out: _Events) -> None:
    kind = value.get("type")
    key, delta = value.get("output_index"), value.get("delta")
    if kind == "response.output_text.delta":
        out.text(delta)
    elif kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
        out.text(delta, "reasoning_delta")
    elif kind == "response.output_item.added" and isinstance(value.get("item"), Mapping):
        if value["item"].get("type") in ("function_call", "custom_tool_call"):
            out.tool(key, name=value["item"].get("name"))
    elif kind in ("response.function_call_arguments.delta", "response.custom_tool_call_input.delta"):
        out.tool(key, arguments=delta if isinstance(delta, str) else None)
    elif kind in ("response.function_call_arguments.done", "response.custom_tool_call_input.done"):
        out.tool(key, arguments=value.get("arguments", value.get("input")), final=True)
    elif kind in ("response.completed", "response.incomplete", "response.failed"):
        response = value.get("response")
        if isinstance(response, Mapping):
            _response_end(response, out)
    elif is_responses_json(value):  # a whole (non-streamed) response object
        for position, item in enumerate(value.get("output") or ()):
            if not isinstance(item, Mapping):
                continue
            if item.get("type") == "message":
                for part in item.get("content") or ():
                    if isinstance(part, Mapping) and part.get("type") == "output_text":
                        out.text(part.get("text"))
            elif item.get("type") == "reasoning":
                for part in [*(item.get("summary") or ()), *(item.get("content") or ())]:
                    out.text(part.get("text") if isinstance(part, Mapping) else None, "reasoning_delta")
            elif item.get("type") in ("function_call", "custom_tool_call"):
                arguments = item.get("arguments", item.get("input"))
                out.tool(position, name=item.get("name"), arguments=arguments)
        _response_end(value, out)


def _response_end(response: Mapping[str, Any], out: _Events) -> None:
    if response.get("error"):
        out.error({"error": response["error"]})
    out.usage.update(flat_ints(response.get("usage")))
    details = response.get("incomplete_details")
    reason = details.get("reason") if isinstance(details, Mapping) else None
    if reason or response.get("status"):
        out.finish = str(reason or response["status"])


def _anthropic(value: Mapping[str, Any], out: _Events) -> None:
    kind, index = value.get("type"), value.get("index")
    message = value.get("message") if kind == "message_start" else value if kind == "message" else None
    if isinstance(message, Mapping):
        out.usage.update(flat_ints(message.get("usage")))
        for position, block in enumerate(message.get("content") or ()):
            if isinstance(block, Mapping):
                _block(("message", position), block, out)
        if message.get("stop_reason"):
            out.finish = str(message["stop_reason"])
    elif kind == "content_block_start" and isinstance(value.get("content_block"), Mapping):
        _block(("block", index), value["content_block"], out)
    elif kind == "content_block_delta" and isinstance(value.get("delta"), Mapping):
        delta = value["delta"]
        if delta.get("type") == "text_delta":
            out.text(delta.get("text"))
        elif delta.get("type") == "thinking_delta":
            out.text(delta.get("thinking"), "reasoning_delta")
        elif delta.get("type") == "input_json_delta" and out.blocks.get(("block", index)) == "tool_use":
            out.tool(("block", index), arguments=delta.get("partial_json"))
    elif kind == "message_delta":
        delta = value.get("delta")
        if isinstance(delta, Mapping) and delta.get("stop_reason"):
            out.finish = str(delta["stop_reason"])
        out.usage.update(flat_ints(value.get("usage")))


def _block(key: Any, block: Mapping[str, Any], out: _Events) -> None:
    out.blocks[key] = str(block.get("type"))
    if block.get("type") == "text":
        out.text(block.get("text"))
    elif block.get("type") == "thinking":
        out.text(block.get("thinking"), "reasoning_delta")
    elif block.get("type") == "tool_use":  # server tools (code execution...) run at Anthropic: left out
        # A streamed block starts with `input: {}` and sends the arguments as fragments.
        given = block.get("input")
        whole = key[0] == "message"
        out.tool(key, name=block.get("name"), arguments=(given or {}) if whole else (given or None))


def _gemini(value: Mapping[str, Any], out: _Events) -> None:
    if isinstance(value.get("usageMetadata"), Mapping):
        out.usage.update(flat_ints(value["usageMetadata"]))  # running totals: the last ones stay
    parts, finish = candidate_parts(value)
    for part in parts:
        out.text(part.get("text"), "reasoning_delta" if part.get("thought") else "text_delta")
        call = part.get("functionCall")
        if isinstance(call, Mapping):  # calls arrive whole, each one new
            out.tool(("call", len(out.calls)), name=call.get("name"), arguments=call.get("args") or {})
    if finish:
        out.finish = finish


def _ollama(value: Mapping[str, Any], out: _Events) -> None:
    content, thinking, calls = line_content(value)
    out.text(content)
    out.text(thinking, "reasoning_delta")
    for call in calls:  # calls arrive whole, each one new
        function = call["function"]
        out.tool(
            ("call", len(out.calls)), name=function.get("name"), arguments=function.get("arguments") or {}
        )
    end = line_end(value)
    if end is not None:
        out.finish, counts = end
        out.usage.update(counts)


def _converse(value: Mapping[str, Any], out: _Events) -> None:
    # Bedrock ConverseStream events, keyed by event type (see `_readable`), or a Converse answer.
    start, delta = value.get("contentBlockStart"), value.get("contentBlockDelta")
    if isinstance(start, Mapping) and isinstance((start.get("start") or {}).get("toolUse"), Mapping):
        out.tool(start.get("contentBlockIndex"), name=start["start"]["toolUse"].get("name"))
    elif isinstance(delta, Mapping) and isinstance(delta.get("delta"), Mapping):
        inner = delta["delta"]
        out.text(inner.get("text"))
        thought = inner.get("reasoningContent")
        out.text(thought.get("text") if isinstance(thought, Mapping) else None, "reasoning_delta")
        if isinstance(inner.get("toolUse"), Mapping):
            out.tool(delta.get("contentBlockIndex"), arguments=inner["toolUse"].get("input"))
    for key in ("messageStop", "metadata"):
        event = value.get(key)
        if isinstance(event, Mapping):
            if event.get("stopReason"):
                out.finish = str(event["stopReason"])
            out.usage.update(flat_ints(event.get("usage")))
    if value.get("stopReason"):  # a whole Converse answer
        output = value.get("output")
        message = output.get("message") if isinstance(output, Mapping) else None
        for position, block in enumerate(
            message.get("content") or () if isinstance(message, Mapping) else ()
        ):
            if isinstance(block, Mapping):
                out.text(block.get("text"))
                if isinstance(block.get("toolUse"), Mapping):
                    use = block["toolUse"]
                    out.tool(position, name=use.get("name"), arguments=use.get("input") or {})
        out.usage.update(flat_ints(value.get("usage")))
        out.finish = str(value["stopReason"])
