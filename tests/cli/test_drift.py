"""
`llmcassette drift` end to end: cassettes recorded from a local upstream, the upstream changes its
wire format, and drift re-sends every request, reports each change per provider and kind, writes
the Markdown, JUnit and JSON reports, and exits as diff(1) does. Credentials come from the
environment, reach the upstream, and never the disk.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

import httpx
import pytest
import yaml
from click.testing import CliRunner, Result

import llmcassette
from llmcassette.cli import cli
from tests.drift.upstream import Upstream
from tests.servers import serve

ORIGINAL_KEY = "sk-original-key-000000000000000000000000"
KEYS = {
    "OPENAI_API_KEY": "sk-drift-openai-1111111111111111111111",
    "ANTHROPIC_API_KEY": "sk-ant-drift-2222222222222222222222",
    "GEMINI_API_KEY": "AIzaDrift3333333333333333333333333333",
    "GATEWAY_TOKEN": "gw-drift-4444444444444444444444444444",
}


def _record(base: str, folder: Path) -> None:
    calls: dict[str, list[tuple[str, dict[str, str], dict[str, object]]]] = {
        "chat.yaml": [
            (
                "/v1/chat/completions",
                {"authorization": f"Bearer {ORIGINAL_KEY}"},
                {"model": "m", "max_tokens": 1000, "messages": [{"role": "user", "content": "hi"}]},
            ),
            (
                "/v1/chat/completions",
                {"authorization": f"Bearer {ORIGINAL_KEY}"},
                {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
            ),
        ],
        "responses.yaml": [
            (
                "/v1/responses",
                {"authorization": f"Bearer {ORIGINAL_KEY}"},
                {"model": "m", "input": "hi", "stream": True, "max_output_tokens": 50},
            ),
        ],
        "anthropic.yaml": [
            (
                "/v1/messages",
                {"x-api-key": ORIGINAL_KEY},
                {
                    "model": "claude",
                    "max_tokens": 4096,
                    "stream": True,
                    "messages": [{"role": "user", "content": "hi"}],
                },
            ),
            (
                "/v1/messages",
                {"x-api-key": ORIGINAL_KEY},
                {"model": "no-such-model", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]},
            ),
        ],
        "google/gemini.yaml": [
            (
                "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
                {"x-goog-api-key": ORIGINAL_KEY},
                {"contents": [{"parts": [{"text": "hi"}]}], "generationConfig": {"maxOutputTokens": 2048}},
            ),
        ],
        "ollama.yaml": [
            ("/api/chat", {}, {"model": "llama", "messages": [{"role": "user", "content": "hi"}]}),
        ],
        "stateful.yaml": [
            (
                "/v1/responses",
                {"authorization": f"Bearer {ORIGINAL_KEY}"},
                {"model": "m", "input": "and then?", "previous_response_id": "resp_1", "stream": True},
            ),
        ],
    }
    with httpx.Client(base_url=base) as client:
        for name, requests in calls.items():
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            with llmcassette.use_cassette(path, record_mode="all"):
                for url, headers, body in requests:
                    with client.stream("POST", url, headers=headers, json=body) as response:
                        response.read()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Upstream, str, Path]]:
    upstream = Upstream()
    folder = tmp_path_factory.mktemp("recorded") / "cassettes"
    with serve(upstream.app()) as base:
        _record(base, folder)
        yield upstream, base, folder


@pytest.fixture
def setup(
    recorded: tuple[Upstream, str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Upstream, Path]]:
    upstream, base, folder = recorded
    monkeypatch.chdir(tmp_path)
    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)
    for name in ("GOOGLE_API_KEY", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    shutil.copytree(folder, tmp_path / "cassettes")
    upstream.version, upstream.seen[:], upstream.busy, upstream.hold_s = 1, [], 0, 0.0
    upstream.max_in_flight = 0
    yield upstream, tmp_path
    upstream.version = 1


def drift(*args: str) -> Result:
    return CliRunner().invoke(cli, ["drift", "--bearer-env", "GATEWAY_TOKEN", *args], catch_exceptions=False)


def _report(root: Path) -> dict[str, object]:
    return json.loads((root / "llmcassette-drift" / "report.json").read_text())


def test_an_unchanged_upstream_exits_0_and_records_fresh_copies(setup: tuple[Upstream, Path]) -> None:
    upstream, root = setup
    result = drift("cassettes")
    assert result.exit_code == 0, result.output
    report = _report(root)
    assert report["counts"] == {"same": 7, "changed": 0, "skipped": 1, "failed": 0, "planned": 0}
    # Every sendable request reached the upstream once; the stateful one did not.
    assert len(upstream.seen) == 7
    fresh = root / "llmcassette-drift" / "cassettes" / "chat.yaml"
    data = yaml.safe_load(fresh.read_text())
    stream = data["interactions"][1]["response"]["stream"]
    assert len(stream["chunks"]) >= 2 and len(stream["offsets_ms"]) == len(stream["chunks"])
    # The fresh copy pairs with the original by relative path, and has the same shape.
    same = CliRunner().invoke(cli, ["diff", "cassettes", "llmcassette-drift/cassettes"])
    assert same.exit_code == 0, same.output


def test_a_changed_upstream_is_reported_per_provider_and_kind(setup: tuple[Upstream, Path]) -> None:
    upstream, root = setup
    upstream.version = 2
    result = drift("cassettes")
    assert result.exit_code == 1, result.output
    report = _report(root)
    lines = {
        (item["provider"], change["line"])  # type: ignore[index]
        for item in report["interactions"]  # type: ignore[attr-defined]
        for change in item["changes"]
    }
    expected = {
        (
            "openai-compatible",
            "+ header x-ratelimit-remaining appeared in interaction 0 (POST /v1/chat/completions)",
        ),
        (
            "openai-compatible",
            "- header x-ratelimit-remaining-requests vanished in interaction 0 (POST /v1/chat/completions)",
        ),
        (
            "openai-responses",
            "+ event type 'response.output_text.annotation.added' appeared in interaction 0 "
            "(POST /v1/responses)",
        ),
        ("anthropic", "+ event type 'content_block_signal' appeared in interaction 0 (POST /v1/messages)"),
        ("anthropic", "+ response field request_id (str) appeared in interaction 1 (POST /v1/messages)"),
        ("ollama", "+ field thinking (str) appeared in '(untyped)' events of interaction 0 (POST /api/chat)"),
        (
            "openai-compatible",
            "+ field obfuscation (str) appeared in 'chat.completion.chunk' events of interaction 1 "
            "(POST /v1/chat/completions)",
        ),
        ("openai-compatible", "- event type '[DONE]' vanished in interaction 1 (POST /v1/chat/completions)"),
    }
    missing = expected - lines
    assert not missing, "\n".join(map(str, sorted(lines)))
    kinds = report["by_change_kind"]
    assert {"header", "event-type", "response-field", "event-field", "last-event"} <= set(kinds)  # type: ignore[arg-type]
    assert set(report["by_provider"]) == {  # type: ignore[arg-type]
        "anthropic",
        "gemini",
        "ollama",
        "openai-compatible",
        "openai-responses",
    }
    gemini = [i for i in report["interactions"] if i["provider"] == "gemini"]  # type: ignore[attr-defined,index]
    assert any("responseId" in c["line"] for c in gemini[0]["changes"])
    assert "anthropic: 2 changed\n" in result.stdout
    assert (
        "changes by kind: event-field 3, event-type 3, header 2, last-event 1, response-field 1\n"
        in result.stdout
    )
    markdown = (root / "llmcassette-drift" / "report.md").read_text()
    assert "| anthropic |" in markdown and "## Changed shape" in markdown
    assert "previous_response_id" in markdown  # the skip and its reason
    assert "`max_tokens` 1000 -> 256" in markdown


def test_junit_has_one_case_per_interaction_failing_on_change(setup: tuple[Upstream, Path]) -> None:
    upstream, root = setup
    upstream.version = 2
    drift("cassettes")
    tree = ElementTree.parse(root / "llmcassette-drift" / "junit.xml")
    cases = tree.getroot().findall(".//testcase")
    assert len(cases) == 8
    failed = [c.get("name") for c in cases if c.find("failure") is not None]
    skipped = [c.get("name") for c in cases if c.find("skipped") is not None]
    assert len(failed) == 7 and skipped == ["#0 POST /v1/responses"]
    suites = {s.get("name"): s for s in tree.getroot().findall("testsuite")}
    assert suites[str(Path("cassettes/stateful.yaml"))].get("skipped") == "1"


def test_credentials_reach_the_upstream_and_never_the_disk(setup: tuple[Upstream, Path]) -> None:
    upstream, root = setup
    upstream.version = 2
    drift("cassettes", "--update", "all")
    sent = {
        (
            s.path,
            s.headers.get("authorization") or s.headers.get("x-api-key") or s.headers.get("x-goog-api-key"),
        )
        for s in upstream.seen
    }
    assert ("/v1/chat/completions", f"Bearer {KEYS['GATEWAY_TOKEN']}") in sent
    assert ("/v1/responses", f"Bearer {KEYS['OPENAI_API_KEY']}") in sent
    assert ("/v1/messages", KEYS["ANTHROPIC_API_KEY"]) in sent
    assert any(
        s.path.startswith("/v1beta/") and value == KEYS["GEMINI_API_KEY"]
        for s, value in ((s, s.headers.get("x-goog-api-key")) for s in upstream.seen)
    )
    written = [p for p in root.rglob("*") if p.is_file()]
    assert len(written) > 10
    for path in written:
        text = path.read_bytes()
        for value in KEYS.values():
            assert value.encode() not in text, f"{value} reached {path}"


def test_bounds_hold(setup: tuple[Upstream, Path]) -> None:
    upstream, root = setup
    upstream.hold_s = 0.05
    result = drift("cassettes", "--max-requests", "5", "--concurrency", "2")
    assert result.exit_code == 0, result.output
    assert len(upstream.seen) == 5
    assert upstream.max_in_flight == 2
    report = _report(root)
    over = [i for i in report["interactions"] if "--max-requests" in (i["reason"] or "")]  # type: ignore[attr-defined,index]
    assert len(over) == 2
    sent = [
        s.body.get("max_tokens") for s in upstream.seen if s.path in ("/v1/chat/completions", "/v1/messages")
    ]
    # Above the cap: lowered to it; under the cap, or absent: as recorded.
    assert sorted(sent, key=str) == [10, 256, 256, None]


def test_busy_answers_are_retried_after_the_upstreams_wait(setup: tuple[Upstream, Path]) -> None:
    upstream, root = setup
    upstream.busy = 2
    result = drift("cassettes/chat.yaml", "--concurrency", "1")
    assert result.exit_code == 0, result.output
    first = _report(root)["interactions"][0]  # type: ignore[index]
    assert first["attempts"] == 3 and first["waits_s"] == [0.02, 0.02]


def test_dry_run_sends_nothing_and_lists_the_plan(setup: tuple[Upstream, Path]) -> None:
    upstream, root = setup
    result = drift("--dry-run", "cassettes")
    assert result.exit_code == 0, result.output
    assert upstream.seen == []
    assert "with GATEWAY_TOKEN (capped: max_tokens 1000->256)" in result.stdout
    assert (
        "skip  cassettes/stateful.yaml #0 POST /v1/responses: the request refers to provider-side state"
        in result.stdout
    )
    assert result.stdout.rstrip().endswith("Dry run: 7 requests would be sent, 1 skipped.")
    assert not (root / "llmcassette-drift").exists()


def test_a_missing_key_is_a_skip_with_its_reason(
    setup: tuple[Upstream, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    upstream, root = setup
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    result = drift("cassettes/anthropic.yaml")
    assert result.exit_code == 0, result.output
    assert "no credential: set ANTHROPIC_API_KEY to re-send anthropic calls" in result.stdout
    assert upstream.seen == []


def test_update_writes_only_the_changed_interactions(setup: tuple[Upstream, Path]) -> None:
    upstream, root = setup
    before = (root / "cassettes" / "anthropic.yaml").read_text()
    upstream.version = 2
    result = drift("cassettes", "--update")
    assert result.exit_code == 1
    after = (root / "cassettes" / "anthropic.yaml").read_text()
    assert after != before and "content_block_signal" in after
    assert (root / "cassettes" / "stateful.yaml").read_text() == (
        (root / "llmcassette-drift" / "cassettes" / "stateful.yaml").read_text()
    )
    # Once updated, the originals have the upstream's new shape.
    again = drift("cassettes")
    assert again.exit_code == 0, again.output


def test_an_unreadable_cassette_is_trouble(setup: tuple[Upstream, Path]) -> None:
    _, root = setup
    (root / "cassettes" / "broken.yaml").write_text("interactions: [\n")
    result = drift("cassettes")
    assert result.exit_code == 2
    assert "cannot read cassettes/broken.yaml" in result.stderr


def test_an_upstream_that_never_answers_is_trouble(setup: tuple[Upstream, Path]) -> None:
    _, root = setup
    result = drift("cassettes/ollama.yaml", "--upstream", "http://127.0.0.1:9", "--retries", "0")
    assert result.exit_code == 2
    assert "fail  cassettes/ollama.yaml #0 POST /api/chat: ConnectError" in result.stdout
