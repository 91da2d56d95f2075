"""
The demo's conversation: one question, a streamed reply that calls a tool, the tool's answer sent
back, and a plain JSON reply. The same code runs when the cassette is recorded and when it is
replayed, which is the point of a cassette.
"""

from __future__ import annotations

import json
from typing import Any

from .client import ChatClient, ChatResult

__all__ = ["QUESTION", "TOOLS", "converse", "converse_with", "get_weather"]

QUESTION = "What's the weather like in Paris right now? Answer in one sentence."

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city.",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                },
                "required": ["city"],
            },
        },
    }
]


def get_weather(city: str, unit: str = "celsius") -> dict[str, Any]:
    """The demo's tool. Fixed data: a replayed conversation must send the same requests."""
    temperature = 18 if unit == "celsius" else 64
    return {"city": city, "temperature": temperature, "unit": unit, "conditions": "partly cloudy"}


async def converse(client: ChatClient) -> list[ChatResult]:
    """Run the conversation and return each assistant turn."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": QUESTION}]
    first = await client.stream_chat(messages, tools=TOOLS)
    turns = [first]
    if first.tool_calls:
        messages.append(first.as_message())
        for call in first.tool_calls:
            arguments = call.parsed_arguments()
            answer = get_weather(str(arguments.get("city", "")), str(arguments.get("unit", "celsius")))
            messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps(answer)})
        turns.append(await client.chat(messages, tools=TOOLS))
    return turns


async def converse_with(base_url: str, *, api_key: str | None = None) -> list[ChatResult]:
    """Run the conversation with a fresh client of ``base_url`` (a short timeout: all is local)."""
    async with ChatClient(base_url, api_key=api_key, timeout_s=10.0) as client:
        return await converse(client)
