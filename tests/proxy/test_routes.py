"""Routes: which upstream a proxy path stands for, and the environment that points SDKs at it."""

from __future__ import annotations

import pytest

from llmcassette._exceptions import ConfigError
from llmcassette.proxy import KNOWN_ROUTES, PROXY_URL_ENV, RouteTable, parse_route


@pytest.mark.parametrize(
    ("path", "upstream_url"),
    [
        ("/openai/v1/chat/completions", "https://api.openai.com/v1/chat/completions"),
        ("/anthropic/v1/messages", "https://api.anthropic.com/v1/messages"),
        (
            "/gemini/v1beta/models/gemini-2.0-flash:streamGenerateContent",
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:streamGenerateContent",
        ),
        ("/ollama/api/chat", "http://127.0.0.1:11434/api/chat"),
        ("/groq/openai/v1/chat/completions", "https://api.groq.com/openai/v1/chat/completions"),
        ("/openai", "https://api.openai.com"),
    ],
)
def test_a_provider_route_maps_to_its_upstream(path: str, upstream_url: str) -> None:
    resolved = RouteTable().resolve(path)
    assert resolved is not None
    route, url = resolved
    assert route is not None and path.startswith(f"/{route.name}")
    assert url == upstream_url


def test_a_path_under_no_route_is_not_taken_without_an_upstream() -> None:
    assert RouteTable().resolve("/v1/chat/completions") is None


def test_with_an_upstream_every_path_goes_to_it_and_keeps_its_base_path() -> None:
    table = RouteTable(upstream="http://127.0.0.1:4000/litellm/")
    assert table.resolve("/v1/chat/completions") == (
        None,
        "http://127.0.0.1:4000/litellm/v1/chat/completions",
    )
    # A gateway may serve paths that look like a provider's route: they are the gateway's.
    assert table.resolve("/openai/v1/models") == (None, "http://127.0.0.1:4000/litellm/openai/v1/models")


def test_a_route_option_replaces_a_known_upstream_and_keeps_its_sdk_variables() -> None:
    route = parse_route("openai=http://127.0.0.1:9000/")
    table = RouteTable(routes=[route])
    assert table.resolve("/openai/v1/models") == (route, "http://127.0.0.1:9000/v1/models")
    assert table.environment("http://127.0.0.1:5")["OPENAI_BASE_URL"] == "http://127.0.0.1:5/openai/v1"


def test_a_route_option_can_add_a_provider() -> None:
    table = RouteTable(routes=[parse_route("vllm=http://127.0.0.1:8001")])
    assert table.resolve("/vllm/v1/completions") is not None
    assert "/vllm/... -> http://127.0.0.1:8001/..." in table.describe()


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("openai", "is not NAME=URL"),
        ("=http://127.0.0.1:1", "is not NAME=URL"),
        ("a/b=http://127.0.0.1:1", "is not NAME=URL"),
        ("openai=ftp://example.invalid", "is not an http(s) URL"),
        ("openai=127.0.0.1:9000", "is not an http(s) URL"),
    ],
)
def test_a_bad_route_is_a_clear_error(spec: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=r"^llmcassette: ") as info:
        parse_route(spec)
    assert fragment in str(info.value)


def test_a_bad_upstream_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="--upstream 'localhost:4000' is not an http"):
        RouteTable(upstream="localhost:4000")


def test_the_environment_points_every_sdk_at_its_route() -> None:
    env = RouteTable().environment("http://127.0.0.1:7000/")
    assert env[PROXY_URL_ENV] == "http://127.0.0.1:7000"
    assert env["OPENAI_BASE_URL"] == "http://127.0.0.1:7000/openai/v1"
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:7000/anthropic"
    assert env["GOOGLE_GEMINI_BASE_URL"] == "http://127.0.0.1:7000/gemini"
    assert env["OLLAMA_HOST"] == "http://127.0.0.1:7000/ollama"
    # Every variable a route declares is set, and each points at that route.
    for route in KNOWN_ROUTES:
        for name in route.env:
            assert env[name].startswith(f"http://127.0.0.1:7000/{route.name}")


def test_with_an_upstream_the_environment_points_at_the_proxy_root() -> None:
    env = RouteTable(upstream="http://127.0.0.1:4000").environment("http://127.0.0.1:7000")
    assert env["OPENAI_BASE_URL"] == "http://127.0.0.1:7000/v1"
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:7000"
    assert env["OLLAMA_HOST"] == "http://127.0.0.1:7000"
