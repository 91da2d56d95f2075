"""What a drift run sends for each recorded interaction, or why it skips it (no I/O)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from llmcassette._drift import plan_interaction, token_caps
from llmcassette._models import Interaction

HERE = Path("c.yaml")


def _interaction(uri: str, body: Any = None, headers: dict[str, list[str]] | None = None) -> Interaction:
    request: dict[str, Any] = {"method": "POST", "uri": uri, "headers": headers or {}}
    if body is not None:
        request["parsed_body"] = body
        request["headers"].setdefault("content-type", ["application/json"])
    return Interaction.model_validate({"request": request, "response": {"status": {"code": 200}}})


@pytest.mark.parametrize(
    ("body", "path", "before"),
    [
        ({"max_tokens": 4096}, "max_tokens", 4096),
        ({"max_completion_tokens": 999}, "max_completion_tokens", 999),
        ({"max_output_tokens": 300}, "max_output_tokens", 300),
        ({"generationConfig": {"maxOutputTokens": 8192}}, "generationConfig.maxOutputTokens", 8192),
        ({"generation_config": {"max_output_tokens": 500}}, "generation_config.max_output_tokens", 500),
        ({"options": {"num_predict": 1000}}, "options.num_predict", 1000),
    ],
)
def test_every_output_token_field_is_capped(body: dict[str, Any], path: str, before: int) -> None:
    assert token_caps(body, 256) == {path: (before, 256)}
    holder: Any = body
    for key in path.split("."):
        holder = holder[key]
    assert holder == 256


def test_values_under_the_cap_and_booleans_are_left_alone() -> None:
    body = {"max_tokens": 100, "options": {"num_predict": True}}
    assert token_caps(body, 256) == {}
    assert body == {"max_tokens": 100, "options": {"num_predict": True}}


def test_a_capped_request_is_sent_compact_and_the_recording_keeps_its_body() -> None:
    interaction = _interaction(
        "https://api.openai.com/v1/chat/completions", {"model": "m", "max_tokens": 999}
    )
    planned = plan_interaction(HERE, 0, interaction, environ={"OPENAI_API_KEY": "sk-x"}, max_output_tokens=10)
    assert planned.body == b'{"model":"m","max_tokens":10}'
    assert planned.capped == {"max_tokens": (999, 10)}
    assert interaction.request.parsed_body == {"model": "m", "max_tokens": 999}


def test_credentials_come_from_the_providers_variable_and_replace_the_recorded_header() -> None:
    interaction = _interaction(
        "https://api.anthropic.com/v1/messages", {"model": "c"}, {"x-api-key": ["REDACTED"], "X-Extra": ["1"]}
    )
    planned = plan_interaction(HERE, 0, interaction, environ={"ANTHROPIC_API_KEY": "sk-ant-live"})
    assert planned.skip is None
    assert planned.credential_env == "ANTHROPIC_API_KEY"
    assert planned.headers["x-api-key"] == "sk-ant-live"
    assert planned.headers["X-Extra"] == "1"


def test_gemini_takes_either_variable_and_drops_the_key_query_parameter() -> None:
    interaction = _interaction(
        "https://generativelanguage.googleapis.com/v1beta/models/g:generateContent?key=REDACTED&alt=sse", {}
    )
    planned = plan_interaction(HERE, 0, interaction, environ={"GOOGLE_API_KEY": "AIza-live"})
    assert planned.headers["x-goog-api-key"] == "AIza-live"
    assert planned.url.endswith(":generateContent?alt=sse")


def test_a_missing_key_skips_with_the_variables_to_set() -> None:
    interaction = _interaction(
        "https://generativelanguage.googleapis.com/v1beta/models/g:generateContent", {}
    )
    planned = plan_interaction(HERE, 0, interaction, environ={})
    assert planned.skip == "no credential: set GEMINI_API_KEY or GOOGLE_API_KEY to re-send gemini calls"


def test_a_gateway_call_that_carried_a_token_needs_bearer_env() -> None:
    interaction = _interaction(
        "http://gateway.local/v1/chat/completions", {}, {"authorization": ["Bearer REDACTED"]}
    )
    skipped = plan_interaction(HERE, 0, interaction, environ={})
    assert skipped.skip is not None and "--bearer-env" in skipped.skip
    sent = plan_interaction(HERE, 0, interaction, environ={"GW": "tok"}, bearer_env="GW")
    assert sent.skip is None and sent.headers["authorization"] == "Bearer tok"


def test_a_local_server_without_credentials_is_sent_as_recorded() -> None:
    planned = plan_interaction(
        HERE, 0, _interaction("http://127.0.0.1:11434/api/chat", {"model": "l"}), environ={}
    )
    assert planned.skip is None and planned.credential_env is None
    assert planned.headers == {"content-type": "application/json"}


def test_upstream_moves_the_request_keeping_its_path_under_the_upstreams_prefix() -> None:
    interaction = _interaction("http://127.0.0.1:11434/api/chat?x=1", {})
    planned = plan_interaction(HERE, 0, interaction, environ={}, upstream="https://proxy.example/ollama/")
    assert planned.url == "https://proxy.example/ollama/api/chat?x=1"


def test_azure_goes_to_the_endpoint_the_environment_names() -> None:
    interaction = _interaction(
        "https://recorded.openai.azure.com/openai/deployments/d/chat/completions?api-version=2024-10-21", {}
    )
    environ = {"AZURE_OPENAI_API_KEY": "az", "AZURE_OPENAI_ENDPOINT": "https://mine.openai.azure.com"}
    planned = plan_interaction(HERE, 0, interaction, environ=environ)
    assert (
        planned.url
        == "https://mine.openai.azure.com/openai/deployments/d/chat/completions?api-version=2024-10-21"
    )
    assert planned.headers["api-key"] == "az"


@pytest.mark.parametrize(
    ("uri", "body", "reason"),
    [
        ("https://api.openai.com/v1/responses", {"previous_response_id": "resp_1"}, "previous_response_id"),
        ("https://api.openai.com/v1/chat/completions", {"file_id": "file-1"}, "file_id"),
        ("https://api.openai.com/v1/files", {}, "/files"),
        ("https://api.openai.com/v1/threads/t/runs", {}, "/threads"),
        ("https://generativelanguage.googleapis.com/v1beta/cachedContents", {}, "/cachedContents"),
    ],
)
def test_state_the_cassette_does_not_hold_is_a_skip(uri: str, body: dict[str, Any], reason: str) -> None:
    planned = plan_interaction(
        HERE, 0, _interaction(uri, body), environ={"OPENAI_API_KEY": "k", "GEMINI_API_KEY": "k"}
    )
    assert planned.skip is not None and reason in planned.skip


def test_a_response_saved_on_its_own_is_skipped() -> None:
    planned = plan_interaction(HERE, 0, _interaction("*"), environ={})
    assert planned.skip == "it is a response saved on its own, with no request to send"
