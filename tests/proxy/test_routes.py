"""Routes: which upstream a proxy path stands for, and the environment that points SDKs at it."""

from __future__ import annotations

import pytest

from llmcassette._exceptions import ConfigError
from llmcassette.proxy import KNOWN_ROUTES, PROXY_URL_ENV, RouteTable, parse_route
from llmcassette.proxy._routes import join_path


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


# What each SDK appends to the base URL it reads from each exported variable, for a chat call.
SDK_PATHS = {
    "OPENAI_BASE_URL": "/chat/completions",
    "OPENAI_API_BASE": "/chat/completions",
    "ANTHROPIC_BASE_URL": "/v1/messages",
    "ANTHROPIC_API_BASE": "/v1/messages",
    # google-genai 3.x calls the v1 API, litellm v1beta.
    "GOOGLE_GEMINI_BASE_URL": "/v1/models/gemini-test:generateContent",
    "GEMINI_API_BASE": "/v1beta/models/gemini-test:generateContent",
    "OLLAMA_HOST": "/api/chat",
    "OLLAMA_API_BASE": "/api/chat",
    "GROQ_BASE_URL": "/openai/v1/chat/completions",
}
# The path each of those requests has on a provider's own host.
API_PATHS = {
    "OPENAI_BASE_URL": "/v1/chat/completions",
    "OPENAI_API_BASE": "/v1/chat/completions",
    "ANTHROPIC_BASE_URL": "/v1/messages",
    "ANTHROPIC_API_BASE": "/v1/messages",
    "GOOGLE_GEMINI_BASE_URL": "/v1/models/gemini-test:generateContent",
    "GEMINI_API_BASE": "/v1beta/models/gemini-test:generateContent",
    "OLLAMA_HOST": "/api/chat",
    "OLLAMA_API_BASE": "/api/chat",
    "GROQ_BASE_URL": "/openai/v1/chat/completions",
}
UNDER_V1 = sorted(name for name, path in API_PATHS.items() if path.startswith("/v1/"))


def routed(table: RouteTable, variable: str) -> str:
    """Where the request an SDK sends from ``variable``'s base URL goes."""
    proxy = "http://127.0.0.1:7000"
    base = table.environment(proxy)[variable]
    assert base.startswith(proxy)
    resolved = table.resolve(base.removeprefix(proxy) + SDK_PATHS[variable])
    assert resolved is not None
    return resolved[1]


def test_every_exported_variable_is_one_the_table_knows() -> None:
    exported = set(RouteTable(upstream="http://127.0.0.1:4000").environment("http://127.0.0.1:7000"))
    assert exported - {PROXY_URL_ENV} == set(SDK_PATHS)


@pytest.mark.parametrize("variable", sorted(SDK_PATHS))
def test_with_an_upstream_every_variable_reaches_its_api_path(variable: str) -> None:
    url = routed(RouteTable(upstream="http://127.0.0.1:4000"), variable)
    assert url == "http://127.0.0.1:4000" + API_PATHS[variable]


@pytest.mark.parametrize("variable", UNDER_V1)
def test_an_upstream_given_with_v1_gets_each_v1_api_path_once(variable: str) -> None:
    # The base URL an OpenAI client is given for vLLM, LiteLLM or Ollama's OpenAI API: the OpenAI
    # SDK's `/v1/chat/completions` and the Anthropic SDK's `/v1/messages` each keep one `/v1`.
    url = routed(RouteTable(upstream="http://127.0.0.1:4000/v1"), variable)
    assert url == "http://127.0.0.1:4000" + API_PATHS[variable]


@pytest.mark.parametrize("variable", sorted(set(SDK_PATHS) - set(UNDER_V1)))
def test_an_api_outside_the_upstreams_path_takes_a_route_of_its_own(variable: str) -> None:
    # Every path goes below the upstream's URL: Ollama's `/api/chat` is not under `/v1`, so it
    # gets a route to the host, which sets the variable to that route.
    name = next(route.name for route in KNOWN_ROUTES if variable in route.env)
    table = RouteTable(
        upstream="http://127.0.0.1:4000/v1", routes=[parse_route(f"{name}=http://127.0.0.1:4000")]
    )
    assert routed(table, variable) == "http://127.0.0.1:4000" + API_PATHS[variable]


@pytest.mark.parametrize("variable", sorted(SDK_PATHS))
def test_an_upstream_mounted_under_a_path_gets_every_api_path_below_it(variable: str) -> None:
    url = routed(RouteTable(upstream="http://127.0.0.1:4000/gateway/"), variable)
    assert url == "http://127.0.0.1:4000/gateway" + API_PATHS[variable]


@pytest.mark.parametrize(
    ("route", "variable"),
    [
        ("openai=http://127.0.0.1:9000/v1", "OPENAI_BASE_URL"),
        ("anthropic=http://127.0.0.1:9000/v1", "ANTHROPIC_BASE_URL"),
        ("groq=http://127.0.0.1:9000/openai/v1", "GROQ_BASE_URL"),
    ],
)
def test_a_route_to_a_url_with_a_path_reaches_the_api_path_once(route: str, variable: str) -> None:
    url = routed(RouteTable(routes=[parse_route(route)]), variable)
    assert url == "http://127.0.0.1:9000" + API_PATHS[variable]


@pytest.mark.parametrize(
    ("upstream", "path", "url"),
    [
        ("http://h/v1", "/v1/messages", "http://h/v1/messages"),
        ("http://h/v1", "/messages", "http://h/v1/messages"),
        ("http://h/v1", "/v1", "http://h/v1"),
        ("http://h/v1", "/", "http://h/v1/"),
        ("http://h/v1", "/v1/models/", "http://h/v1/models/"),
        ("http://h/api/v1", "/v1/chat", "http://h/api/v1/chat"),
        ("http://h/openai/v1", "/openai/v1/chat", "http://h/openai/v1/chat"),
        # Only the upstream path's end counts, and only whole segments.
        ("http://h/v1/x", "/v1/chat", "http://h/v1/x/v1/chat"),
        ("http://h/v1", "/v1beta/models", "http://h/v1/v1beta/models"),
        ("http://h", "/v1/chat", "http://h/v1/chat"),
        ("http://h/gw", "", "http://h/gw"),
    ],
)
def test_join_path_does_not_repeat_the_upstream_paths_end(upstream: str, path: str, url: str) -> None:
    assert join_path(upstream, path) == url
