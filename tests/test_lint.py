"""
Linting cassettes (``llmcassette._lint``): each rule on hand-made cassettes that break it and on
look-alikes that must pass, then the whole real corpus, where every finding is checked against
what the corpus README says the files hold.

The keys below are made up in each provider's shape; none is real.
"""

from __future__ import annotations

import gzip
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings, strategies as st

import llmcassette
from llmcassette._convert import convert_document, import_cassettes
from llmcassette._eventstream import encode_frame
from llmcassette._framing import Framing, detect_framing, split_events
from llmcassette._lint import Finding, LintReport, Rule, lint_bytes, lint_document, lint_paths
from tests.corpus import CORPUS, MISSING_REASON, corpus_files, corpus_path, header, is_gzip, params

OPENAI_KEY = "sk-proj-" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"
GOOGLE_KEY = "AIza" + "SyD" + "k7Hq2Lm9Zp4Rt8Vw1Xy5Bn3Cd6Fg0JhQ"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0ZXN0LXVzZXIifQ.c2lnbmF0dXJlLXZhbHVl"
CHAT_URL = "https://api.openai.com/v1/chat/completions"
CHUNK = 'data: {"choices":[{"delta":{"content":"Hi"},"finish_reason":null}]}\n\n'
DONE = "data: [DONE]\n\n"


def interaction(
    *,
    uri: str = CHAT_URL,
    request_headers: dict[str, list[str]] | None = None,
    request_body: Any = '{"stream": true}',
    status: int = 200,
    headers: dict[str, list[str]] | None = None,
    body: str | bytes = '{"ok": true}',
    **response: Any,
) -> dict[str, Any]:
    return {
        "request": {"method": "POST", "uri": uri, "headers": request_headers or {}, "body": request_body},
        "response": {
            "status": {"code": status, "message": "OK"},
            "headers": headers if headers is not None else {"Content-Type": ["application/json"]},
            "body": {"string": body},
            **response,
        },
    }


def lint(tmp_path: Path, *interactions: dict[str, Any], ignore: tuple[str, ...] = ()) -> list[Finding]:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "interactions": list(interactions)}))
    return lint_paths([path], ignore=ignore).findings


def only(findings: list[Finding]) -> Finding:
    assert len(findings) == 1, [f.line() for f in findings]
    return findings[0]


# -- the finding ----------------------------------------------------------------------------------


def test_a_finding_is_one_line_and_plain_data() -> None:
    finding = Finding(Path("c.yaml"), Rule.SECRET, "holds a key", "scrub it", 3, "request.uri")
    assert finding.line() == "c.yaml:interaction 3: request.uri: [secret] holds a key (scrub it)"
    whole = Finding(Path("c.yaml"), Rule.SCHEMA, "is not valid YAML", "fix it")
    assert whole.line() == "c.yaml: [schema] is not valid YAML (fix it)"
    assert json.loads(json.dumps(finding.to_dict())) == {
        "path": "c.yaml",
        "interaction": 3,
        "field": "request.uri",
        "rule": "secret",
        "message": "holds a key",
        "hint": "scrub it",
    }


# -- secret -----------------------------------------------------------------------------------------


def test_a_key_in_an_auth_header(tmp_path: Path) -> None:
    finding = only(lint(tmp_path, interaction(request_headers={"Authorization": [f"Bearer {OPENAI_KEY}"]})))
    assert (finding.rule, finding.interaction, finding.field) == (
        Rule.SECRET,
        0,
        "request.headers.Authorization",
    )
    assert finding.message == "holds an openai-key (sk-p…, 40 characters)"
    # The finding must not leak what it found.
    assert OPENAI_KEY not in finding.line() and OPENAI_KEY not in json.dumps(finding.to_dict())
    assert "llmcassette import" in finding.hint


@pytest.mark.parametrize(
    ("name", "value"),
    [
        pytest.param("api-key", "0f1e2d3c4b5a69788796a5b4c3d2e1f0", id="azure-hex"),
        pytest.param("x-api-key", "team-7f3a9c2e51b84d06", id="gateway-token"),
        pytest.param("Authorization", "Basic dXNlcjpwYXNzd29yZDEyMw==", id="basic"),
    ],
)
def test_a_live_looking_credential_header(tmp_path: Path, name: str, value: str) -> None:
    finding = only(lint(tmp_path, interaction(request_headers={name: [value]})))
    assert finding.rule is Rule.SECRET and finding.field == f"request.headers.{name}"
    assert "looks like a live credential" in finding.message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        pytest.param("Authorization", "Bearer REDACTED", id="scrubbed-bearer"),
        pytest.param("x-api-key", "REDACTED", id="scrubbed"),
        pytest.param("x-goog-api-key", "DUMMY_GOOGLE_API_KEY", id="dummy"),
        pytest.param("Authorization", "Bearer sk-test", id="short"),
        pytest.param("api-key", "<your-api-key-1234>", id="template"),
        pytest.param("Authorization", "Bearer ${OPENAI_API_KEY_2}", id="env-reference"),
        pytest.param("Authorization", "Bearer sk-proj-" + "x" * 32, id="repeated-character"),
        pytest.param("api-key", "abcdefghijklmnopqrstuvwxyz", id="no-digit"),
    ],
)
def test_stand_ins_for_credentials_pass(tmp_path: Path, name: str, value: str) -> None:
    assert lint(tmp_path, interaction(request_headers={name: [value]})) == []


def test_a_key_in_the_query(tmp_path: Path) -> None:
    uri = (
        f"https://generativelanguage.googleapis.com/v1beta/models/g:generateContent?alt=sse&key={GOOGLE_KEY}"
    )
    finding = only(lint(tmp_path, interaction(uri=uri)))
    assert (finding.rule, finding.field) == (Rule.SECRET, "request.uri")
    assert "query parameter `key`" in finding.message
    assert lint(tmp_path, interaction(uri=uri.replace(GOOGLE_KEY, "REDACTED"))) == []


def test_credentials_in_the_url(tmp_path: Path) -> None:
    password = "hunter2-correct-horse"
    found = lint(tmp_path, interaction(), interaction(uri=f"http://alice:{password}@gw.example/v1/chat"))
    finding = only(found)
    assert (finding.rule, finding.interaction, finding.field) == (Rule.SECRET, 1, "request.uri")
    assert "password in its userinfo" in finding.message and "'alice'" in finding.message
    assert password not in finding.line()
    token = only(lint(tmp_path, interaction(uri=f"https://{OPENAI_KEY}@gw.example/v1")))
    assert "user name in its userinfo" in token.message and OPENAI_KEY not in token.line()
    # An `@` in the path or the query is not userinfo.
    assert lint(tmp_path, interaction(uri="https://gw.example/v1/users/a@b.c?to=x@y.z")) == []


def test_a_key_shaped_string_in_a_path(tmp_path: Path) -> None:
    finding = only(lint(tmp_path, interaction(uri=f"https://example.com/hook/{OPENAI_KEY}")))
    assert (finding.field, finding.rule) == ("request.uri", Rule.SECRET)
    assert "openai-key" in finding.message


def test_keys_in_bodies(tmp_path: Path) -> None:
    body = json.dumps({"messages": [{"role": "user", "content": f"use {GOOGLE_KEY} and {JWT}"}]})
    sse = f'data: {{"note": "{OPENAI_KEY}"}}\n\n{DONE}'
    findings = lint(
        tmp_path,
        interaction(request_body=body, headers={"Content-Type": ["text/event-stream"]}, body=sse),
    )
    by_field = {f.field: f for f in findings}
    assert set(by_field) == {"request.body", "response.body.string"}
    assert "google-key at byte" in by_field["request.body"].message
    assert "and 1 more key-shaped strings" in by_field["request.body"].message
    assert f"openai-key at byte {sse.index(OPENAI_KEY)} " in by_field["response.body.string"].message


def test_a_key_inside_a_gzip_body(tmp_path: Path) -> None:
    packed = gzip.compress(json.dumps({"key": OPENAI_KEY}).encode())
    headers = {"Content-Type": ["application/json"], "Content-Encoding": ["gzip"]}
    findings = lint(tmp_path, interaction(headers=headers, body=packed))
    assert {f.rule for f in findings} == {Rule.SECRET, Rule.BINARY_TEXT}


def test_a_jwt_in_any_header(tmp_path: Path) -> None:
    finding = only(lint(tmp_path, interaction(headers={"x-session": [JWT]})))
    assert (finding.rule, finding.field) == (Rule.SECRET, "response.headers.x-session")
    assert "jwt" in finding.message


def test_what_llmcassette_writes_passes(tmp_path: Path) -> None:
    # The placeholders scrubbing leaves are not secrets.
    body = json.dumps({"content": "my key is REDACTED-openai-key"})
    headers = {
        "Content-Type": ["application/json"],
        "set-cookie": ["__cf_bm=REDACTED; path=/; HttpOnly"],
        "openai-organization": ["REDACTED"],
    }
    assert (
        lint(
            tmp_path,
            interaction(request_headers={"authorization": ["Bearer REDACTED"]}, headers=headers, body=body),
        )
        == []
    )


# -- unscrubbed-header -------------------------------------------------------------------------------


def test_cookies_and_account_ids_that_kept_their_value(tmp_path: Path) -> None:
    headers = {
        "Set-Cookie": ["__cf_bm=LB2wU.4QF2Qa; path=/"],
        "openai-organization": ["acme-research"],
        "openai-project": ["XXXXXX"],  # another tool's placeholder
        "x-request-id": ["req_123"],
    }
    findings = lint(tmp_path, interaction(request_headers={"cookie": ["a=1"]}, headers=headers))
    assert {(f.rule, f.field) for f in findings} == {
        (Rule.UNSCRUBBED_HEADER, "request.headers.cookie"),
        (Rule.UNSCRUBBED_HEADER, "response.headers.Set-Cookie"),
        (Rule.UNSCRUBBED_HEADER, "response.headers.openai-organization"),
    }
    assert lint(tmp_path, interaction(headers=headers), ignore=("unscrubbed-header",)) == []


# -- schema -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "interaction_index", "field", "message"),
    [
        pytest.param("interactions: [\n", None, None, "is not valid YAML at line", id="yaml-syntax"),
        pytest.param("[1, 2]\n", None, None, "its top level is a list", id="top-level-list"),
        pytest.param(
            "interactions:\n- request: {method: GET, uri: 'http://h/'}\n  response: {status: {code: x}}\n",
            0,
            "response.status.code",
            "Input should be a valid integer",
            id="field",
        ),
    ],
)
def test_what_loading_refuses(
    text: str, interaction_index: int | None, field: str | None, message: str
) -> None:
    finding = only(lint_bytes(text.encode(), Path("c.yaml")))
    assert (finding.rule, finding.interaction, finding.field) == (Rule.SCHEMA, interaction_index, field)
    assert message in finding.message
    assert not finding.message.startswith("llmcassette:") and "c.yaml" not in finding.message


@pytest.mark.parametrize(
    ("stream", "field", "message"),
    [
        pytest.param(
            {"chunks": [2, 2]}, "response.stream.chunks", "add up to 4 bytes but the body has 12", id="sum"
        ),
        pytest.param({"chunks": [14, -2]}, "response.stream.chunks", "negative", id="negative"),
        pytest.param(
            {"chunks": [6, 6], "offsets_ms": [1.0]},
            "response.stream.offsets_ms",
            "1 arrival times for 2",
            id="count",
        ),
        pytest.param({"offsets_ms": [1.0]}, "response.stream.offsets_ms", "for no chunks", id="no-chunks"),
        pytest.param(
            {"chunks": [6, 6], "offsets_ms": [5.0, 2.0]},
            "response.stream.offsets_ms",
            "back in time",
            id="order",
        ),
        pytest.param({"end": "error"}, "response.stream", "has no `error`", id="error-without-detail"),
        pytest.param(
            {"error": {"type": "ReadError"}}, "response.stream", "replay raises", id="error-not-ended"
        ),
    ],
)
def test_stream_records_that_contradict_the_body(
    tmp_path: Path, stream: dict[str, Any], field: str, message: str
) -> None:
    finding = only(lint(tmp_path, interaction(headers={}, body="hello world!", stream=stream)))
    assert (finding.rule, finding.field) == (Rule.SCHEMA, field)
    assert message in finding.message


def test_a_consistent_stream_record_passes(tmp_path: Path) -> None:
    record = {"chunks": [6, 6], "offsets_ms": [1.0, 1.0], "end": "error", "error": {"type": "ReadError"}}
    assert lint(tmp_path, interaction(headers={}, body="hello world!", stream=record)) == []


def test_an_unknown_json_format(tmp_path: Path) -> None:
    data = interaction()
    data["response"] = {"status": {"code": 200}, "parsed_body": {"a": 1}, "json_format": "pretty"}
    finding = only(lint(tmp_path, data))
    assert (finding.rule, finding.field) == (Rule.SCHEMA, "response.json_format")


# -- binary-text -----------------------------------------------------------------------------------


def test_binary_bodies_that_are_text(tmp_path: Path) -> None:
    sse = (CHUNK + DONE).encode()
    findings = lint(
        tmp_path,
        interaction(headers={"Content-Type": ["text/event-stream"]}, body=sse),
        interaction(
            headers={"Content-Type": ["application/json"], "Content-Encoding": ["gzip"]},
            body=gzip.compress(b'{"ok": true}'),
        ),
        interaction(request_body=b'{"binary": "request"}'),
    )
    assert [(f.rule, f.interaction, f.field) for f in findings] == [
        (Rule.BINARY_TEXT, 0, "response.body.string"),
        (Rule.BINARY_TEXT, 1, "response.body.string"),
        (Rule.BINARY_TEXT, 2, "request.body"),
    ]
    assert "UTF-8 text" in findings[0].message and "gzip-compressed" in findings[1].message


EVENTSTREAM = {"Content-Type": ["application/vnd.amazon.eventstream"]}
FRAMES = encode_frame({":event-type": "messageStart"}, b'{"role":"assistant"}') + encode_frame(
    {":event-type": "messageStop"}, b'{"stopReason":"end_turn"}'
)


def test_eventstream_bodies_kept_as_binary_are_found_and_frames_pass(tmp_path: Path) -> None:
    [finding] = lint(tmp_path, interaction(headers=EVENTSTREAM, body=FRAMES))
    assert (finding.rule, finding.field) == (Rule.BINARY_TEXT, "response.body.string")
    assert "2 AWS eventstream frames" in finding.message and "stores them as frames" in finding.hint
    # Once imported, they are frames, and nothing is left to find.
    target = tmp_path / "imported.yaml"
    import_cassettes(tmp_path / "c.yaml", target)
    assert "eventstream:" in target.read_text()
    assert lint_paths([target]).findings == []


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        pytest.param({"Content-Type": ["application/octet-stream"]}, b"\x00\x01\x02\xff", id="raw-bytes"),
        # Without Content-Encoding the client reads gzip bytes as they are: import would not change them.
        pytest.param({"Content-Type": ["application/octet-stream"]}, gzip.compress(b"text"), id="bare-gzip"),
        pytest.param({"Content-Encoding": ["gzip"]}, gzip.compress(b"\x00\x01\x02"), id="gzip-of-binary"),
        # Frames that cannot be stored readably (here: a bad checksum) stay bytes.
        pytest.param(EVENTSTREAM, FRAMES[:-1] + bytes([FRAMES[-1] ^ 1]), id="eventstream-bad-checksum"),
    ],
)
def test_binary_bodies_that_are_binary_pass(
    tmp_path: Path, headers: dict[str, list[str]], body: bytes
) -> None:
    assert lint(tmp_path, interaction(headers=headers, body=body)) == []


# -- unterminated-stream --------------------------------------------------------------------------


SSE = {"Content-Type": ["text/event-stream"]}
ANTHROPIC_URL = "https://api.anthropic.com/v1/messages"
GEMINI_URL = "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:streamGenerateContent"
OLLAMA_URL = "http://127.0.0.1:11434/api/chat"
START = 'event: message_start\ndata: {"type":"message_start","message":{}}\n\n'
STOP = 'event: message_stop\ndata: {"type":"message_stop"}\n\n'
GEMINI_PART = 'data: {"candidates": [{"content": {"parts": [{"text": "Hi"}]}}]}\r\n\r\n'
GEMINI_LAST = (
    'data: {"candidates": [{"content": {"parts": [{"text": "!"}]}, "finishReason": "STOP"}]}\r\n\r\n'
)
OLLAMA_LINE = '{"message": {"role": "assistant", "content": "Hi"}, "done": false}\n'
OLLAMA_DONE = '{"message": {"role": "assistant", "content": ""}, "done": true, "done_reason": "stop"}\n'
NDJSON = {"Content-Type": ["application/x-ndjson"]}


@pytest.mark.parametrize(
    ("uri", "headers", "cut", "whole", "message"),
    [
        pytest.param(
            CHAT_URL,
            SSE,
            CHUNK * 3,
            CHUNK * 3 + DONE,
            "openai stream ends after 3 events without `data: [DONE]`",
            id="openai",
        ),
        pytest.param(
            ANTHROPIC_URL,
            SSE,
            START,
            START + STOP,
            "anthropic stream ends after 1 event without the event",
            id="anthropic",
        ),
        pytest.param(
            GEMINI_URL + "?alt=sse",
            SSE,
            GEMINI_PART,
            GEMINI_PART + GEMINI_LAST,
            "without a finish reason",
            id="gemini",
        ),
        pytest.param(
            GEMINI_URL,
            {"Content-Type": ["application/json"]},
            "[" + GEMINI_PART[6:-4] + ",\r\n" + GEMINI_LAST[6:-4],
            "[" + GEMINI_PART[6:-4] + ",\r\n" + GEMINI_LAST[6:-4] + "\n]",
            "JSON array is not closed",
            id="gemini-array",
        ),
        pytest.param(
            OLLAMA_URL,
            NDJSON,
            OLLAMA_LINE * 2,
            OLLAMA_LINE * 2 + OLLAMA_DONE,
            "ollama stream ends after 2",
            id="ollama",
        ),
        pytest.param(
            CHAT_URL,
            SSE,
            ": keep-alive\n\n",
            ": keep-alive\n\n" + DONE,
            "stream has no events",
            id="only-comments",
        ),
    ],
)
def test_streams_cut_before_their_end(
    tmp_path: Path, uri: str, headers: dict[str, list[str]], cut: str, whole: str, message: str
) -> None:
    finding = only(lint(tmp_path, interaction(uri=uri, headers=headers, body=cut)))
    assert (finding.rule, finding.field) == (Rule.UNTERMINATED_STREAM, "response.body.string")
    assert message in finding.message
    assert lint(tmp_path, interaction(uri=uri, headers=headers, body=whole)) == []


@pytest.mark.parametrize(
    ("changes", "body"),
    [
        pytest.param({"stream": {"end": "closed"}}, CHUNK, id="marked-closed"),
        pytest.param({"stream": {"end": "error", "error": {"type": "ReadError"}}}, CHUNK, id="marked-error"),
        pytest.param({"status": {"code": 500}}, CHUNK, id="error-status"),
        pytest.param(
            {},
            CHUNK + 'event: error\ndata: {"error": {"message": "Tool call failed"}}\n\n',
            id="in-band-error",
        ),
    ],
)
def test_streams_that_say_why_they_stop_pass(tmp_path: Path, changes: dict[str, Any], body: str) -> None:
    data = interaction(headers=SSE, body=body)
    data["response"].update(changes)
    assert lint(tmp_path, data) == []


def test_an_unknown_upstream_has_no_known_end(tmp_path: Path) -> None:
    assert lint(tmp_path, interaction(uri="https://example.com/events", headers=SSE, body=CHUNK)) == []


# -- paths ----------------------------------------------------------------------------------------


def test_folders_are_searched_and_files_read_once(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    bad = tmp_path / "sub" / "bad.yml"
    bad.write_text("interactions: [1]\n")
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"interactions": []}))
    (tmp_path / "ci.yaml").write_text("jobs: {}\n")
    report = lint_paths([tmp_path, bad, tmp_path / "sub"])
    assert sorted(p.name for p in report.checked) == ["bad.yml", "good.json"]
    assert [p.name for p in report.skipped] == ["ci.yaml"]
    assert [(f.path, f.rule) for f in report.findings] == [(bad, Rule.SCHEMA)]
    # A file named explicitly is checked even when it does not look like a cassette.
    named = lint_paths([tmp_path / "ci.yaml"])
    assert [f.rule for f in named.findings] == [Rule.SCHEMA] and named.skipped == []


# -- the real corpus ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timed:
    report: LintReport
    elapsed_s: float


@pytest.fixture(scope="module")
def corpus_lint() -> Timed:
    """The whole corpus linted once for the module, with how long it took."""
    if CORPUS is None:
        pytest.skip(MISSING_REASON)
    started = time.perf_counter()
    report = lint_paths([CORPUS])
    return Timed(report, time.perf_counter() - started)


def test_the_corpus_lints_fast_and_every_finding_is_true(corpus_lint: Timed) -> None:
    report, elapsed_s = corpus_lint.report, corpus_lint.elapsed_s
    assert CORPUS is not None
    assert sorted(p.relative_to(CORPUS).as_posix() for p in report.checked) == corpus_files()
    assert [p.name for p in report.skipped] == ["MANIFEST.json"]
    # A generous bound (it takes about 0.1 s): lint must stay usable in a pre-commit hook.
    assert elapsed_s < 5.0
    # The corpus README: no live credentials, no cut streams, every file loads.
    assert {f.rule for f in report.findings} == {Rule.BINARY_TEXT, Rule.UNSCRUBBED_HEADER}
    # binary-text: exactly the gzip JSON bodies and the eventstream bodies, which llmcassette
    # stores as readable frames.
    binary = {
        (f.path.relative_to(CORPUS).as_posix(), f.interaction)
        for f in report.findings
        if f.rule is Rule.BINARY_TEXT
    }
    gzipped = {
        (rel, index)
        for rel in corpus_files()
        for index, i in enumerate(llmcassette.load_cassette(corpus_path(rel)).interactions)
        if is_gzip(i.response.headers) or "eventstream" in (header(i.response.headers, "content-type") or "")
    }
    assert binary == gzipped and len(binary) == 23 + 4
    # unscrubbed-header: each names a header the scrubber clears, whose recorded value is not a placeholder.
    for finding in report.findings:
        if finding.rule is not Rule.UNSCRUBBED_HEADER:
            continue
        assert finding.field is not None and finding.interaction is not None
        side, _, name = finding.field.split(".", 2)
        document = llmcassette.load_cassette(finding.path)
        message = getattr(document.interactions[finding.interaction], side)
        value = header(message.headers, name)
        assert name.lower() in (
            "cookie",
            "set-cookie",
            "openai-organization",
            "openai-project",
            "anthropic-organization-id",
        )
        assert value is not None and "REDACTED" not in value and set(value) != {"X"}


def test_corpus_placeholders_are_not_flagged(corpus_lint: Timed) -> None:
    report = corpus_lint.report
    fields = {(f.path.name, f.interaction, f.field) for f in report.findings}
    # pydantic-ai replaced this organisation with XXXXXX, and kept the project id.
    background = "test_background_mode_streaming_starting_after_vcr.yaml"
    assert (background, 0, "response.headers.openai-organization") not in fields
    assert (background, 0, "response.headers.openai-project") in fields
    # openllmetry's Gemini key header reads DUMMY_GOOGLE_API_KEY.
    assert not any(f.path.name == "test_client_spans.yaml" and f.rule is Rule.SECRET for f in report.findings)


def _streams(rel: str) -> list[tuple[int, bytes, Framing]]:
    """The 2xx streamed responses of a corpus file, decoded, with their framing."""
    path = corpus_path(rel)
    document, _ = convert_document(llmcassette.load_cassette(path), path=path)
    found: list[tuple[int, bytes, Framing]] = []
    for index, item in enumerate(document.interactions):
        body = item.response.content
        framing = detect_framing(header(item.response.headers, "content-type"), body, url=item.request.uri)
        if framing is not Framing.NONE and item.response.status.code == 200:
            found.append((index, body, framing))
    return found


STREAM_FILES = [rel for rel in corpus_files() if _streams(rel)]


@pytest.mark.parametrize("rel", params(STREAM_FILES))
def test_every_corpus_stream_cut_in_half_is_flagged(rel: str, tmp_path: Path) -> None:
    path = corpus_path(rel)
    document, _ = convert_document(llmcassette.load_cassette(path), path=path)
    assert not [f for f in lint_paths([path]).findings if f.rule is Rule.UNTERMINATED_STREAM]
    for index, body, framing in _streams(rel):
        events = split_events(body, framing)
        cut = b"".join(events[: len(events) // 2])
        item = document.interactions[index]
        one = {
            "interactions": [
                {
                    "request": {
                        "method": item.request.method,
                        "uri": item.request.uri,
                        "body": item.request.content,
                    },
                    "response": {
                        "status": {"code": 200},
                        "headers": item.response.headers,
                        "body": {"string": cut},
                    },
                }
            ]
        }
        target = tmp_path / f"cut-{index}.yaml"
        target.write_text(yaml.safe_dump(one))
        finding = only(lint_paths([target], ignore=("binary-text", "unscrubbed-header")).findings)
        assert (finding.rule, finding.interaction) == (Rule.UNTERMINATED_STREAM, 0), finding.line()


def test_a_url_that_does_not_parse(tmp_path: Path) -> None:
    finding = only(
        lint(tmp_path, interaction(uri="http://[::1/v1/chat/completions", headers=SSE, body=CHUNK))
    )
    assert (finding.rule, finding.field) == (Rule.SCHEMA, "request.uri")
    assert "is not a URL" in finding.message


_URIS = [
    CHAT_URL,
    ANTHROPIC_URL,
    GEMINI_URL,
    GEMINI_URL + "?alt=sse",
    OLLAMA_URL,
    "*",
    "https://example.com/x",
]
_TYPES = [
    "text/event-stream",
    "application/x-ndjson",
    "application/json",
    "application/vnd.amazon.eventstream",
    None,
]


@settings(max_examples=150, deadline=None)
@given(
    uri=st.sampled_from(_URIS),
    content_type=st.sampled_from(_TYPES),
    gzip_it=st.booleans(),
    body=st.one_of(
        st.binary(max_size=80), st.text(max_size=80), st.sampled_from([CHUNK + DONE, START, GEMINI_PART])
    ),
    status=st.sampled_from([200, 204, 429, 500]),
    chunks=st.one_of(st.none(), st.lists(st.integers(-2, 40), max_size=4)),
    end=st.sampled_from(["complete", "error", "closed"]),
)
def test_lint_never_crashes(
    uri: str,
    content_type: str | None,
    gzip_it: bool,
    body: str | bytes,
    status: int,
    chunks: list[int] | None,
    end: str,
) -> None:
    headers: dict[str, list[str]] = {"Content-Type": [content_type]} if content_type else {}
    if gzip_it:
        body = gzip.compress(body.encode() if isinstance(body, str) else body)
        headers["Content-Encoding"] = ["gzip"]
    data = interaction(
        uri=uri, headers=headers, body=body, status=status, stream={"chunks": chunks, "end": end}
    )
    document = llmcassette.CassetteDocument.model_validate({"interactions": [data]})
    for finding in lint_document(document, Path("c.yaml")):
        assert finding.rule in Rule and finding.interaction == 0
        assert finding.message and finding.hint and "\n" not in finding.line()
