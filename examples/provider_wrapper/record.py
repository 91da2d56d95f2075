"""
Record ``cassettes/completion.yaml``: one streamed completion through the provider wrapper.

Run from the repository root::

    python -m examples.provider_wrapper.record

The tests need nothing else: every 429 and every empty stream they check is a fault injected
into this one recording.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import llmcassette
from examples.provider_wrapper.client import ProviderWrapper
from examples.upstream import chat_app, serve

CASSETTE = Path(__file__).parent / "cassettes" / "completion.yaml"
PORT = 8413
BASE_URL = f"http://127.0.0.1:{PORT}"
API_KEY = "sk-test"
MODEL = "example-chat"
MESSAGES = [{"role": "user", "content": "Were you rate limited?"}]
DELTAS = ["Waited ", "as asked, ", "then answered."]


async def record() -> llmcassette.Cassette:
    async with ProviderWrapper(BASE_URL, api_key=API_KEY, model=MODEL) as wrapper:
        with llmcassette.use_cassette(CASSETTE, record_mode="rewrite") as cassette:
            completion = await wrapper.acomplete(MESSAGES)
    assert completion.text == "".join(DELTAS), completion
    return cassette


def main() -> None:
    with serve(chat_app(DELTAS), port=PORT):
        cassette = asyncio.run(record())
    for attempt in cassette.attempts:
        print(attempt.summary(), f"({len(attempt.chunks)} chunks)")
    print(f"wrote {CASSETTE}")


if __name__ == "__main__":
    main()
