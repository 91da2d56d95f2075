"""
The suite-wide switch (`--llm-vcr`, `llmcassette_vcr = true`): a pytest-recording suite, recorded by
vcrpy, gives the same results test for test when llmcassette answers it, and both libraries'
recordings end up in one file.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

# Imported before any inner run (see conftest.py): the inner suites use them.
import aiohttp  # noqa: F401
import pytest
import pytest_asyncio  # noqa: F401
import requests  # noqa: F401
import vcr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from vcr.request import Request as VcrRequest

from llmcassette._scrub import Scrubber
from llmcassette._storage import load_cassette, save_cassette
from llmcassette._vcr_switch import SharedFile, _Persister
from tests.recordings import Recording
from tests.servers import serve

from ._cassettes import CHAT_URL
from .conftest import NO_PLUGIN_ARGS, PLUGIN_ARGS, needs_vcrpy_skip_patchers

pytest_plugins = ["pytester"]
# The switch hands vcrpy's httpx patching over to llmcassette with `skip_patchers` (vcrpy 9.4).
pytestmark = needs_vcrpy_skip_patchers

# pytest-asyncio's plugin is named `asyncio`, and loading it by name makes pytest warn that the
# standard library's module is imported already.
_ASYNCIO = ("-p", "asyncio", "-W", "ignore::pytest.PytestAssertRewriteWarning")
#: An inner run with pytest-recording and pytest-asyncio, without llmcassette: vcrpy alone.
VCRPY_ALONE = (*NO_PLUGIN_ARGS, *_ASYNCIO, "-p", "no:cacheprovider", "-v")
#: The same run with llmcassette installed.
WITH_PLUGIN = (*PLUGIN_ARGS, *_ASYNCIO, "-p", "no:cacheprovider", "-v")

_INI = """
[pytest]
asyncio_mode = strict
asyncio_default_fixture_loop_scope = function
{extra}
"""


def _gzip_json(payload: object) -> Response:
    headers = {"content-encoding": "gzip", "connection": "close", "x-request-id": "req-secret-id"}
    return Response(
        gzip.compress(json.dumps(payload).encode()), media_type="application/json", headers=headers
    )


async def _chat(request: Request) -> Response:
    payload = await request.json()
    text = f"echo: {payload['messages'][-1]['content']}"
    if not payload.get("stream"):
        return _gzip_json({"choices": [{"message": {"role": "assistant", "content": text}}]})

    async def events() -> AsyncIterator[bytes]:
        for word in text.split(" "):
            chunk = {"choices": [{"index": 0, "delta": {"content": word + " "}}]}
            yield f"data: {json.dumps(chunk)}\n\n".encode()
        yield b"data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream", headers={"connection": "close"})


async def _models(request: Request) -> Response:
    return _gzip_json({"data": [{"id": "m1"}, {"id": "m2"}]})


async def _foundation_models(request: Request) -> Response:
    # Bedrock's ListFoundationModels, a GET botocore sends with no body.
    return Response(json.dumps({"modelSummaries": []}), media_type="application/json")


async def _prepare_agent(request: Request) -> Response:
    # Bedrock Agents' PrepareAgent, a POST botocore sends with no body (and `Content-Length: 0`).
    answer = {"agentId": "A1234567890", "agentStatus": "PREPARING", "agentVersion": "DRAFT"}
    answer["preparedAt"] = "2024-01-01T00:00:00Z"
    return Response(json.dumps(answer), status_code=202, media_type="application/json")


def _chat_app() -> Starlette:
    """An OpenAI-like server: gzip JSON answers (as real providers send them), SSE streams."""
    return Starlette(
        routes=[
            Route("/v1/chat/completions", _chat, methods=["POST"]),
            Route("/v1/models", _models, methods=["GET"]),
            Route("/v1/ping", _models, methods=["POST"]),
            Route("/foundation-models", _foundation_models, methods=["GET"]),
            Route("/agents/{agent}/", _prepare_agent, methods=["POST"]),
        ]
    )


@pytest.fixture
def chat_server() -> Iterator[str]:
    with serve(_chat_app()) as base:
        yield base


_CONFTEST = """
import os

import pytest

def drop_request_ids(response):
    response["headers"] = {{
        name: values for name, values in response["headers"].items() if name.lower() != "x-request-id"
    }}
    return response

@pytest.fixture(scope="module")
def vcr_config():
    return {{
        "filter_headers": ["authorization"],
        "match_on": ["method", "scheme", "host", "port", "path", "query"],
        "decode_compressed_response": {decode},
        "before_record_response": drop_request_ids,
    }}

@pytest.fixture(scope="module")
def vcr_cassette_dir(request):
    return os.path.join(os.path.dirname(str(request.path)), "recordings", request.module.__name__)
"""

_SUITE = """
import json

import aiohttp
import httpx
import pytest
import requests

BASE = {base!r}
KEY = {{"authorization": "Bearer sk-live-0123456789abcdefghij"}}
QUESTION = "hi"


def ask(client, text):
    body = {{"model": "m", "messages": [{{"role": "user", "content": text}}]}}
    reply = client.post(f"{{BASE}}/v1/chat/completions", headers=KEY, json=body)
    reply.raise_for_status()
    if RECORDED:
        assert "x-request-id" not in reply.headers  # before_record_response dropped it
    return reply.json()["choices"][0]["message"]["content"]


@pytest.mark.vcr
def test_chat():
    with httpx.Client() as client:
        # Matching leaves the body out: another question replays the recorded answer.
        assert ask(client, QUESTION) == "echo: hi"


@pytest.mark.vcr
def test_two_calls_replay_in_order():
    with httpx.Client() as client:
        assert ask(client, "one") == "echo: one"
        assert ask(client, "two") == "echo: two"


@pytest.mark.vcr
@pytest.mark.default_cassette("streamed.yaml")
def test_stream():
    body = {{"model": "m", "stream": True, "messages": [{{"role": "user", "content": "streamed"}}]}}
    with httpx.Client() as client:
        with client.stream("POST", f"{{BASE}}/v1/chat/completions", headers=KEY, json=body) as reply:
            words = [
                json.loads(line[6:])["choices"][0]["delta"]["content"]
                for line in reply.iter_lines()
                if line.startswith("data: {{")
            ]
    assert "".join(words) == "echo: streamed "


@pytest.mark.vcr
def test_requests_beside_httpx():
    models = requests.get(f"{{BASE}}/v1/models", headers=KEY, timeout=5).json()
    assert [model["id"] for model in models["data"]] == ["m1", "m2"]
    with httpx.Client() as client:
        assert ask(client, "and httpx") == "echo: and httpx"


@pytest.mark.vcr
@pytest.mark.asyncio
async def test_async_chat():
    async with httpx.AsyncClient() as client:
        body = {{"model": "m", "messages": [{{"role": "user", "content": "async"}}]}}
        reply = await client.post(f"{{BASE}}/v1/chat/completions", headers=KEY, json=body)
    assert reply.json()["choices"][0]["message"]["content"] == "echo: async"


@pytest.mark.vcr
@pytest.mark.asyncio
async def test_aiohttp_beside_httpx():
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{{BASE}}/v1/models", headers=KEY) as reply:
            models = await reply.json()
    assert [model["id"] for model in models["data"]] == ["m1", "m2"]
    async with httpx.AsyncClient() as client:
        body = {{"model": "m", "messages": [{{"role": "user", "content": "and aiohttp"}}]}}
        reply = await client.post(f"{{BASE}}/v1/chat/completions", headers=KEY, json=body)
    assert reply.json()["choices"][0]["message"]["content"] == "echo: and aiohttp"


@pytest.mark.vcr
def test_asks_more_than_recorded():
    with httpx.Client() as client:
        assert ask(client, "once") == "echo: once"
        if RECORDED:
            ask(client, "twice")  # not in the cassette: a miss for both libraries
"""

_OUTCOME = re.compile(r"^(test_\w+\.py::\w+) (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)")


def _outcomes(result: pytest.RunResult) -> dict[str, str]:
    """Each test's outcome, from a `-v` run."""
    found = {}
    for line in result.outlines:
        match = _OUTCOME.match(line)
        if match:
            found[match[1]] = match[2]
    return found


def _record_with_vcrpy(pytester: pytest.Pytester, base: str, decode: bool) -> None:
    pytester.makeini(_INI.format(extra=""))
    pytester.makeconftest(_CONFTEST.format(decode=decode))
    pytester.makepyfile(test_suite=_SUITE.format(base=base) + "\nRECORDED = False\n")
    recorded = pytester.runpytest(*VCRPY_ALONE, "--record-mode=once")
    recorded.assert_outcomes(passed=len(_SUITE_TESTS))
    # Replayed from now on: another question for the body-less matching, a call too many.
    pytester.makepyfile(
        test_suite=_SUITE.format(base=base).replace('QUESTION = "hi"', 'QUESTION = "hello"')
        + "\nRECORDED = True\n"
    )


@pytest.mark.parametrize("decode", [True, False], ids=["decoded", "gzip"])
def test_a_vcrpy_suite_gives_the_same_results_when_switched(
    pytester: pytest.Pytester, chat_server: str, decode: bool
) -> None:
    _record_with_vcrpy(pytester, chat_server, decode)
    folder = pytester.path / "recordings" / "test_suite"  # the suite's `vcr_cassette_dir`
    assert (folder / "streamed.yaml").is_file()  # `default_cassette` names this one
    text = (folder / "test_chat.yaml").read_text()
    assert "sk-live" not in text and "x-request-id" not in text
    assert ("!!binary" in text) is not decode  # vcrpy kept the gzip bytes unless told to decode
    files = {path.name: path.read_bytes() for path in folder.iterdir()}

    expected = {f"test_suite.py::{name}": "PASSED" for name in _SUITE_TESTS}
    expected["test_suite.py::test_asks_more_than_recorded"] = "FAILED"
    plain = pytester.runpytest(*VCRPY_ALONE)
    switched = pytester.runpytest(*WITH_PLUGIN, "--llm-vcr")
    assert _outcomes(plain) == _outcomes(switched) == expected
    switched.stdout.fnmatch_lines(
        ["E *NoMatchingInteraction: llmcassette: POST http://*/v1/chat/completions matches recorded *"]
    )
    pytester.makeini(_INI.format(extra="llmcassette_vcr = true"))
    assert _outcomes(pytester.runpytest(*WITH_PLUGIN)) == expected
    # Replaying wrote nothing.
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == files

    # Switched, llmcassette answers httpx: faults reach every test, and requests stays vcrpy's.
    faulted = _outcomes(pytester.runpytest(*WITH_PLUGIN, "--llm-faults=rate_limit:times=1"))
    assert faulted["test_suite.py::test_chat"] == "FAILED"
    assert faulted["test_suite.py::test_requests_beside_httpx"] == "FAILED"
    pytester.makeini(_INI.format(extra=""))
    assert _outcomes(pytester.runpytest(*WITH_PLUGIN, "--llm-faults=rate_limit:times=1")) == expected


_SUITE_TESTS = [
    "test_chat",
    "test_two_calls_replay_in_order",
    "test_stream",
    "test_requests_beside_httpx",
    "test_async_chat",
    "test_aiohttp_beside_httpx",
    "test_asks_more_than_recorded",
]

_RETRY = """
import httpx, pytest

BASE = {base!r}

def ask_with_retries(client, text):
    body = {{"model": "m", "messages": [{{"role": "user", "content": text}}]}}
    for _ in range(3):
        reply = client.post(f"{{BASE}}/v1/chat/completions", json=body)
        if reply.status_code != 429:
            break
    reply.raise_for_status()
    return reply.json()["choices"][0]["message"]["content"]

@pytest.mark.vcr
def test_retries(llm_cassette):
    with httpx.Client() as client:
        assert ask_with_retries(client, "hi") == "echo: hi"
    assert [attempt.status for attempt in llm_cassette.attempts] == {statuses}
    assert llm_cassette.attempts[0].faults == {faults}
"""


def test_llm_faults_on_a_switched_suite_show_the_client_s_retries_in_the_attempt_log(
    pytester: pytest.Pytester, chat_server: str
) -> None:
    pytester.makeini(_INI.format(extra="llmcassette_vcr = true"))
    pytester.makeconftest(_CONFTEST.format(decode=True))
    pytester.makepyfile(test_retry=_RETRY.format(base=chat_server, statuses=[200], faults=[]))
    pytester.runpytest(*WITH_PLUGIN, "--record-mode=once").assert_outcomes(passed=1)
    pytester.makepyfile(
        test_retry=_RETRY.format(base=chat_server, statuses=[429, 429, 200], faults=["rate_limit:times=2"])
    )
    pytester.runpytest(*WITH_PLUGIN, "--llm-faults=rate_limit:times=2").assert_outcomes(passed=1)


_EVERY_LIBRARY = """
import aiohttp, httpx, pytest, requests

BASE = {base!r}


async def models():
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{{BASE}}/v1/models") as reply:
            return [model["id"] for model in (await reply.json())["data"]]


@pytest.mark.vcr
@pytest.mark.asyncio
{marker}
async def test_every_library():
    assert await models() == ["m1", "m2"]
    body = {{"model": "m", "messages": [{{"role": "user", "content": "every"}}]}}
    async with httpx.AsyncClient() as client:
        reply = await client.post(f"{{BASE}}/v1/chat/completions", json=body)
    assert reply.json()["choices"][0]["message"]["content"] == "echo: every"
    assert requests.get(f"{{BASE}}/v1/models", timeout=5).status_code == 200
"""


@pytest.mark.parametrize(
    ("marker", "option"),
    [("", "--llm-vcr"), ("@pytest.mark.llm_cassette", "--llm-pace=instant")],
    ids=["switched", "marked"],
)
def test_every_library_s_interactions_end_up_in_the_one_file(
    pytester: pytest.Pytester, chat_server: str, marker: str, option: str
) -> None:
    pytester.makeini(_INI.format(extra=""))
    pytester.makeconftest(_CONFTEST.format(decode=True))
    pytester.makepyfile(test_every=_EVERY_LIBRARY.format(base=chat_server, marker=marker))
    pytester.runpytest(*WITH_PLUGIN, option, "--record-mode=once").assert_outcomes(passed=1)
    text = (pytester.path / "recordings" / "test_every" / "test_every_library.yaml").read_text()
    # llmcassette answered and recorded aiohttp, httpx and requests, in order, each once.
    assert "llmcassette_schema: 1" in text and text.count("elapsed_ms:") == 3
    assert text.count("/v1/models") == 2 and text.count("/v1/chat/completions") == 1
    pytester.runpytest(*WITH_PLUGIN, option, "--block-network").assert_outcomes(passed=1)
    if not marker:
        pytester.runpytest(*VCRPY_ALONE, "--block-network").assert_outcomes(passed=1)


def test_what_vcrpy_records_is_added_to_the_file_llmcassette_wrote(
    tmp_path: Path, recording: Recording
) -> None:
    # vcrpy keeps the libraries llmcassette has no door for (httplib2, tornado). None is installed
    # here, so vcrpy's cassette is fed as their stubs feed it: `append` after a live exchange.
    path = tmp_path / "test_chat.yaml"
    recording.copy_to(path)
    shared = SharedFile()
    config = vcr.VCR(record_mode="new_episodes")
    config.register_persister(_Persister(config.persister, shared))
    with config.use_cassette(str(path)) as vcr_cassette:
        shared.bind(vcr_cassette, Scrubber())
        # Meanwhile llmcassette records one interaction and writes the file (its own exit).
        document = load_cassette(path)
        document.interactions.append(document.interactions[0])
        save_cassette(path, document, vcrpy_compatible=True)
        request = VcrRequest(
            "GET", "http://tornado.invalid/v1/models", None, {"x-api-key": "sk-secret-1234567890ab"}
        )
        vcr_cassette.append(
            request,
            {
                "status": {"code": 200, "message": "OK"},
                "headers": {"content-type": ["application/json"]},
                "body": {"string": b'{"data": []}'},
            },
        )
    interactions = load_cassette(path).interactions
    assert [i.request.uri for i in interactions] == [CHAT_URL, CHAT_URL, "http://tornado.invalid/v1/models"]
    assert interactions[2].response.content == b'{"data": []}'
    assert "sk-secret" not in path.read_text()  # llmcassette's scrubbing applies to vcrpy's too
    # And vcrpy alone reads all three.
    with vcr.VCR(record_mode="none").use_cassette(str(path)) as alone:
        assert len(alone.data) == 3


_HOOKS = """
import httpx, pytest

BASE = {base!r}

def redact_org(response):
    response["body"]["string"] = response["body"]["string"].replace(b"org-4242", b"ORG")
    return response

def drop_request_id(response):
    response["headers"].pop("x-request-id", None)  # in place, as hooks usually do
    return response

def without_timestamp(request):
    request.uri = request.uri.split("?")[0]
    return request

@pytest.fixture
def vcr_config():
    return {{
        "before_record_response": [redact_org, drop_request_id],
        "before_record_request": without_timestamp,
        "ignore_hosts": ["127.0.0.2"],
        "ignore_localhost": True,
    }}

@pytest.mark.vcr
def test_hooks_apply_on_replay():
    reply = httpx.get("https://api.example.invalid/v1/org?ts=1765000000")
    assert reply.json() == {{"org": "ORG"}}
    assert "x-request-id" not in reply.headers

@pytest.mark.vcr
def test_a_hook_that_changes_the_headers_alone():
    reply = httpx.get("https://api.example.invalid/v1/org?ts=1765000001")
    assert reply.json() == {{"org": "another"}}
    assert "x-request-id" not in reply.headers


@pytest.mark.vcr
def test_ignored_hosts_go_live():
    body = {{"model": "m", "messages": [{{"role": "user", "content": "live"}}]}}
    reply = httpx.post(f"{{BASE}}/v1/chat/completions", json=body)
    assert reply.json()["choices"][0]["message"]["content"] == "echo: live"
"""

_ORG_CASSETTE = {
    "version": 1,
    "interactions": [
        {
            "request": {
                "method": "GET",
                "uri": "https://api.example.invalid/v1/org?ts=1",
                "body": None,
                "headers": {},
            },
            "response": {
                "status": {"code": 200, "message": "OK"},
                "headers": {"content-type": ["application/json"], "x-request-id": ["req-1"]},
                "body": {"string": '{"org": "org-4242"}'},
            },
        }
    ],
}


def test_vcr_config_hooks_and_ignored_hosts_are_honoured_when_switched(
    pytester: pytest.Pytester, chat_server: str
) -> None:
    pytester.makeini(_INI.format(extra=""))
    pytester.makepyfile(test_hooks=_HOOKS.format(base=chat_server))
    folder = pytester.path / "cassettes" / "test_hooks"
    folder.mkdir(parents=True)
    (folder / "test_hooks_apply_on_replay.yaml").write_text(json.dumps(_ORG_CASSETTE))
    another = json.dumps(_ORG_CASSETTE).replace("org-4242", "another")
    (folder / "test_a_hook_that_changes_the_headers_alone.yaml").write_text(another)
    expected = {
        "test_hooks.py::test_hooks_apply_on_replay": "PASSED",
        "test_hooks.py::test_a_hook_that_changes_the_headers_alone": "PASSED",
        "test_hooks.py::test_ignored_hosts_go_live": "PASSED",
    }
    assert _outcomes(pytester.runpytest(*VCRPY_ALONE)) == expected
    assert _outcomes(pytester.runpytest(*WITH_PLUGIN, "--llm-vcr")) == expected
    # Nothing the hooks leave out was recorded.
    assert len(list(folder.iterdir())) == 2


_THROUGH_AIOHTTP = """
import aiohttp, httpx, pytest

BASE = {base!r}


class AiohttpTransport(httpx.AsyncBaseTransport):
    # An httpx transport over aiohttp, as litellm's: llmcassette answers it at the aiohttp door.
    async def handle_async_request(self, request):
        headers = {{"content-type": request.headers["content-type"]}}
        async with aiohttp.ClientSession() as session:
            async with session.post(str(request.url), data=await request.aread(), headers=headers) as reply:
                body = await reply.read()
        headers = {{"content-type": reply.content_type}}
        return httpx.Response(reply.status, headers=headers, stream=httpx.ByteStream(body))


@pytest.mark.vcr
@pytest.mark.asyncio
async def test_through_aiohttp(llm_cassette):
    body = {{"model": "m", "messages": [{{"role": "user", "content": "through aiohttp"}}]}}
    async with httpx.AsyncClient(transport=AiohttpTransport()) as client:
        reply = await client.post(f"{{BASE}}/v1/chat/completions", json=body)
    assert reply.json()["choices"][0]["message"]["content"] == "echo: through aiohttp"
    assert len(llm_cassette.attempts) == 1
"""


def test_a_transport_built_on_aiohttp_is_recorded_once_on_a_switched_test(
    pytester: pytest.Pytester, chat_server: str
) -> None:
    pytester.makeini(_INI.format(extra="llmcassette_vcr = true"))
    pytester.makepyfile(test_aiohttp=_THROUGH_AIOHTTP.format(base=chat_server))
    pytester.runpytest(*WITH_PLUGIN, "--record-mode=once").assert_outcomes(passed=1)
    text = (pytester.path / "cassettes" / "test_aiohttp" / "test_through_aiohttp.yaml").read_text()
    assert text.count("/v1/chat/completions") == 1  # not again at the aiohttp door, nor by vcrpy
    pytester.runpytest(*WITH_PLUGIN, "--block-network").assert_outcomes(passed=1)


def test_the_switch_leaves_tests_alone_when_recording_is_disabled(
    pytester: pytest.Pytester, chat_server: str
) -> None:
    pytester.makeini(_INI.format(extra="llmcassette_vcr = true"))
    pytester.makepyfile(
        test_live=f"""
        import httpx, pytest

        @pytest.mark.vcr
        def test_live():
            body = {{"model": "m", "messages": [{{"role": "user", "content": "live"}}]}}
            reply = httpx.post("{chat_server}/v1/chat/completions", json=body)
            assert reply.json()["choices"][0]["message"]["content"] == "echo: live"
        """
    )
    pytester.runpytest(*WITH_PLUGIN).assert_outcomes(failed=1)  # no cassette, record mode none
    # As pytest-recording: no cassette at all, the request goes to the server.
    pytester.runpytest(*WITH_PLUGIN, "--disable-recording").assert_outcomes(passed=1)
    assert not (pytester.path / "cassettes").exists()


_EXPECTED_MISS = """
import httpx, pytest
from vcr.errors import CannotOverwriteExistingCassetteException

@pytest.mark.vcr
def test_vcrpy_s_exception(llm_cassette):
    with llm_cassette.expect_miss() as missed:
        with pytest.raises(CannotOverwriteExistingCassetteException):
            httpx.get("https://api.example.invalid/v1/models")
        caught_as_vcrpy_s = True
    assert caught_as_vcrpy_s and isinstance(missed.value, CannotOverwriteExistingCassetteException)

@pytest.mark.vcr
def test_caught_without_expect_miss():
    with pytest.raises(CannotOverwriteExistingCassetteException):
        httpx.get("https://api.example.invalid/v1/models")
"""


def test_a_miss_on_a_switched_test_is_also_vcrpy_s_exception(pytester: pytest.Pytester) -> None:
    pytester.makeini(_INI.format(extra="llmcassette_vcr = true"))
    pytester.makepyfile(test_miss=_EXPECTED_MISS)
    result = pytester.runpytest(*WITH_PLUGIN)
    assert _outcomes(result) == {
        "test_miss.py::test_vcrpy_s_exception": "PASSED",
        # Caught, the miss still fails the test when it ends (vcrpy would let it pass).
        "test_miss.py::test_caught_without_expect_miss": "FAILED",
    }
    result.stdout.fnmatch_lines(["E *NoMatchingInteraction: llmcassette: cassette file *does not exist*"])


_BODY_MATCHED_GETS = """
import urllib.request

import aiohttp
import httpx
import pytest
import requests
import urllib3

BASE = {base!r}


@pytest.fixture(scope="module")
def vcr_config():
    return {{"match_on": ["method", "uri", "body"], "decode_compressed_response": True}}


@pytest.mark.vcr
def test_requests():
    assert requests.get(f"{{BASE}}/v1/models", timeout=5).json()["data"][0]["id"] == "m1"


@pytest.mark.vcr
def test_urllib3():
    with urllib3.PoolManager() as pool:
        assert pool.request("GET", f"{{BASE}}/v1/models").json()["data"][0]["id"] == "m1"


@pytest.mark.vcr
def test_urllib_request():
    with urllib.request.urlopen(f"{{BASE}}/v1/models", timeout=5) as reply:
        assert reply.read()  # gzip: urllib.request does not decode it


@pytest.mark.vcr
def test_httpx():
    with httpx.Client() as client:
        assert client.get(f"{{BASE}}/v1/models").json()["data"][0]["id"] == "m1"


@pytest.mark.vcr
@pytest.mark.asyncio
async def test_aiohttp():
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{{BASE}}/v1/models") as reply:
            assert (await reply.json())["data"][0]["id"] == "m1"
"""


@pytest.mark.parametrize("recorder", ["vcrpy", "switched"])
def test_a_body_less_get_recorded_switched_replays_with_vcrpy_matching_on_body(
    pytester: pytest.Pytester, chat_server: str, recorder: str
) -> None:
    # vcrpy compares a request's body as it is: its http.client stub sees None for a GET without
    # a body (requests, urllib3, urllib.request), its httpx stub b''. A recording must store what
    # vcrpy's own would, or vcrpy alone (`match_on` with `body`) cannot replay it.
    pytester.makeini(_INI.format(extra=""))
    pytester.makepyfile(test_gets=_BODY_MATCHED_GETS.format(base=chat_server))
    args = (*VCRPY_ALONE,) if recorder == "vcrpy" else (*WITH_PLUGIN, "--llm-vcr")
    pytester.runpytest(*args, "--record-mode=once").assert_outcomes(passed=5)
    names = ("requests", "urllib3", "urllib_request", "httpx", "aiohttp")
    passed = {f"test_gets.py::test_{name}": "PASSED" for name in names}
    assert _outcomes(pytester.runpytest(*VCRPY_ALONE)) == passed
    assert _outcomes(pytester.runpytest(*WITH_PLUGIN, "--llm-vcr")) == passed
    stored = load_cassette(pytester.path / "cassettes" / "test_gets" / "test_requests.yaml")
    assert stored.interactions[0].request.body is None


_BODY_MATCHED_BODILESS_CALLS = """
import urllib.request

import boto3
import pytest
import requests
import urllib3

BASE = {base!r}


@pytest.fixture(scope="module")
def vcr_config():
    return {{"match_on": ["method", "uri", "body"], "decode_compressed_response": True}}


@pytest.fixture(autouse=True)
def aws(monkeypatch):
    for name, value in {{
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_DEFAULT_REGION": "us-east-1",
    }}.items():
        monkeypatch.setenv(name, value)


@pytest.mark.vcr
def test_requests_post():
    assert requests.post(f"{{BASE}}/v1/ping", timeout=5).json()["data"][0]["id"] == "m1"


@pytest.mark.vcr
def test_urllib3_post():
    with urllib3.PoolManager() as pool:
        assert pool.request("POST", f"{{BASE}}/v1/ping").json()["data"][0]["id"] == "m1"


@pytest.mark.vcr
def test_urllib_request_post():
    request = urllib.request.Request(f"{{BASE}}/v1/ping", method="POST")
    with urllib.request.urlopen(request, timeout=5) as reply:
        assert reply.read()


@pytest.mark.vcr
def test_boto3_get():
    client = boto3.client("bedrock", endpoint_url=BASE)
    assert client.list_foundation_models()["modelSummaries"] == []


@pytest.mark.vcr
def test_boto3_post():
    client = boto3.client("bedrock-agent", endpoint_url=BASE)
    assert client.prepare_agent(agentId="A1234567890")["agentStatus"] == "PREPARING"
"""


@pytest.mark.parametrize("recorder", ["vcrpy", "switched"])
def test_body_less_posts_and_boto3_recorded_switched_replay_with_vcrpy_matching_on_body(
    pytester: pytest.Pytester, chat_server: str, recorder: str
) -> None:
    # vcrpy stores the body its http.client stub is handed: None for a POST sent with none
    # (requests, urllib3, urllib.request add `Content-Length: 0` on the wire) and for botocore's
    # body-less requests. A recording under the switch must store the same, or vcrpy alone
    # (`match_on` with `body`) compares b'' with None and cannot replay it.
    pytester.makeini(_INI.format(extra=""))
    pytester.makepyfile(test_calls=_BODY_MATCHED_BODILESS_CALLS.format(base=chat_server))
    args = (*VCRPY_ALONE,) if recorder == "vcrpy" else (*WITH_PLUGIN, "--llm-vcr")
    pytester.runpytest(*args, "--record-mode=once").assert_outcomes(passed=5)
    names = ("requests_post", "urllib3_post", "urllib_request_post", "boto3_get", "boto3_post")
    passed = {f"test_calls.py::test_{name}": "PASSED" for name in names}
    assert _outcomes(pytester.runpytest(*VCRPY_ALONE)) == passed
    assert _outcomes(pytester.runpytest(*WITH_PLUGIN, "--llm-vcr")) == passed
    for name in names:
        stored = load_cassette(pytester.path / "cassettes" / "test_calls" / f"test_{name}.yaml")
        assert stored.interactions[0].request.body is None, name
