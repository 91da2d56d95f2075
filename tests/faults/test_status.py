"""Status faults: the provider's error, with the retry hints each fault is told to send."""

from __future__ import annotations

import email.utils
import json
import time
from collections import Counter
from collections.abc import Iterator, Set
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, strategies as st

from llmcassette import ConfigError
from llmcassette._exchange import Ending, Playback
from llmcassette.faults import (
    BadGateway,
    BadRequest,
    Forbidden,
    NotFound,
    Overloaded,
    RateLimit,
    ServerError,
    Status,
    Unauthorized,
    Unavailable,
    fault_types,
    parse_fault,
    status,
)
from llmcassette.providers import ERROR_KINDS, GENERIC, ErrorResponse, Profile, get_profile
from tests.faults import ALL_PROFILES, NOW_S, fault_kwargs, make_context

#: One instance of every status fault, with the status code the generic profile gives it.
FAULTS: list[tuple[status._StatusFault, int]] = [
    (RateLimit(), 429),
    (Unauthorized(), 401),
    (Forbidden(), 403),
    (NotFound(), 404),
    (BadRequest(), 400),
    (ServerError(), 500),
    (BadGateway(), 502),
    (Unavailable(), 503),
    (Overloaded(), ERROR_KINDS["overloaded"]),
    (Status(code=418), 418),
]
FAULT_IDS = [fault.name for fault, _ in FAULTS]
PROFILE_IDS = [profile.name for profile in ALL_PROFILES]
RETRY_HEADERS = ("retry-after", "retry-after-ms", "x-should-retry")

# Header names a status fault writes itself; all other headers of the profile's error pass through.
OWNED = {"content-length", "retry-after", "retry-after-ms", "x-should-retry"}


def test_every_status_fault_is_listed_here() -> None:
    assert sorted(FAULT_IDS) == sorted(getattr(status, name).name for name in status.__all__)


def expected_error(fault: status._StatusFault, profile: Profile) -> ErrorResponse:
    """What the profile answers for ``fault`` (at the contexts' clock, ``NOW_S``)."""
    code = fault.code if isinstance(fault, Status) else None
    return profile.error(
        fault.kind, status=code, message=fault.message, retry_after_s=fault.retry_delay_s(), now_s=NOW_S
    )


def limit_names(fault: status._StatusFault, profile: Profile) -> set[str]:
    """The header names a rate-limit fault told to leave them out drops."""
    if isinstance(fault, RateLimit) and not fault.rate_limit_headers:
        return {key.lower() for key, _ in profile.rate_limit_headers(now_s=NOW_S)}
    return set()


def header_names(playback: Playback) -> list[str]:
    return [key.lower() for key, _ in playback.headers]


def check_response(playback: Playback, error: ErrorResponse, dropped: Set[str] = frozenset()) -> None:
    """What every status response must be, whatever its parameters; ``dropped`` names may be left out."""
    assert playback.status == error.status
    assert playback.chunks == (error.body,)
    assert playback.ending is Ending.COMPLETE and playback.delays_ms is None and playback.head_delay_ms == 0
    json.loads(playback.body)
    names = header_names(playback)
    assert not [name for name, count in Counter(names).items() if count > 1], playback.headers
    assert playback.header("content-length") == str(len(error.body))
    profile_type = next((v for k, v in error.headers if k.lower() == "content-type"), "application/json")
    assert playback.header("content-type") == profile_type
    for key, value in error.headers:
        if key.lower() not in OWNED | dropped:
            assert playback.header(key) == value


# -- declaring a status fault ---------------------------------------------------------------------


@pytest.mark.parametrize(("fault", "generic_status"), FAULTS, ids=FAULT_IDS)
def test_the_kind_is_the_registered_name(fault: status._StatusFault, generic_status: int) -> None:
    cls = type(fault)
    assert cls.name == cls.kind == fault.name
    assert fault_types()[cls.kind] is cls
    assert cls.family == "status"


@pytest.mark.parametrize(
    ("cls", "summary"),
    [
        (Unauthorized, "401 Unauthorized in the provider's shape"),
        (Forbidden, "403 Forbidden in the provider's shape"),
        (NotFound, "404 Not Found in the provider's shape"),
        (BadRequest, "400 Bad Request in the provider's shape"),
        (ServerError, "500 Internal Server Error in the provider's shape"),
        (BadGateway, "502 Bad Gateway in the provider's shape"),
        (Unavailable, "503 Service Unavailable in the provider's shape"),
        (RateLimit, "429 Too Many Requests with Retry-After and the provider's rate-limit headers"),
        (Status, "any HTTP status code with the provider's error body"),
    ],
)
def test_the_summary_is_the_usual_status_unless_given(cls: type[status._StatusFault], summary: str) -> None:
    assert cls.summary == summary


def test_an_unknown_kind_is_refused_when_the_class_is_made() -> None:
    with pytest.raises(
        TypeError, match=r"status fault Teapot has kind 'teapot', which the provider profiles"
    ):

        class Teapot(status._StatusFault, kind="teapot"):
            """HTTP 418."""

    assert "teapot" not in fault_types()


def test_a_summary_without_a_kind_is_refused() -> None:
    with pytest.raises(TypeError, match=r"status fault Nameless gives a summary or example without a kind"):

        class Nameless(status._StatusFault, example="nameless:times=1"):
            """No kind."""


def test_a_kind_already_registered_is_refused() -> None:
    with pytest.raises(TypeError, match=r"fault name 'forbidden' is already used by Forbidden"):

        class Forbidden2(status._StatusFault, kind="forbidden"):
            """Forbidden again."""

    assert fault_types()["forbidden"] is Forbidden


def test_a_subclass_without_a_kind_keeps_its_parents_and_is_not_registered() -> None:
    class MyRateLimit(RateLimit):
        """A project's own rate limit, declared without a kind."""

    assert (MyRateLimit.name, MyRateLimit.kind, MyRateLimit.summary) == (
        RateLimit.name,
        RateLimit.kind,
        RateLimit.summary,
    )
    assert fault_types()["rate_limit"] is RateLimit


# -- the provider's error --------------------------------------------------------------------------


@pytest.mark.parametrize("profile", ALL_PROFILES, ids=PROFILE_IDS)
@pytest.mark.parametrize(("fault", "generic_status"), FAULTS, ids=FAULT_IDS)
def test_the_response_is_the_profiles_error(
    fault: status._StatusFault, generic_status: int, profile: Profile
) -> None:
    playback = fault.respond(make_context(profile))
    error = expected_error(fault, profile)
    check_response(playback, error)
    assert playback.status >= 400
    if isinstance(fault, Status):
        assert playback.status == 418


@pytest.mark.parametrize(("fault", "generic_status"), FAULTS, ids=FAULT_IDS)
def test_the_generic_profile_uses_the_standard_statuses(
    fault: status._StatusFault, generic_status: int
) -> None:
    playback = fault.respond(make_context(GENERIC))
    assert playback.status == generic_status
    assert json.loads(playback.body)["error"]["message"]


@pytest.mark.parametrize("profile", ALL_PROFILES, ids=PROFILE_IDS)
@pytest.mark.parametrize(("fault", "generic_status"), FAULTS, ids=FAULT_IDS)
def test_message_replaces_the_providers_message(
    fault: status._StatusFault, generic_status: int, profile: Profile
) -> None:
    text = "Injected by the test suite"
    changed = fault.model_copy(update={"message": text})
    playback = changed.respond(make_context(profile))
    check_response(playback, expected_error(changed, profile))
    assert text in json.dumps(json.loads(playback.body))
    assert playback.body != fault.respond(make_context(profile)).body


def overloaded_profiles() -> Iterator[Profile]:
    for name in ("anthropic",):
        try:
            yield get_profile(name)
        except ConfigError:
            continue


def test_anthropic_overloaded_is_a_529_overloaded_error() -> None:
    profiles = list(overloaded_profiles())
    if not profiles:
        pytest.skip("no anthropic profile yet")
    playback = Overloaded().respond(make_context(profiles[0]))
    assert playback.status == 529
    assert json.loads(playback.body)["error"]["type"] == "overloaded_error"


# -- retry hints ----------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", ALL_PROFILES, ids=PROFILE_IDS)
@pytest.mark.parametrize(("fault", "generic_status"), FAULTS, ids=FAULT_IDS)
@pytest.mark.parametrize("should_retry", [True, False, None])
def test_should_retry_writes_x_should_retry(
    fault: status._StatusFault, generic_status: int, profile: Profile, should_retry: bool | None
) -> None:
    playback = fault.model_copy(update={"should_retry": should_retry}).respond(make_context(profile))
    expected = {True: "true", False: "false", None: None}[should_retry]
    assert playback.header("x-should-retry") == expected


@pytest.mark.parametrize("profile", ALL_PROFILES, ids=PROFILE_IDS)
@pytest.mark.parametrize(("fault", "generic_status"), FAULTS, ids=FAULT_IDS)
def test_only_rate_limit_sends_retry_after_by_default(
    fault: status._StatusFault, generic_status: int, profile: Profile
) -> None:
    playback = fault.respond(make_context(profile))
    assert playback.header("retry-after") == ("1" if isinstance(fault, RateLimit) else None)
    assert playback.header("retry-after-ms") is None
    assert playback.header("x-should-retry") is None


@pytest.mark.parametrize("profile", ALL_PROFILES, ids=PROFILE_IDS)
@pytest.mark.parametrize(
    ("spec", "retry_after", "retry_after_ms"),
    [
        ("rate_limit", "1", None),
        ("rate_limit:retry_after=2", "2", None),
        ("rate_limit:retry_after=2.5", "2.5", None),
        ("rate_limit:retry_after=0.25", "0.25", None),
        ("rate_limit:retry_after=0", "0", None),
        ("rate_limit:retry_after=86400", "86400", None),
        ("rate_limit:retry_after=none", None, None),
        ("rate_limit:retry_after=off", None, None),
        ("rate_limit:retry_after_ms=250", "1", "250"),
        ("rate_limit:retry_after_ms=150.5,retry_after=5", "5", "150.5"),
        ("rate_limit:retry_after_ms=250,retry_after=none", None, "250"),
        ("unavailable:retry_after=30", "30", None),
        ("overloaded:retry_after_ms=10", None, "10"),
        ("status:code=503,retry_after=3,retry_after_ms=3000", "3", "3000"),
    ],
)
def test_retry_after_in_seconds_and_milliseconds(
    spec: str, retry_after: str | None, retry_after_ms: str | None, profile: Profile
) -> None:
    fault = parse_fault(spec)
    assert isinstance(fault, status._StatusFault)
    playback = fault.respond(make_context(profile))
    assert playback.header("retry-after") == retry_after
    assert playback.header("retry-after-ms") == retry_after_ms
    check_response(playback, expected_error(fault, profile))


@pytest.mark.parametrize("profile", ALL_PROFILES, ids=PROFILE_IDS)
@pytest.mark.parametrize("offset", [30, 1, 0, -120, 86400])
def test_retry_after_date_is_an_http_date_from_now(offset: int, profile: Profile) -> None:
    playback = RateLimit(retry_after_date=offset).respond(make_context(profile, now_s=NOW_S))
    header = playback.header("retry-after")
    assert header is not None and header.endswith(" GMT")
    assert header == email.utils.formatdate(NOW_S + offset, usegmt=True)
    assert email.utils.parsedate_to_datetime(header) == datetime.fromtimestamp(NOW_S + offset, UTC)
    assert playback.header("retry-after-ms") is None


def test_retry_after_date_drops_the_fraction_of_a_second() -> None:
    playback = RateLimit(retry_after_date=2.5).respond(make_context(now_s=NOW_S + 0.75))
    parsed = email.utils.parsedate_to_datetime(playback.header("retry-after") or "")
    assert parsed == datetime.fromtimestamp(NOW_S + 3, UTC)


def test_retry_after_date_follows_the_contexts_clock() -> None:
    first = RateLimit(retry_after_date=5).respond(make_context(now_s=NOW_S))
    later = RateLimit(retry_after_date=5).respond(make_context(now_s=NOW_S + 60))
    dates = [email.utils.parsedate_to_datetime(p.header("retry-after") or "") for p in (first, later)]
    assert (dates[1] - dates[0]).total_seconds() == 60


def test_retry_after_date_wins_over_seconds_and_keeps_milliseconds() -> None:
    fault = parse_fault("rate_limit:retry_after=9,retry_after_date=30,retry_after_ms=500")
    playback = fault.respond(make_context(now_s=NOW_S))  # type: ignore[attr-defined]
    assert playback.header("retry-after") == email.utils.formatdate(NOW_S + 30, usegmt=True)
    assert playback.header("retry-after-ms") == "500"


# -- rate-limit headers ---------------------------------------------------------------------------


@pytest.mark.parametrize("profile", ALL_PROFILES, ids=PROFILE_IDS)
def test_rate_limit_sends_the_profiles_rate_limit_headers(profile: Profile) -> None:
    playback = RateLimit().respond(make_context(profile))
    for key, value in profile.rate_limit_headers(now_s=NOW_S):
        if key.lower() not in OWNED:
            assert playback.header(key) == value


@pytest.mark.parametrize("profile", ALL_PROFILES, ids=PROFILE_IDS)
def test_rate_limit_headers_can_be_turned_off(profile: Profile) -> None:
    fault = parse_fault("rate_limit:rate_limit_headers=false")
    assert isinstance(fault, RateLimit)
    playback = fault.respond(make_context(profile))
    for key, _ in profile.rate_limit_headers(now_s=NOW_S):
        assert playback.header(key) is None
    assert playback.header("retry-after") == "1"
    check_response(playback, expected_error(fault, profile), limit_names(fault, profile))


@pytest.mark.parametrize("profile", ALL_PROFILES, ids=PROFILE_IDS)
@pytest.mark.parametrize(("fault", "generic_status"), FAULTS[1:], ids=FAULT_IDS[1:])
def test_other_statuses_send_no_rate_limit_headers(
    fault: status._StatusFault, generic_status: int, profile: Profile
) -> None:
    playback = fault.respond(make_context(profile))
    error_names = {key.lower() for key, _ in expected_error(fault, profile).headers}
    for key, _ in profile.rate_limit_headers(now_s=NOW_S):
        if key.lower() not in error_names:
            assert playback.header(key) is None


class _Chatty(Profile):
    """A profile whose error carries headers a fault owns (they must be replaced); it records its calls."""

    name = "chatty"

    def __init__(self, *, limits_in_error: bool = True) -> None:
        self.limits_in_error = limits_in_error
        self.calls: list[dict[str, Any]] = []

    def error(
        self,
        kind: str,
        *,
        status: int | None = None,
        message: str | None = None,
        retry_after_s: float | None = None,
        now_s: float | None = None,
    ) -> ErrorResponse:
        self.calls.append({"kind": kind, "status": status, "retry_after_s": retry_after_s, "now_s": now_s})
        code = status or (429 if kind == "rate_limit" else 500)
        body = json.dumps({"detail": message or f"chatty {kind}", "retry_in": retry_after_s}).encode()
        headers = [
            ("Content-Type", "application/problem+json"),
            ("Content-Length", "9999"),
            ("Retry-After", "99"),
            ("X-Should-Retry", "maybe"),
            ("x-request-id", "req_123"),
        ]
        if code == 429 and self.limits_in_error:
            headers.extend(self.rate_limit_headers(now_s=now_s))
        return ErrorResponse(code, body, tuple(headers))

    def rate_limit_headers(self, *, now_s: float | None = None) -> tuple[tuple[str, str], ...]:
        return (
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-at", f"{now_s:.0f}"),
            ("retry-after-ms", "77"),
        )


@pytest.mark.parametrize("limits_in_error", [True, False])
def test_the_faults_own_headers_replace_the_profiles(limits_in_error: bool) -> None:
    playback = RateLimit(should_retry=False).respond(make_context(_Chatty(limits_in_error=limits_in_error)))
    assert playback.headers == (
        ("Content-Type", "application/problem+json"),
        ("x-request-id", "req_123"),
        ("x-ratelimit-remaining-requests", "0"),
        ("x-ratelimit-reset-at", f"{NOW_S:.0f}"),
        ("content-length", str(len(playback.body))),
        ("retry-after", "1"),
        ("x-should-retry", "false"),
    )


def test_turning_retry_after_and_limits_off_removes_the_profiles_too() -> None:
    playback = RateLimit(retry_after=None, rate_limit_headers=False).respond(make_context(_Chatty()))
    assert header_names(playback) == ["content-type", "x-request-id", "content-length"]


def test_other_faults_send_retry_after_only_when_set() -> None:
    # The fault owns the retry headers: a profile's own value never leaks through.
    assert Unavailable().respond(make_context(_Chatty())).header("retry-after") is None
    assert Unavailable(retry_after=4).respond(make_context(_Chatty())).header("retry-after") == "4"


@pytest.mark.parametrize(
    ("fault", "delay"),
    [
        (RateLimit(), 1.0),
        (RateLimit(retry_after=None), None),
        (RateLimit(retry_after=7), 7.0),
        (RateLimit(retry_after_ms=250), 0.25),
        (RateLimit(retry_after_ms=250, retry_after_date=30), 0.25),
        (RateLimit(retry_after_date=30), 30.0),
        (RateLimit(retry_after_date=-5, retry_after=None), -5.0),
        (Unavailable(), None),
        (Status(code=503, retry_after=3), 3.0),
    ],
)
def test_the_profile_hears_the_delay_the_headers_announce(
    fault: status._StatusFault, delay: float | None
) -> None:
    # Providers that repeat the delay in the body (Gemini's RetryInfo) must agree with the headers.
    profile = _Chatty()
    assert fault.retry_delay_s() == delay
    playback = fault.respond(make_context(profile, now_s=NOW_S))
    assert profile.calls == [
        {"kind": fault.kind, "status": getattr(fault, "code", None), "retry_after_s": delay, "now_s": NOW_S}
    ]
    assert json.loads(playback.body)["retry_in"] == delay


# -- what the SDKs make of it ---------------------------------------------------------------------


@pytest.fixture(params=["openai", "anthropic"])
def sdk_client(request: pytest.FixtureRequest) -> Iterator[Any]:
    module = pytest.importorskip(request.param)
    cls = module.OpenAI if request.param == "openai" else module.Anthropic
    client = cls(api_key="test-key", base_url="http://127.0.0.1:9", max_retries=2)
    if not hasattr(client, "_parse_retry_after_header") or not hasattr(client, "_should_retry"):
        client.close()
        pytest.skip(f"{request.param} has no retry helpers to check against")
    yield client
    client.close()


def sdk_response(client: Any, playback: Playback) -> Any:
    # The response class of the HTTP library the SDK is built on (httpx2 for the current lines).
    library = next(c.__module__ for c in type(client._client).__mro__ if c.__module__.startswith("httpx"))
    http = pytest.importorskip(library.partition(".")[0])
    request = http.Request("POST", "http://127.0.0.1:9/v1/messages")
    return http.Response(
        playback.status, headers=list(playback.headers), content=playback.body, request=request
    )


@pytest.mark.parametrize(
    ("spec", "delay"),
    [
        ("rate_limit", 1.0),
        ("rate_limit:retry_after=2.5", 2.5),
        ("rate_limit:retry_after_ms=250", 0.25),
        ("rate_limit:retry_after_ms=150,retry_after=5", 0.15),
        ("rate_limit:retry_after=none", None),
    ],
)
def test_the_sdks_read_the_retry_delay(sdk_client: Any, spec: str, delay: float | None) -> None:
    playback = parse_fault(spec).respond(make_context())  # type: ignore[attr-defined]
    response = sdk_response(sdk_client, playback)
    assert sdk_client._parse_retry_after_header(response.headers) == delay
    assert sdk_client._should_retry(response)


def test_the_sdks_read_the_http_date(sdk_client: Any) -> None:
    playback = RateLimit(retry_after_date=30).respond(make_context(now_s=time.time()))
    delay = sdk_client._parse_retry_after_header(sdk_response(sdk_client, playback).headers)
    assert 28 <= delay <= 31


@pytest.mark.parametrize(
    ("spec", "retried"),
    [
        ("server_error", True),
        ("server_error:should_retry=false", False),
        ("bad_request", False),
        ("bad_request:should_retry=true", True),
        ("unauthorized", False),
        ("status:code=409", True),
        ("overloaded", True),
    ],
)
def test_the_sdks_obey_x_should_retry(sdk_client: Any, spec: str, retried: bool) -> None:
    playback = parse_fault(spec).respond(make_context())  # type: ignore[attr-defined]
    assert sdk_client._should_retry(sdk_response(sdk_client, playback)) is retried


# -- specs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "fault"),
    [
        ("rate_limit:retry_after_ms=250,times=2", RateLimit(retry_after_ms=250, times=2)),
        ("rate_limit:retry_after=none", RateLimit(retry_after=None)),
        ("rate_limit:retry_after=NONE", RateLimit(retry_after=None)),
        ("rate_limit:retry_after_date=-30", RateLimit(retry_after_date=-30)),
        (
            "rate_limit:rate_limit_headers=false,seed=4,probability=0.5",
            RateLimit(rate_limit_headers=False, seed=4, probability=0.5),
        ),
        ("unauthorized:message=Invalid API key,nth=1", Unauthorized(message="Invalid API key", nth=1)),
        ("forbidden:should_retry=true", Forbidden(should_retry=True)),
        ("not_found:path=/v1/models/*", NotFound(path="/v1/models/*")),
        ("bad_request:should_retry=false,provider=openai", BadRequest(should_retry=False, provider="openai")),
        ("server_error:every=2,stream=true", ServerError(every=2, stream=True)),
        ("bad_gateway:times=1", BadGateway(times=1)),
        ("unavailable:retry_after=2", Unavailable(retry_after=2)),
        ("overloaded:times=3", Overloaded(times=3)),
        ("status:code=504,message=Gateway timeout", Status(code=504, message="Gateway timeout")),
    ],
)
def test_specs_parse_to_equal_models(spec: str, fault: status._StatusFault) -> None:
    assert parse_fault(spec) == fault
    assert parse_fault(fault.spec()) == fault


def test_spec_writes_only_what_differs_from_the_defaults() -> None:
    assert RateLimit().spec() == "rate_limit"
    assert RateLimit(retry_after=None).spec() == "rate_limit:retry_after=None"
    assert RateLimit(retry_after_ms=250, times=2).spec() == "rate_limit:times=2,retry_after_ms=250.0"
    assert Status(code=503, should_retry=False).spec() == "status:should_retry=false,code=503"


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ("rate_limit:retry_after=-1", "retry_after"),
        ("rate_limit:retry_after=soon", "retry_after"),
        ("rate_limit:retry_after=inf", "retry_after"),
        ("rate_limit:retry_after_ms=-5", "retry_after_ms"),
        ("rate_limit:retry_after_date=1e12", "retry_after_date"),
        ("rate_limit:retry_after_date=nan", "retry_after_date"),
        ("rate_limit:rate_limit_headers=sometimes", "rate_limit_headers"),
        ("server_error:should_retry=perhaps", "should_retry"),
        ("status:code=abc", "code"),
    ],
)
def test_bad_values_name_the_parameter(spec: str, field: str) -> None:
    with pytest.raises(ConfigError, match=rf"parameter `{field}`: "):
        parse_fault(spec)


def test_a_status_fault_lists_its_parameters() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_fault("server_error:retry=true")
    message = str(caught.value)
    assert "its parameters: " in message
    for key in ("message", "should_retry", "retry_after", "retry_after_ms", "retry_after_date"):
        assert key in message
    assert "rate_limit_headers" not in message


@given(data=st.data(), name=st.sampled_from(FAULT_IDS))
def test_any_status_fault_round_trips_and_responds(data: st.DataObject, name: str) -> None:
    fault = parse_fault({"name": name, **data.draw(fault_kwargs(name))})
    assert isinstance(fault, status._StatusFault)
    assert parse_fault(fault.spec()) == fault
    profile = data.draw(st.sampled_from(ALL_PROFILES))
    playback = fault.respond(make_context(profile))
    check_response(playback, expected_error(fault, profile), limit_names(fault, profile))
    if fault.retry_after_date is not None:
        header = playback.header("retry-after") or ""
        parsed = email.utils.parsedate_to_datetime(header).timestamp()
        # Whole seconds, rounded down; a microsecond of slack for offsets below float resolution.
        due_s = NOW_S + fault.retry_after_date
        assert due_s - 1 - 1e-6 < parsed <= due_s + 1e-6
    elif fault.retry_after is not None:
        assert float(playback.header("retry-after") or "") == pytest.approx(fault.retry_after, abs=1e-3)
    else:
        assert playback.header("retry-after") is None
    if fault.retry_after_ms is not None:
        assert float(playback.header("retry-after-ms") or "") == pytest.approx(fault.retry_after_ms, abs=1e-3)
