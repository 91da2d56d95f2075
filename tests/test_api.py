"""
``use_cassette`` as a user meets it: context manager (sync and async), decorator (sync and async
functions), option validation, and how a miss the client swallowed still fails the test.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import vcr

import llmcassette
from llmcassette import ConfigError, NoMatchingInteraction, RecordMode
from tests.servers import Client, serve, stream_app

# -- forms ------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_decorator_records_then_replays_on_each_call(client: Client, tmp_path: Path) -> None:
    path = tmp_path / "decorated.yaml"
    cassettes: list[llmcassette.Cassette] = []
    decorate = llmcassette.use_cassette(path, record_mode="once")

    if client.is_async:

        @decorate
        async def fetch(url: str) -> bytes:
            """Ask the upstream."""
            cassettes.append(_active())
            return (await client.send("POST", url, json={"q": 1})).body

    else:

        @decorate
        def fetch(url: str) -> bytes:
            """Ask the upstream."""
            cassettes.append(_active())
            with client.lib.Client(verify=False) as http:
                return bytes(http.post(url, json={"q": 1}).content)

    assert fetch.__name__ == "fetch" and fetch.__doc__ == "Ask the upstream."
    assert inspect.iscoroutinefunction(fetch) is client.is_async

    async def call(url: str) -> bytes:
        result = fetch(url)
        return await result if inspect.isawaitable(result) else result  # type: ignore[no-any-return]

    with serve(stream_app()) as base:
        live = await call(f"{base}/json")
    assert not llmcassette._intercept.is_installed()
    # Each call uses the file afresh: the second finds what the first recorded, offline.
    replayed = await call(f"{base}/json")
    assert replayed == live == b'{"echo":{"q":1},"path":"/json"}'
    first, second = cassettes
    assert first is not second
    assert (first.existed, second.existed) == (False, True)
    assert [a.recorded for a in first.attempts] == [True]
    assert [a.interaction for a in second.attempts] == [0]


def _active() -> llmcassette.Cassette:
    cassette = llmcassette._intercept.current_cassette()
    assert cassette is not None
    return cassette


@pytest.mark.anyio
async def test_async_with_and_reuse_of_one_context(client: Client, upstream: str, tmp_path: Path) -> None:
    context = llmcassette.use_cassette(tmp_path / "reused.yaml", record_mode="once")
    assert isinstance(context, llmcassette.CassetteContext)
    async with context as recording:
        live = await client.stream("GET", f"{upstream}/ndjson?n=2&gap_ms=5")
    async with context as replaying:
        replayed = await client.stream("GET", f"{upstream}/ndjson?n=2&gap_ms=5")
    assert replayed.chunks == live.chunks
    assert recording is not replaying
    assert (recording.existed, replaying.existed) == (False, True)
    assert replaying.path == tmp_path / "reused.yaml"
    assert replaying.record_mode is RecordMode.ONCE
    assert [a.recorded for a in replaying.attempts] == [False]


@pytest.mark.anyio
async def test_one_context_entered_by_concurrent_tasks(client: Client, upstream: str, tmp_path: Path) -> None:
    path = tmp_path / "shared.yaml"
    async with llmcassette.use_cassette(path, record_mode="once"):
        await client.send("GET", f"{upstream}/json")
    context = llmcassette.use_cassette(path)
    first_entered, first_exited = asyncio.Event(), asyncio.Event()

    async def first() -> llmcassette.Cassette:
        async with context as cassette:
            first_entered.set()
            await asyncio.sleep(0.01)  # the second task enters meanwhile
        first_exited.set()
        return cassette

    async def second() -> llmcassette.Cassette:
        await first_entered.wait()
        async with context as cassette:
            await first_exited.wait()
            await client.send("GET", f"{upstream}/json")
        return cassette

    one, two = await asyncio.gather(first(), second())
    assert (len(one.attempts), len(two.attempts)) == (0, 1)


@pytest.mark.anyio
@pytest.mark.parametrize("where", ["thread", "task"])
async def test_context_exited_elsewhere_than_entered(tmp_path: Path, where: str) -> None:
    # A fixture or test harness may set up and tear down in different tasks or threads.
    context = llmcassette.use_cassette(tmp_path / "elsewhere.yaml")
    errors: list[BaseException] = []

    def leave() -> None:
        try:
            context.__exit__(None, None, None)
        except BaseException as exc:  # noqa: B036 - reported below, whatever it is
            errors.append(exc)

    try:
        if where == "thread":
            context.__enter__()
            worker = threading.Thread(target=leave)
            worker.start()
            worker.join(timeout=10)
        else:
            await asyncio.create_task(context.__aenter__())
            await asyncio.create_task(asyncio.to_thread(leave))
        assert errors == []
        assert not llmcassette._intercept.is_installed()
    finally:
        # Do not let a leaked cassette answer the requests of later tests.
        for cassette in list(llmcassette._intercept._active):
            llmcassette._intercept.deactivate(cassette, None)


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["generator", "async-generator"])
async def test_decorated_generators_run_inside_the_cassette(tmp_path: Path, kind: str) -> None:
    decorate = llmcassette.use_cassette(tmp_path / "gen.yaml")
    if kind == "generator":

        @decorate
        def produce() -> Iterator[bool]:
            yield llmcassette._intercept.is_installed()

        seen = list(produce())
    else:

        @decorate
        async def aproduce() -> AsyncIterator[bool]:
            yield llmcassette._intercept.is_installed()

        seen = [item async for item in aproduce()]
    assert seen == [True]


# -- misses the client swallowed ------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("form", ["with", "async-with", "decorator"])
async def test_swallowed_miss_fails_at_exit(client: Client, upstream: str, tmp_path: Path, form: str) -> None:
    context = llmcassette.use_cassette(tmp_path / "absent.yaml")
    cassettes: list[llmcassette.Cassette] = []

    async def body() -> str:
        cassettes.append(_active())
        try:
            await client.send("POST", f"{upstream}/json", json={"q": 1})
        except NoMatchingInteraction:
            return "fallback"  # a retry loop or fallback that hides the error
        return "answered"

    with pytest.raises(NoMatchingInteraction) as info:
        if form == "with":
            with context:
                assert await body() == "fallback"
        elif form == "async-with":
            async with context:
                assert await body() == "fallback"
        else:
            assert await context(body)() == "fallback"
    assert cassettes[0].misses == [info.value]
    assert str(info.value).startswith("llmcassette: cassette file ")
    assert not llmcassette._intercept.is_installed()


@pytest.mark.anyio
async def test_miss_behind_another_exception_becomes_a_note(
    client: Client, upstream: str, tmp_path: Path
) -> None:
    with pytest.raises(RuntimeError) as info:
        with llmcassette.use_cassette(tmp_path / "absent.yaml") as cassette:
            try:
                await client.send("POST", f"{upstream}/json", json={"q": 1})
            except NoMatchingInteraction:
                # A client that wraps transport errors in its own exception type.
                raise RuntimeError("the model call failed") from None
    assert str(info.value) == "the model call failed"
    assert info.value.__notes__ == [str(cassette.misses[0])]
    assert info.value.__notes__[0].startswith("llmcassette: cassette file ")


@pytest.mark.anyio
async def test_miss_that_escapes_is_raised_as_is(client: Client, upstream: str, tmp_path: Path) -> None:
    with pytest.raises(NoMatchingInteraction) as info:
        with llmcassette.use_cassette(tmp_path / "absent.yaml") as cassette:
            await client.send("POST", f"{upstream}/json", json={"q": 1})
    assert info.value is cassette.misses[0]
    assert not hasattr(info.value, "__notes__")


# -- options -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param(
            {"record_mode": "sometimes"},
            "llmcassette: unknown record mode 'sometimes'; use one of 'none', 'once', 'new_episodes', "
            "'all', 'rewrite'.",
            id="record_mode",
        ),
        pytest.param(
            {"match_on": ("method", "bogus")},
            "llmcassette: `match_on` names unknown request parts ['bogus']; choose from "
            "['body', 'host', 'method', 'path', 'port', 'query', 'scheme', 'uri', 'url'].",
            id="match_on",
        ),
        pytest.param({"match_on": ()}, "llmcassette: `match_on` is empty", id="match_on-empty"),
        pytest.param({"pace": "fast"}, "llmcassette: pace 'fast' is not valid;", id="pace-word"),
        pytest.param({"pace": 0}, "llmcassette: pace 0 is not valid;", id="pace-zero"),
        pytest.param({"pace": -2.0}, "llmcassette: pace -2.0 is not valid;", id="pace-negative"),
        pytest.param({"pace": True}, "llmcassette: pace True is not valid;", id="pace-bool"),
        pytest.param({"pace": float("inf")}, "llmcassette: pace inf is not valid;", id="pace-inf"),
        pytest.param({"scrub": "yes"}, "llmcassette: `scrub` takes True, False or a Scrubber", id="scrub"),
    ],
)
def test_invalid_options_fail_where_they_are_written(
    tmp_path: Path, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        llmcassette.use_cassette(tmp_path / "c.yaml", **options)
    assert str(info.value).startswith(message)
    assert isinstance(info.value, ValueError)
    assert not llmcassette._intercept.is_installed()


@pytest.mark.parametrize("pace", ["instant", "recorded", 2, 0.5, "3x", " Recorded "])
def test_valid_paces_are_accepted(tmp_path: Path, pace: str | float) -> None:
    with llmcassette.use_cassette(tmp_path / "c.yaml", pace=pace) as cassette:
        assert cassette.attempts == []


def test_record_mode_accepts_the_enum(tmp_path: Path) -> None:
    with llmcassette.use_cassette(tmp_path / "c.yaml", record_mode=RecordMode.NEW_EPISODES) as cassette:
        assert cassette.record_mode is RecordMode.NEW_EPISODES
    assert not (tmp_path / "c.yaml").exists()  # nothing recorded, nothing written


def test_vcrpy_compatible_recording_replays_with_plain_vcrpy(upstream: str, tmp_path: Path) -> None:
    path = tmp_path / "chat.yaml"
    requests = [("/json", {"q": "caf\u00e9"}), ("/sse?n=4&split=7&gap_ms=0", {"stream": True})]
    with llmcassette.use_cassette(path, record_mode="once", vcrpy_compatible=True):
        recorded = [httpx.post(upstream + url, json=body).content for url, body in requests]
    assert "parsed_body" not in path.read_text()
    # Plain vcrpy, with llmcassette not active, answers both requests from the file.
    with vcr.VCR(record_mode="none", match_on=["method", "uri", "body"]).use_cassette(str(path)) as tape:
        replayed = [httpx.post(upstream + url, json=body).content for url, body in requests]
        assert tape.all_played
    assert replayed == recorded
    # llmcassette still replays the recorded chunk boundaries from the same file.
    with llmcassette.use_cassette(path) as cassette:
        for url, body in requests:
            httpx.post(upstream + url, json=body)
    assert len(cassette.attempts[1].chunks) > 4
    assert b"".join(cassette.attempts[1].chunks) == recorded[1]
