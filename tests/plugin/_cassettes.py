"""
What the plugin tests' inner test modules share: the chat client they run. The recording it
replays is each outer test's own, under ``cassettes/plugin/`` (the ``recording`` fixture, which
copies it into the pytester folder).
"""

from __future__ import annotations

CHAT_URL = "https://api.openai.com/v1/chat/completions"


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
