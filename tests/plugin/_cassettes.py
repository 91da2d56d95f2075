"""Cassettes the plugin tests write beside their inner tests, in vcrpy's format."""

from __future__ import annotations

import json

CHAT_URL = "https://api.openai.com/v1/chat/completions"


def _sse(*texts: str) -> str:
    events = [
        "data: "
        + json.dumps({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": t}}]})
        for t in texts
    ]
    return "\n\n".join([*events, "data: [DONE]"]) + "\n\n"


def chat_cassette(question: str = "hi", *texts: str) -> str:
    """A vcrpy cassette with one streamed OpenAI chat completion answering ``question``."""
    request = {"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": question}]}
    document = {
        "version": 1,
        "interactions": [
            {
                "request": {
                    "method": "POST",
                    "uri": CHAT_URL,
                    "body": json.dumps(request),
                    "headers": {"content-type": ["application/json"]},
                },
                "response": {
                    "status": {"code": 200, "message": "OK"},
                    "headers": {"content-type": ["text/event-stream"]},
                    "body": {"string": _sse(*(texts or ("Hello", " there")))},
                },
            }
        ],
    }
    return json.dumps(document, indent=1)  # JSON is YAML


#: An inner test module's preamble: a tiny streaming chat client on httpx.
CLIENT = f"""
import httpx, json, pytest

def chat(question="hi", retries=0):
    body = {{"model": "gpt-4o", "stream": True, "messages": [{{"role": "user", "content": question}}]}}
    for attempt in range(retries + 1):
        with httpx.stream("POST", "{CHAT_URL}", json=body) as response:
            if response.status_code >= 500 or response.status_code == 429:
                continue
            response.raise_for_status()
            text = ""
            for line in response.iter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    text += json.loads(line[6:])["choices"][0]["delta"].get("content", "")
            return text
    raise RuntimeError("gave up")
"""
