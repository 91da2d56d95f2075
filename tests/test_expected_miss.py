"""`Cassette.expect_miss()`: a miss the code means to make stops there and no longer fails at exit."""

from __future__ import annotations

from pathlib import Path

import httpx
import httpx2
import pytest

import llmcassette
from llmcassette import NoMatchingInteraction
from tests.plugin._cassettes import CHAT_URL
from tests.recordings import Recording

BODY = {"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
OTHER = {**BODY, "messages": [{"role": "user", "content": "bye"}]}


@pytest.fixture
def cassette_path(recording: Recording) -> Path:
    """The test's recording, replayed where it lies: replay writes nothing."""
    return recording.path


@pytest.mark.parametrize("module", [httpx, httpx2], ids=["httpx", "httpx2"])
def test_a_raised_miss_is_stopped_and_kept_on_the_block(cassette_path: Path, module: object) -> None:
    client_class = module.Client  # type: ignore[attr-defined]
    with llmcassette.use_cassette(cassette_path) as cassette, client_class() as client:
        with cassette.expect_miss() as missed:
            client.post(CHAT_URL, json=OTHER)
        assert "Hello" in client.post(CHAT_URL, json=BODY).text  # the cassette still answers
    assert isinstance(missed.value, NoMatchingInteraction)
    assert missed.value.url == CHAT_URL and missed.misses == [missed.value]
    assert cassette.misses == []


def test_a_miss_the_client_swallowed_inside_the_block_is_expected(cassette_path: Path) -> None:
    with llmcassette.use_cassette(cassette_path) as cassette, httpx.Client() as client:
        with cassette.expect_miss() as missed, pytest.raises(NoMatchingInteraction):
            client.post(CHAT_URL, json=OTHER)  # a test (or client) that catches it itself
    assert str(missed.value).startswith("llmcassette: no recorded interaction matches POST")


def test_a_block_without_a_miss_fails(cassette_path: Path) -> None:
    with llmcassette.use_cassette(cassette_path) as cassette, httpx.Client() as client:
        with pytest.raises(AssertionError) as info, cassette.expect_miss():
            client.post(CHAT_URL, json=BODY)
    assert str(info.value) == (
        f"llmcassette: every request in the `expect_miss()` block was answered from cassette "
        f"{str(cassette_path)!r}, so the miss the test expected did not happen. Check the request the "
        "block makes, or remove `expect_miss()`."
    )


def test_another_error_goes_through_and_the_miss_behind_it_is_expected(cassette_path: Path) -> None:
    with llmcassette.use_cassette(cassette_path) as cassette, httpx.Client() as client:
        with pytest.raises(RuntimeError, match="the model call failed"), cassette.expect_miss() as missed:
            try:
                client.post(CHAT_URL, json=OTHER)
            except NoMatchingInteraction:
                raise RuntimeError("the model call failed") from None  # a client's own error type
    assert len(missed.misses) == 1 and cassette.misses == []


def test_a_caught_miss_outside_the_block_still_fails_and_names_expect_miss(cassette_path: Path) -> None:
    with pytest.raises(NoMatchingInteraction) as info:
        with llmcassette.use_cassette(cassette_path), httpx.Client() as client:
            with pytest.raises(NoMatchingInteraction):
                client.post(CHAT_URL, json=OTHER)
    assert info.value.__notes__[-1] == (
        "llmcassette: the code went on after this miss (it was caught). Code that expects it makes "
        "the request inside `with cassette.expect_miss():`."
    )


@pytest.mark.anyio
async def test_expect_miss_in_async_code(cassette_path: Path) -> None:
    async with llmcassette.use_cassette(cassette_path) as cassette, httpx.AsyncClient() as client:
        with cassette.expect_miss() as missed:
            await client.post(CHAT_URL, json=OTHER)
    assert missed.value.method == "POST"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
