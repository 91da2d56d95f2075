"""
botocore's fast path (``URLLib3Session.send`` answered from the cassette): recorded from a local
server that speaks bedrock-runtime, then replayed through it and through the door below it (the
patch taken away while the cassette is active), which must not be told apart: the same parsed
answers, the same chunks read, the same attempt log, the same retries and waits. And every
request it cannot vouch for goes to the door below.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
import botocore.httpsession
import pytest
import urllib3

import llmcassette
from llmcassette import VirtualClock
from llmcassette._adapters import botocore_session
from llmcassette._cassette import Cassette
from tests.adapters.bedrock import INVOKE_ANSWER, bedrock_app, bedrock_client
from tests.adapters.test_http_client import forbid_sockets
from tests.servers import serve

MODEL = "anthropic.claude-3-haiku"
MESSAGES = [{"role": "user", "content": [{"text": "hi"}]}]
#: What botocore signs anew on every call: the date, the signature over it, the call's id.
SIGNED_PER_CALL = {"x-amz-date", "authorization", "amz-sdk-invocation-id"}


def _error(call: Callable[[], Any]) -> dict[str, Any]:
    with pytest.raises(botocore.exceptions.ClientError) as info:
        call()
    response = info.value.response
    return {
        "error": response["Error"],
        "status": response["ResponseMetadata"]["HTTPStatusCode"],
        "retries": response["ResponseMetadata"]["RetryAttempts"],
        "headers": response["ResponseMetadata"]["HTTPHeaders"],
    }


def _scenario(client: Any) -> dict[str, Any]:
    """Every way botocore reads an answer, and what it got each way."""
    got: dict[str, Any] = {}
    converse = client.converse(modelId=MODEL, messages=MESSAGES)
    got["converse"] = converse
    stream = client.converse_stream(modelId=MODEL, messages=MESSAGES)
    got["converse_stream"] = [stream["ResponseMetadata"], list(stream["stream"])]
    # the raw body of an event stream, in the pieces botocore's EventStream reads
    raw = client.converse_stream(modelId=MODEL, messages=MESSAGES)["stream"]._raw_stream
    got["frames"] = list(raw.stream())
    invoked = client.invoke_model(modelId=MODEL, body=json.dumps({"max_tokens": 5}))
    body = invoked.pop("body")
    raw = body._raw_stream
    got["invoke_model"] = [invoked, body.read(100), body.read(1), raw.closed, body.read(), body.read()]
    got["invoke_model"] += [body.tell(), raw.tell(), raw.closed, raw.readable(), raw.flush()]
    invoked = client.invoke_model(modelId=MODEL, body=json.dumps({"max_tokens": 5}))
    with invoked["body"] as raw:
        got["invoke_model, closed"] = [raw.read(10), raw.closed]
    got["invoke_model, closed"] += [raw.closed, raw.read(), raw.read(5)]
    invoked = client.invoke_model(modelId="chunked", body=json.dumps({"max_tokens": 5}))
    body = invoked.pop("body")
    buffer = bytearray(64)
    size = body.readinto(buffer)
    raw = body._raw_stream
    got["invoke_model, chunked"] = [invoked, bytes(buffer[:size]), raw.closed, list(body.iter_chunks(200))]
    got["invoke_model, chunked"] += [raw.closed, raw.tell()]
    invoked = client.invoke_model(modelId="chunked", body=json.dumps({"max_tokens": 5}))
    got["invoke_model, lines"] = list(invoked["body"].iter_lines())
    invoked = client.invoke_model(modelId=MODEL, body=json.dumps({"max_tokens": 5}))
    got["invoke_model, raw"] = [list(invoked["body"]._raw_stream.stream(50)), invoked["body"].tell()]
    streamed = client.invoke_model_with_response_stream(modelId=MODEL, body=json.dumps({"max_tokens": 5}))
    got["invoke_model_with_response_stream"] = [streamed["ResponseMetadata"], list(streamed["body"])]
    got["validation"] = _error(lambda: client.converse(modelId="invalid", messages=MESSAGES))
    got["throttled"] = _error(lambda: client.converse(modelId="throttled", messages=MESSAGES))
    return got


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str, dict[str, Any]]]:
    path = tmp_path_factory.mktemp("bedrock") / "bedrock.yaml"
    with serve(bedrock_app([])) as base:
        with VirtualClock(), llmcassette.use_cassette(path, record_mode="once"):
            random.seed(7)
            live = _scenario(bedrock_client(base))
        yield path, base, live


@contextlib.contextmanager
def lower_door() -> Iterator[None]:
    """While a cassette is active: no fast path in botocore's ``send``, so the pool's door answers."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(botocore_session, "_replay", lambda session, cassette, request: None)
        yield


def _attempts(cassette: Cassette) -> list[tuple[Any, ...]]:
    return [
        (
            a.method,
            a.url,
            [h for h in a.headers.items() if h[0] not in SIGNED_PER_CALL],
            a.body,
            list(a.chunks),
            a.status,
            a.interaction,
            a.error,
            a.faults,
        )
        for a in cassette.attempts
    ]


def _sent_below(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    # Every request the original `send` carries (the fast path never asks for a manager).
    called: list[str] = []
    original = botocore.httpsession.URLLib3Session._get_connection_manager

    def counted(self: Any, url: str, proxy_url: Any = None) -> Any:
        called.append(url)
        return original(self, url, proxy_url)

    monkeypatch.setattr(botocore.httpsession.URLLib3Session, "_get_connection_manager", counted)
    return called


def _replay(path: Path, base: str, *, fast: bool) -> tuple[dict[str, Any], list[Any], list[float], int]:
    with pytest.MonkeyPatch.context() as patch:
        below = _sent_below(patch)
        with VirtualClock() as clock, llmcassette.use_cassette(path) as cassette:
            random.seed(7)  # botocore's backoff draws its jitter from `random`
            with contextlib.nullcontext() if fast else lower_door():
                got = _scenario(bedrock_client(base))
        return got, _attempts(cassette), list(clock.sleeps), len(below)


def test_the_fast_path_answers_as_the_door_below_does(
    recorded: tuple[Path, str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, base, live = recorded
    forbid_sockets(monkeypatch)
    fast, fast_attempts, fast_sleeps, fast_below = _replay(path, base, fast=True)
    slow, slow_attempts, slow_sleeps, slow_below = _replay(path, base, fast=False)
    assert fast_below == 0  # every request answered in `send`
    assert slow_below == len(slow_attempts) == len(fast_attempts) == 14
    assert fast == slow
    assert fast_attempts == slow_attempts
    assert fast_sleeps == slow_sleeps and len(fast_sleeps) == 3
    # and what the client got live (but the date and request ids the server sends)
    assert fast["throttled"]["retries"] == 3 and fast["throttled"]["status"] == 429
    assert fast["validation"]["error"]["Code"] == "ValidationException"
    assert fast["converse_stream"][1] == live["converse_stream"][1]
    assert fast["frames"] == live["frames"] and len(fast["frames"]) == 6
    size = len(json.dumps(INVOKE_ANSWER))
    assert json.loads(b"".join(fast["invoke_model"][1:3] + fast["invoke_model"][4:5])) == INVOKE_ANSWER
    assert fast["invoke_model"][5:] == [b"", size, size, True, True, None]
    assert fast["invoke_model, closed"][1:] == [False, True, b"", b""]
    chunked = fast["invoke_model, chunked"]
    assert json.loads(chunked[1] + b"".join(chunked[3])) == INVOKE_ANSWER
    assert [chunked[2], *chunked[4:]] == [False, True, size]
    assert "content-length" not in chunked[0]["ResponseMetadata"]["HTTPHeaders"]
    pieces, told = fast["invoke_model, raw"]
    assert {len(p) for p in pieces[:-1]} == {50} and told == len(json.dumps(INVOKE_ANSWER))
    assert fast["invoke_model_with_response_stream"][1] == live["invoke_model_with_response_stream"][1]


def _write(
    path: Path, *, status: int = 200, headers: dict[str, list[str]] | None = None, pieces: bool = False
) -> Path:
    answer = {"output": {"message": {"role": "assistant", "content": [{"text": "Hi."}]}}}
    body: dict[str, Any] = {"parsed_body": answer}
    if pieces:  # a body with its length that arrived in two reads
        text = json.dumps(answer)
        body = {"body": {"string": text}, "stream": {"chunks": [5, len(text) - 5]}}
        headers = {"content-length": [str(len(text))]}
    interaction = {
        "request": {
            "method": "POST",
            "uri": f"https://bedrock-runtime.us-east-1.amazonaws.com/model/{MODEL}/converse",
            "parsed_body": {"messages": MESSAGES},
        },
        "response": {
            "status": {"code": status, "message": "OK"},
            "headers": {"content-type": ["application/json"], **(headers or {})},
            **body,
        },
    }
    document = llmcassette.CassetteDocument.model_validate({"interactions": [interaction] * 2})
    llmcassette.save_cassette(path, document)
    return path


def _both_ways(
    path: Path, call: Callable[[Any], Any], *, miss: bool = False, **options: Any
) -> list[tuple[Any, list[Any], int]]:
    """What ``call`` got, the attempt log and the requests the original ``send`` carried, each way."""
    got = []
    for fast in (True, False):
        with pytest.MonkeyPatch.context() as patch:
            below = _sent_below(patch)
            with llmcassette.use_cassette(path, **options) as cassette:
                expected = cassette.expect_miss() if miss else contextlib.nullcontext()
                with expected, contextlib.nullcontext() if fast else lower_door():
                    try:
                        answer = call(bedrock_client(None))
                    except Exception as exc:  # what each way raises
                        answer = (type(exc), str(exc))
            got.append((answer, _attempts(cassette), len(below)))
    return got


def _converse(client: Any) -> Any:
    return client.converse(modelId=MODEL, messages=MESSAGES)


def test_a_plain_replay_at_a_real_host_takes_the_fast_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    forbid_sockets(monkeypatch)
    fast, slow = _both_ways(_write(tmp_path / "c.yaml"), _converse)
    assert fast[2] == 0 and slow[2] == 1
    assert fast[:2] == slow[:2]


@pytest.mark.parametrize(
    ("case", "cassette", "options", "client", "env"),
    [
        pytest.param("miss", {}, {"record_mode": "none"}, {}, {}, id="a miss"),
        pytest.param("fault", {}, {"faults": ["rate_limit:times=1"]}, {}, {}, id="a fault"),
        pytest.param("pace", {}, {"pace": 1.0}, {}, {}, id="pace"),
        pytest.param("proxy", {}, {}, {"proxies": {"https": "http://127.0.0.1:9"}}, {}, id="a proxy"),
        pytest.param(
            "redirect", {"status": 307, "headers": {"location": ["/x"]}}, {}, {}, {}, id="a redirect"
        ),
        pytest.param("header", {"headers": {"x-note": ["caf\u00e9"]}}, {}, {}, {}, id="a latin-1 header"),
        pytest.param("spaced", {"headers": {"x-note": [" padded "]}}, {}, {}, {}, id="a spaced header"),
        pytest.param("pieces", {"pieces": True}, {}, {}, {}, id="a sized body in pieces"),
        pytest.param(
            "env", {}, {}, {}, {"BOTO_EXPERIMENTAL__ADD_PROXY_HOST_HEADER": "true"}, id="proxy host header"
        ),
    ],
)
def test_what_it_cannot_vouch_for_goes_to_the_door_below(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
    cassette: dict[str, Any],
    options: dict[str, Any],
    client: dict[str, Any],
    env: dict[str, str],
) -> None:
    forbid_sockets(monkeypatch)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    path = _write(tmp_path / "c.yaml", **cassette)
    if case == "miss":
        path.write_text("interactions: []\nversion: 1\n", encoding="utf-8")

    def call(default: Any) -> Any:
        made = bedrock_client(None, **client) if client else default
        return _converse(made)

    fast, slow = _both_ways(path, call, miss=case == "miss", **options)
    assert fast[2] == slow[2] >= 1  # the original `send` carried it both ways
    assert fast[:2] == slow[:2]


def test_a_file_body_goes_to_the_door_below(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # (botocore hands urllib3 the file itself, which the pool's door reads as it sends it)
    forbid_sockets(monkeypatch)
    path = tmp_path / "c.yaml"
    interaction = {
        "request": {
            "method": "POST",
            "uri": f"https://bedrock-runtime.us-east-1.amazonaws.com/model/{MODEL}/invoke",
            "body": {"string": '{"max_tokens": 5}'},
        },
        "response": {
            "status": {"code": 200, "message": "OK"},
            "headers": {"content-type": ["application/json"]},
            "parsed_body": INVOKE_ANSWER,
        },
    }
    document = llmcassette.CassetteDocument.model_validate({"interactions": [interaction]})
    llmcassette.save_cassette(path, document)

    def call(client: Any) -> Any:
        answer = client.invoke_model(modelId=MODEL, body=io.BytesIO(b'{"max_tokens": 5}'))
        return json.loads(answer["body"].read())

    fast, slow = _both_ways(path, call)
    assert fast[2] == slow[2] == 1
    assert fast[:2] == slow[:2]
    assert fast[0] == INVOKE_ANSWER


@pytest.mark.parametrize("record_mode", ["once", "all"])
def test_recording_goes_to_the_door_below(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, record_mode: str
) -> None:
    path = tmp_path / "recorded.yaml"
    with serve(bedrock_app([])) as base:
        if record_mode == "all":  # (a cassette that could replay it)
            with llmcassette.use_cassette(path, record_mode="once"):
                _converse(bedrock_client(base))
        below = _sent_below(monkeypatch)
        with llmcassette.use_cassette(path, record_mode=record_mode) as cassette:
            answer = _converse(bedrock_client(base))
    assert len(below) == 1
    assert answer["output"]["message"]["content"][0]["text"] == "Hi there."
    assert len(llmcassette.load_cassette(path).interactions) == (1 if record_mode == "once" else 2)
    assert [a.status for a in cassette.attempts] == [200]


def test_https_that_would_not_verify_goes_to_the_door_below(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    forbid_sockets(monkeypatch)
    path = _write(tmp_path / "c.yaml")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fast, slow = _both_ways(path, lambda _: _converse(_client_unverified()))
    assert fast[2] == slow[2] == 1
    assert fast[:2] == slow[:2]
    assert sum(issubclass(w.category, urllib3.exceptions.InsecureRequestWarning) for w in caught) == 2


def _client_unverified() -> Any:
    return boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        verify=False,
    )


def test_send_is_patched_only_while_a_cassette_is_active(tmp_path: Path) -> None:
    before = botocore.httpsession.URLLib3Session.send
    with llmcassette.use_cassette(tmp_path / "empty.yaml"):
        assert botocore.httpsession.URLLib3Session.send is not before
    assert botocore.httpsession.URLLib3Session.send is before


def test_under_vcrpy_patching_botocore_the_request_goes_to_vcrpy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # vcrpy's boto3 patcher swaps botocore's pools' connection classes for its own, which the
    # fast path cannot vouch for: vcrpy's connection gets the request (and, with an empty
    # cassette it may not record to, refuses it), as without the fast path.
    vcr = pytest.importorskip("vcr")
    forbid_sockets(monkeypatch)
    path = _write(tmp_path / "c.yaml")
    below = _sent_below(monkeypatch)
    with VirtualClock(), llmcassette.use_cassette(path) as cassette:
        with vcr.VCR(record_mode="none").use_cassette(str(tmp_path / "vcr.yaml")):
            # (vcrpy's refusal, in its wording since 9.x and in the older one)
            refused = r"Can't play back this request|Can't overwrite existing cassette"
            with pytest.raises(Exception, match=refused):
                _converse(bedrock_client(None))
    assert len(below) == 4  # (botocore retries what its HTTP client raised)
    assert cassette.attempts == []


def test_the_pools_stay_in_the_order_the_manager_keeps_them_below(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The manager keeps its ten most recently used pools and closes the one it lets go of. The
    # fast path remembered each origin's pool and took it without asking the manager, which
    # then took it for unused: it let go of (and closed) a pool the door below had just used,
    # and kept one it had not, where a connection may be open.
    hosts = [f"h{i}.example.com" for i in range(11)]
    interactions = [
        {
            "request": {"method": "GET", "uri": f"http://{host}/x", "headers": {}, "body": ""},
            "response": {"status": {"code": 200, "message": "OK"}, "headers": {}, "body": {"string": "{}"}},
        }
        for host in hosts
    ]
    path = tmp_path / "hosts.yaml"
    document = llmcassette.CassetteDocument.model_validate({"interactions": interactions})
    llmcassette.save_cassette(path, document)
    forbid_sockets(monkeypatch)

    def calls() -> tuple[list[Any], list[str], list[Any]]:
        session = botocore.httpsession.URLLib3Session()
        got = []
        for host in [*hosts[:10], hosts[0], hosts[10], hosts[0]]:
            request = botocore.awsrequest.AWSRequest(method="GET", url=f"http://{host}/x").prepare()
            got.append(session.send(request).content)
        manager = session._manager
        pools = list(manager.pools._container.values())
        return got, [pool.host for pool in pools], [pool.num_requests for pool in pools]

    seen = []
    for fast in (True, False):
        with llmcassette.use_cassette(path, allow_playback_repeats=True) as cassette:
            with contextlib.nullcontext() if fast else lower_door():
                seen.append((calls(), _attempts(cassette)))
    (_, below_hosts, below_counts), _ = seen[1]
    assert below_hosts == [*hosts[2:10], hosts[10], hosts[0]]  # h1 let go of, h0 used last
    assert below_counts == [1] * 8 + [1, 3]
    assert seen[0] == seen[1]


@pytest.mark.parametrize("retries", ["standard", "adaptive", "legacy"])
def test_a_request_the_cassette_cannot_answer_raises_the_miss_once_without_retries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, retries: str
) -> None:
    # botocore's `send` wrapped the miss in its `HTTPClientError`, which its standard and
    # adaptive retry modes take for a transient failure: the miss was asked three more times,
    # with backoff sleeps, and the client got "An HTTP Client raised an unhandled exception".
    forbid_sockets(monkeypatch)
    path = tmp_path / "empty.yaml"
    llmcassette.save_cassette(path, llmcassette.CassetteDocument.model_validate({"interactions": []}))
    client = boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        config=botocore.config.Config(retries={"mode": retries}),
    )
    with pytest.raises(llmcassette.NoMatchingInteraction, match="^llmcassette: no recorded interaction"):
        with VirtualClock() as clock, llmcassette.use_cassette(path) as cassette:
            with pytest.raises(llmcassette.NoMatchingInteraction) as raised:
                client.converse(modelId=MODEL, messages=[{"role": "user", "content": [{"text": "Hi"}]}])
    assert str(path) in str(raised.value) and "/converse" in str(raised.value)
    assert [attempt.error for attempt in cassette.attempts] == ["no matching interaction"]
    assert clock.sleeps == []
