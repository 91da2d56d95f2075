"""
Profiles on the real corpus (third-party cassettes recorded against the real providers): every
request is detected as the right provider, streaming is told the way the recording asked for it,
and ``summarize`` of every response agrees with a reference worked out here from the raw bodies.

The references read the bodies with the test decoders of ``tests.corpus`` (not the library's
framing code) and, where the provider sends it, from a different source than the summary: the
Responses API's ``*.done`` events and final ``output`` instead of its deltas, Gemini's array
parsed whole instead of element by element. Everything skips when the corpus is absent.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from functools import cache
from typing import Any

import pytest

import llmcassette
from llmcassette import Interaction
from llmcassette._exchange import RequestInfo
from llmcassette.providers import Profile, Summary, detect_profile
from tests.corpus import (
    corpus_files,
    corpus_path,
    decoded,
    eventstream_frames,
    header,
    manifest,
    params,
    sse_json,
    sse_messages,
)

#: The profile each corpus folder's requests must get (Ollama splits by endpoint, see below).
EXPECTED = {
    "openai": "openai",
    "openai-responses": "openai-responses",
    "azure": "azure-openai",
    "anthropic": "anthropic",
    "google": "gemini",
    "groq": "groq",
    "mistral": "mistral",
    "ollama": "ollama",
    "bedrock": "bedrock",
    "openrouter": "openrouter",
}
CHAT_FAMILY = {"openai", "azure-openai", "groq", "mistral", "openrouter", "ollama-openai"}


@cache
def _interactions(rel: str) -> tuple[Interaction, ...]:
    return tuple(llmcassette.load_cassette(corpus_path(rel)).interactions)


def _request(interaction: Interaction) -> RequestInfo:
    request = interaction.request
    headers = {name.lower(): values[0] for name, values in request.headers.items() if values}
    return RequestInfo(request.method, request.uri, headers, request.content)


def _summary(interaction: Interaction) -> tuple[Profile, Summary]:
    info = _request(interaction)
    profile = detect_profile(info)
    response = interaction.response
    return profile, profile.summarize(
        response.content, streaming=profile.is_streaming(info), status=response.status.code
    )


def _body(interaction: Interaction) -> bytes:
    return decoded(interaction.response.headers, interaction.response.content)


def _content_type(interaction: Interaction) -> str:
    return (header(interaction.response.headers, "content-type") or "").lower()


# == detection ====================================================================================


@pytest.mark.parametrize("rel", params())
def test_detects_the_recorded_provider(rel: str) -> None:
    folder = rel.split("/")[1]
    for interaction in _interactions(rel):
        info = _request(interaction)
        expected = EXPECTED[folder]
        if folder == "ollama" and not info.path.startswith("/api/"):
            expected = "ollama-openai"  # Ollama's OpenAI-compatible /v1 endpoint, local or cloud
        profile = detect_profile(info)
        assert profile.name == expected, interaction.request.uri
        # Matching detects from the method and URL alone (no headers, no body): same answer.
        assert detect_profile(RequestInfo(info.method, info.url)) is profile
        assert profile.is_streaming(info) is manifest()[rel]["streaming"], interaction.request.uri


@pytest.mark.parametrize("rel", params())
def test_framing_agrees_with_the_recorded_stream(rel: str) -> None:
    for interaction in _interactions(rel):
        profile, _ = _summary(interaction)
        ctype = _content_type(interaction)
        if "event-stream" in ctype:
            assert profile.framing.value == "sse"
        elif "ndjson" in ctype:
            assert profile.framing.value == "ndjson"
        elif "eventstream" in ctype:
            assert profile.framing.value == "eventstream"
        elif interaction.response.status.code == 200 and _body(interaction).lstrip()[:1] == b"[":
            assert profile.framing.value == "json-array"  # Gemini's stream without alt=sse


# == errors =======================================================================================


@pytest.mark.parametrize("rel", params())
def test_error_responses_give_their_message(rel: str) -> None:
    for interaction in _interactions(rel):
        status = interaction.response.status.code
        if status < 400:
            continue
        _, summary = _summary(interaction)
        value = json.loads(_body(interaction))
        error = value.get("error", value)
        expected = error["message"] if isinstance(error, Mapping) else error
        assert summary.error == expected
        assert (summary.text, summary.tool_calls, summary.events) == ("", [], 0)


# == references ===================================================================================


def _chat_reference(interaction: Interaction, streamed: bool) -> dict[str, Any]:
    """Text, tool calls, finish reason and error of the first choice, the way a client folds them."""
    if streamed:
        chunks = [data for _, data in sse_json(interaction.response.content)]
    else:
        chunks = [json.loads(_body(interaction))]
    text, calls, finish, error = "", {}, None, None
    for chunk in chunks:
        error = error or (chunk["error"]["message"] if chunk.get("error") else None)
        for choice in chunk.get("choices") or []:
            if choice["index"] != 0:
                continue
            part = choice.get("delta" if streamed else "message") or {}
            content = part.get("content")
            pieces = content if isinstance(content, list) else [{"type": "text", "text": content or ""}]
            text += "".join(p["text"] for p in pieces if p["type"] == "text")
            for position, call in enumerate(part.get("tool_calls") or []):
                entry = calls.setdefault(
                    call.get("index", position), {"name": "", "arguments": "", "id": None}
                )
                entry["name"] += call["function"].get("name") or ""
                entry["arguments"] += call["function"].get("arguments") or ""
                entry["id"] = entry["id"] or call.get("id")
            finish = choice.get("finish_reason") or finish
    return {"text": text, "calls": list(calls.values()), "finish": finish, "error": error}


def _responses_reference(interaction: Interaction, streamed: bool) -> dict[str, Any]:
    """From the final ``output`` (JSON) or the ``*.done`` events, never from the deltas."""
    if streamed:
        events = [data for _, data in sse_json(interaction.response.content)]
        texts = [e["text"] for e in events if e["type"] == "response.output_text.done"]
        items = [e["item"] for e in events if e["type"] == "response.output_item.done"]
        final = next(e["response"] for e in events if e["type"] == "response.completed")
    else:
        final = json.loads(_body(interaction))
        items = final["output"]
        texts = [
            c["text"]
            for i in items
            if i["type"] == "message"
            for c in i["content"]
            if c["type"] == "output_text"
        ]
    calls = [
        {"name": i["name"], "arguments": i["arguments"], "id": i["call_id"]}
        for i in items
        if i["type"] == "function_call"
    ]
    return {
        "text": "".join(texts),
        "calls": calls,
        "finish": final["status"],
        "total": final["usage"]["total_tokens"],
    }


def _anthropic_reference(events: list[Mapping[str, Any]]) -> dict[str, Any]:
    """The message rebuilt block by block, as the SDK's accumulator does."""
    blocks: dict[int, dict[str, Any]] = {}
    stop = None
    output_tokens = None
    for event in events:
        if event["type"] == "content_block_start":
            blocks[event["index"]] = {**event["content_block"], "json": ""}
        elif event["type"] == "content_block_delta":
            block, delta = blocks[event["index"]], event["delta"]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            elif delta["type"] == "input_json_delta":
                block["json"] += delta["partial_json"]
        elif event["type"] == "message_delta":
            stop = event["delta"]["stop_reason"]
            output_tokens = event["usage"]["output_tokens"]
    ordered = [blocks[i] for i in sorted(blocks)]
    calls = [
        {"name": b["name"], "arguments": b["json"] or json.dumps(b["input"]), "id": b["id"]}
        for b in ordered
        if b["type"] == "tool_use"
    ]
    text = "".join(b["text"] for b in ordered if b["type"] == "text")
    return {"text": text, "calls": calls, "finish": stop, "output_tokens": output_tokens}


def _gemini_reference(interaction: Interaction) -> dict[str, Any]:
    body = _body(interaction)
    if body.lstrip()[:1] == b"[":
        chunks = json.loads(body)  # the whole array at once
    elif "event-stream" in _content_type(interaction):
        chunks = [data for _, data in sse_json(body)]
    else:
        chunks = [json.loads(body)]
    parts = [
        p
        for c in chunks
        for cand in c.get("candidates", [])
        for p in cand.get("content", {}).get("parts", [])
    ]
    return {
        "text": "".join(p["text"] for p in parts if "text" in p and not p.get("thought")),
        "thought": "".join(p["text"] for p in parts if "text" in p and p.get("thought")),
        "calls": [
            {"name": p["functionCall"]["name"], "args": p["functionCall"].get("args", {})}
            for p in parts
            if "functionCall" in p
        ],
        "finish": [
            cand["finishReason"] for c in chunks for cand in c.get("candidates", []) if "finishReason" in cand
        ][-1],
        "total": chunks[-1]["usageMetadata"]["totalTokenCount"],
        "events": len(chunks),
    }


def _is_responses(interaction: Interaction) -> bool:
    return "/responses" in _request(interaction).path


def _calls(summary: Summary) -> list[dict[str, Any]]:
    return [{"name": c.name, "arguments": c.arguments, "id": c.id} for c in summary.tool_calls]


def _ok(rel: str) -> list[Interaction]:
    return [i for i in _interactions(rel) if i.response.status.code < 400]


def _files(*profiles: str) -> list[str]:
    return [
        rel for rel in corpus_files() if any(detect_profile(_request(i)).name in profiles for i in _ok(rel))
    ]


# == summaries ====================================================================================


@pytest.mark.parametrize("rel", params(_files(*CHAT_FAMILY)))
def test_chat_completions_summaries(rel: str) -> None:
    for interaction in _ok(rel):
        profile, summary = _summary(interaction)
        if profile.name not in CHAT_FAMILY or _is_responses(interaction):
            continue
        streamed = "event-stream" in _content_type(interaction)
        expected = _chat_reference(interaction, streamed)
        got_calls = _calls(summary)
        for call in got_calls if not streamed else ():  # whole calls: compare the parsed arguments
            call["arguments"] = json.loads(call["arguments"])
        for call in expected["calls"] if not streamed else ():
            call["arguments"] = json.loads(call["arguments"])
        assert summary.text == expected["text"]
        assert got_calls == expected["calls"]
        assert summary.finish_reason == expected["finish"]
        assert summary.error == expected["error"]
        if streamed:
            assert summary.events == len(sse_messages(interaction.response.content))


@pytest.mark.parametrize("rel", params(_files("openai-responses", "azure-openai")))
def test_responses_summaries(rel: str) -> None:
    for interaction in _ok(rel):
        if not _is_responses(interaction):
            continue
        _, summary = _summary(interaction)
        streamed = "event-stream" in _content_type(interaction)
        expected = _responses_reference(interaction, streamed)
        assert summary.text == expected["text"]
        assert _calls(summary) == expected["calls"]
        assert summary.finish_reason == expected["finish"]
        assert summary.usage["total_tokens"] == expected["total"]


@pytest.mark.parametrize("rel", params(_files("anthropic")))
def test_anthropic_summaries(rel: str) -> None:
    for interaction in _ok(rel):
        _, summary = _summary(interaction)
        if "event-stream" in _content_type(interaction):
            events = [data for _, data in sse_json(interaction.response.content)]
            expected = _anthropic_reference(events)
            assert summary.events == len(sse_messages(interaction.response.content))
        else:
            message = json.loads(_body(interaction))
            expected = {
                "text": "".join(b["text"] for b in message["content"] if b["type"] == "text"),
                "calls": [
                    {
                        "name": b["name"],
                        "arguments": json.dumps(b["input"], separators=(",", ":")),
                        "id": b["id"],
                    }
                    for b in message["content"]
                    if b["type"] == "tool_use"
                ],
                "finish": message["stop_reason"],
                "output_tokens": message["usage"]["output_tokens"],
            }
        assert summary.text == expected["text"]
        assert _calls(summary) == expected["calls"]
        assert summary.finish_reason == expected["finish"]
        assert summary.usage["output_tokens"] == expected["output_tokens"]


@pytest.mark.parametrize("rel", params(_files("gemini")))
def test_gemini_summaries(rel: str) -> None:
    for interaction in _ok(rel):
        profile, summary = _summary(interaction)
        expected = _gemini_reference(interaction)
        assert summary.text == expected["text"]
        assert summary.reasoning == expected["thought"]
        assert [{"name": c.name, "args": json.loads(c.arguments)} for c in summary.tool_calls] == expected[
            "calls"
        ]
        assert summary.finish_reason == expected["finish"]
        assert summary.usage["totalTokenCount"] == expected["total"]
        if profile.is_streaming(_request(interaction)):
            assert summary.events == expected["events"]


@pytest.mark.parametrize("rel", params(_files("ollama")))
def test_ollama_summaries(rel: str) -> None:
    for interaction in _ok(rel):
        _, summary = _summary(interaction)
        lines = [json.loads(line) for line in _body(interaction).split(b"\n") if line]
        text = "".join(
            line.get("message", {}).get("content", "") + line.get("response", "") for line in lines
        )
        assert summary.text == text
        assert summary.finish_reason == lines[-1]["done_reason"]
        assert summary.usage == {
            "prompt_eval_count": lines[-1]["prompt_eval_count"],
            "eval_count": lines[-1]["eval_count"],
        }
        assert summary.events == (len(lines) if "ndjson" in _content_type(interaction) else 0)


@pytest.mark.parametrize("rel", params(_files("bedrock")))
def test_bedrock_summaries(rel: str) -> None:
    for interaction in _ok(rel):
        _, summary = _summary(interaction)
        if "eventstream" not in _content_type(interaction):
            message = json.loads(_body(interaction))
            blocks = message["output"]["message"]["content"]
            assert summary.text == "".join(b.get("text", "") for b in blocks)
            assert [(c.name, json.loads(c.arguments), c.id) for c in summary.tool_calls] == [
                (b["toolUse"]["name"], b["toolUse"]["input"], b["toolUse"]["toolUseId"])
                for b in blocks
                if "toolUse" in b
            ]
            assert summary.finish_reason == message["stopReason"]
            continue
        frames = eventstream_frames(interaction.response.content)  # CRC-checked by the test decoder
        payloads = [json.loads(f.payload) for f in frames]
        if frames[0].headers[":event-type"] == "chunk":
            inner = [json.loads(base64.b64decode(p["bytes"])) for p in payloads]
            expected = _anthropic_reference(inner)
        else:
            deltas = [
                p["delta"]
                for f, p in zip(frames, payloads, strict=True)
                if f.headers[":event-type"] == "contentBlockDelta"
            ]
            stop = next(
                p["stopReason"]
                for f, p in zip(frames, payloads, strict=True)
                if f.headers[":event-type"] == "messageStop"
            )
            expected = {"text": "".join(d.get("text", "") for d in deltas), "finish": stop}
        assert summary.text == expected["text"]
        assert summary.finish_reason == expected["finish"]
        assert summary.events == len(frames)


# == values the corpus README states ===============================================================


def _single(rel: str, index: int = 0) -> Summary:
    return _summary(_interactions(rel)[index])[1]


def test_known_corpus_values() -> None:
    if not corpus_files():
        pytest.skip("the real-cassette corpus is not present")
    # "Groq chat SSE, 75 chunks, usage in x_groq of final chunk, [DONE]"
    groq = _single("openllmetry/groq/test_chat_streaming_legacy.yaml")
    assert (
        groq.events == 75
        and groq.usage["total_tokens"] == groq.usage["prompt_tokens"] + groq.usage["completion_tokens"]
    )
    # "Mistral SSE ... 159 chunks with thinking content parts"
    mistral = _single("pydantic-ai/mistral/test_mistral_model_thinking_part_iter.yaml")
    assert mistral.events == 159 and mistral.reasoning and mistral.text.startswith("To cross the street")
    # OpenRouter: 17 keep-alive comments (not events), an in-band error "Token limit reached", [DONE]
    openrouter = _single("pydantic-ai/openrouter/test_openrouter_stream_error.yaml")
    assert (openrouter.events, openrouter.error) == (5, "Token limit reached")
    # Groq's in-stream `event: error` (tool_use_failed) with no [DONE]
    failed = _single("pydantic-ai/groq/test_tool_use_failed_error_streaming.yaml")
    assert failed.error is not None and failed.error.startswith("Tool call validation failed")
    # Azure's 404 DeploymentNotFound arrives without a content type
    azure = _single("openllmetry/azure/test_chat_reasoning.yaml", 1)
    assert azure.error is not None and azure.error.startswith(
        "The API deployment for this resource does not exist"
    )
    # Anthropic thinking stream: 110 content_block_delta events, thinking kept apart from the text
    thinking = _interactions("pydantic-ai/anthropic/test_anthropic_model_thinking_part_stream.yaml")[0]
    deltas = [d for _, d in sse_json(thinking.response.content) if d["type"] == "content_block_delta"]
    assert len(deltas) == 110
    assert _summary(thinking)[1].reasoning == "".join(d["delta"].get("thinking", "") for d in deltas)
