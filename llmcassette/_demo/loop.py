"""
The whole loop on the embedded default, offline: record the example client through the recording
proxy from the bundled upstream, replay the cassette in-process and through ``serve``, and run the
client under the standard fault set.

Everything listens on 127.0.0.1 and is stopped before the function returns; nothing is sent
anywhere else, and no API key is needed (the client sends a dummy one, which the cassette stores
scrubbed).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from .._models import header_get
from .._modes import Pace
from .._storage import load_cassette
from ..proxy import CassetteServer, LoopbackServer, Recorder, RouteTable
from .client import ChatResult
from .fault_run import run_faults
from .make_cassette import upstream_app
from .replay import recorded_base_url, replay_lines
from .scenario import converse_with

__all__ = ["run_loop"]

_DEMO_KEY = "sk-demo-0123456789abcdefghijklmnop"


def _same(got: list[ChatResult], want: list[ChatResult]) -> str:
    return "the same answers as the live run" if got == want else "DIFFERENT answers from the live run"


def _serve_step(path: Path, recorded: list[ChatResult], say: Callable[[str], None]) -> None:
    lines: list[str] = []
    with CassetteServer([path], log=lines.append) as url:
        say(f"    serve      {url}  (`llmcassette serve {path.name}`: a fake provider on loopback)")
        served = asyncio.run(converse_with(url + "/v1"))
    for line in lines:
        say(f"    log        {line}")
    say(f"    result     {len(served)} replies, {_same(served, recorded)}")


def run_loop(
    workdir: Path, *, pace: Pace = "instant", say: Callable[[str], None] = print
) -> list[ChatResult]:
    """
    Run the loop, writing the cassette into ``workdir``; ``say`` gets the report line by line.
    ``pace`` is the in-process replay's. Returns what the client got from the live upstream.
    """
    path = workdir / "chat.yaml"
    say("llmcassette demo: record, replay, serve and break an example client, offline.")
    say("")
    say("1. Record the example client (llmcassette/_demo/client.py) through the recording proxy")
    with LoopbackServer(upstream_app()) as upstream:
        say(f"    upstream   {upstream}  (bundled, streams with a provider's pauses and chunking)")
        with Recorder(path, routes=RouteTable(upstream=upstream), record_mode="rewrite") as proxy:
            say(f"    proxy      {proxy}  (`llmcassette record --upstream {upstream}`)")
            live = asyncio.run(converse_with(proxy + "/v1", api_key=_DEMO_KEY))
        stored = load_cassette(path).interactions
    say(f"    recorded   {len(stored)} interactions to {path}")
    for number, interaction in enumerate(stored, start=1):
        response = interaction.response
        chunks = response.stream.chunks if response.stream is not None else None
        shape = f", streamed in {len(chunks)} chunks" if chunks else ""
        auth = header_get(interaction.request.headers, "authorization")
        say(
            f"    [{number}] {interaction.request.method} {interaction.request.uri} -> "
            f"{response.status.code if response.status is not None else 'no response'}{shape}; "
            f"authorization stored as {auth!r}"
        )
    say("")
    say("2. Replay it in-process (use_cassette, record mode 'none'): the upstream is gone")
    lines, replayed = replay_lines(path, pace=pace)
    for line in lines:
        say(f"    {line}" if line else line)
    say(f"    result     {_same(replayed, live)}")
    say("")
    say("3. Replay it through `llmcassette serve`, over HTTP")
    _serve_step(path, live, say)
    say("")
    say("4. The standard fault set, injected into the recording (in-process, virtual clock)")
    say("   What a robust client does: retries transient errors, fails at once on a bad key, and")
    say("   never returns a damaged answer as if it were whole. 'BUG' marks where this one does not.")
    outcomes = run_faults(path, recorded_base_url(path), live)
    for outcome in outcomes:
        say(outcome.line())
    bugs = sum(1 for outcome in outcomes if not outcome.ok)
    say("")
    say(
        f"{len(outcomes) - bugs} of {len(outcomes)} faults handled well. In a test suite the same faults are "
        'one marker away: @pytest.mark.llm_fault_matrix("standard").'
    )
    return live
