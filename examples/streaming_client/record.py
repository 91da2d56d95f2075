"""
Record ``cassettes/stream.yaml``: one streamed chat completion, through the sync client.

Run from the repository root::

    python -m examples.streaming_client.record

The local upstream streams the reply as OpenAI does: a role chunk, one chunk per delta, a
finish chunk and ``data: [DONE]``, each event in a network read of its own, which the cassette
keeps. The text has multi-byte characters (curly quotes, a cup of coffee) so that rechunking
to single bytes really cuts through characters. The async client replays the same recording:
its request is the same.
"""

from __future__ import annotations

from pathlib import Path

import llmcassette
from examples.streaming_client.client import StreamingClient
from examples.upstream import chat_app, serve

CASSETTE = Path(__file__).parent / "cassettes" / "stream.yaml"
PORT = 8412
BASE_URL = f"http://127.0.0.1:{PORT}"
API_KEY = "sk-test"
MODEL = "example-chat"
MESSAGES = [{"role": "user", "content": "How do recorded streams replay?"}]
DELTAS = ["Recorded ", "streams ", "replay ", "byte for byte, ", "even “curly quotes” ", "and ☕."]


def main() -> None:
    with (
        serve(chat_app(DELTAS), port=PORT),
        llmcassette.use_cassette(CASSETTE, record_mode="rewrite") as cassette,
        StreamingClient(BASE_URL, api_key=API_KEY, model=MODEL) as client,
    ):
        text = client.complete(MESSAGES)
        assert text == "".join(DELTAS), text
    for attempt in cassette.attempts:
        print(attempt.summary(), f"({len(attempt.chunks)} chunks)")
    print(f"wrote {CASSETTE}")


if __name__ == "__main__":
    main()
