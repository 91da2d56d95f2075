"""
The API shapes a normalised snapshot reads (see :mod:`llmcassette._snapshot`): one handler per
family of events, all writing into an :class:`Events` collector.

Each event's own shape says which API it comes from (``choices`` for chat completions,
``candidates`` for Gemini, ``response.*`` types for the Responses API, typed events for
Anthropic, ``done``/``message`` lines for Ollama, event-type keys for Bedrock ConverseStream), so
the handlers need no profile; the profile only chose how the body was cut into events. What each
reads mirrors the profiles' ``summarize``, so the text deltas of a snapshot join to the text the
profile reports.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .providers._openai_shapes import is_responses_json
from .providers._wire import compact_json, error_message, flat_ints

__all__ = ["Events", "dispatch"]


class Events:
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


def dispatch(value: Mapping[str, Any], out: Events) -> None:
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


def _chat(value: Mapping[str, Any], out: Events) -> None:
    groq = value.get("x_groq")
    usage = value.get("usage") or (groq.get("usage") if isinstance(groq, Mapping) else None)
    out.usage.update(flat_ints(usage))
    choice = next(
        (c for c in value.get("choices") or () if isinstance(c, Mapping) and c.get("index", 0) == 0), None
    )
    if choice is None:
        return
    delta = choice.get("delta") or choice.get("message") or {}
    if isinstance(delta, Mapping):
        _content(delta.get("content"), out)
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


def _content(content: Any, out: Events, kind: str = "text_delta") -> None:
    if isinstance(content, str):
        out.text(content, kind)
    for part in content if isinstance(content, list) else ():
        if isinstance(part, Mapping) and part.get("type") == "text":
            out.text(part.get("text"), kind)
        elif isinstance(part, Mapping) and part.get("type") == "thinking":  # Mistral
            _content(part.get("thinking"), out, "reasoning_delta")


def _responses(value: Mapping[str, Any], out: Events) -> None:
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


def _response_end(response: Mapping[str, Any], out: Events) -> None:
    if response.get("error"):
        out.error({"error": response["error"]})
    out.usage.update(flat_ints(response.get("usage")))
    details = response.get("incomplete_details")
    reason = details.get("reason") if isinstance(details, Mapping) else None
    if reason or response.get("status"):
        out.finish = str(reason or response["status"])


def _anthropic(value: Mapping[str, Any], out: Events) -> None:
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


def _block(key: Any, block: Mapping[str, Any], out: Events) -> None:
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


def _gemini(value: Mapping[str, Any], out: Events) -> None:
    if isinstance(value.get("usageMetadata"), Mapping):
        out.usage.update(flat_ints(value["usageMetadata"]))  # running totals: the last ones stay
    candidates = [c for c in value.get("candidates") or () if isinstance(c, Mapping)]
    candidate = next((c for c in candidates if c.get("index", 0) == 0), None)
    if candidate is None:
        feedback = value.get("promptFeedback")
        if isinstance(feedback, Mapping) and feedback.get("blockReason"):
            out.finish = str(feedback["blockReason"])
        return
    content = candidate.get("content")
    for part in content.get("parts") or () if isinstance(content, Mapping) else ():
        if not isinstance(part, Mapping):
            continue
        out.text(part.get("text"), "reasoning_delta" if part.get("thought") else "text_delta")
        call = part.get("functionCall")
        if isinstance(call, Mapping):  # calls arrive whole, each one new
            out.tool(("call", len(out.calls)), name=call.get("name"), arguments=call.get("args") or {})
    if candidate.get("finishReason"):
        out.finish = str(candidate["finishReason"])


def _ollama(value: Mapping[str, Any], out: Events) -> None:
    message = value.get("message")
    source = message if isinstance(message, Mapping) else value
    out.text(source.get("content") if source is message else value.get("response"))
    out.text(source.get("thinking"), "reasoning_delta")
    for call in source.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, Mapping) else None
        if isinstance(function, Mapping):
            key = ("call", len(out.calls))
            out.tool(key, name=function.get("name"), arguments=function.get("arguments") or {})
    if value.get("done") is True:
        out.finish = str(value.get("done_reason") or "stop")
        out.usage.update(
            {k: value[k] for k in ("prompt_eval_count", "eval_count") if isinstance(value.get(k), int)}
        )


def _converse(value: Mapping[str, Any], out: Events) -> None:
    # Bedrock ConverseStream events, keyed by event type (see `_frame_value`), or a Converse answer.
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
