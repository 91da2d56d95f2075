"""Connection faults: no response at all, only the transport error the client's library raises."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from llmcassette import ConfigError
from llmcassette.faults import (
    ConnectError,
    ConnectionFailure,
    ConnectTimeout,
    ReadTimeout,
    ReplacingFault,
    connection,
    parse_fault,
)
from llmcassette.providers import Profile
from tests.faults import ALL_PROFILES, fault_kwargs, make_context

#: Every connection fault with the exception class it names and the base class that must catch it.
FAULTS: list[tuple[ReplacingFault, str, str]] = [
    (ConnectError(), "ConnectError", "NetworkError"),
    (ConnectTimeout(), "ConnectTimeout", "TimeoutException"),
    (ReadTimeout(), "ReadTimeout", "TimeoutException"),
]
FAULT_IDS = [fault.name for fault, _, _ in FAULTS]
PROFILE_IDS = [profile.name for profile in ALL_PROFILES]


def failure(fault: ReplacingFault, **context: object) -> ConnectionFailure:
    answer = fault.respond(make_context(**context))  # type: ignore[arg-type]
    assert isinstance(answer, ConnectionFailure)
    return answer


def test_every_connection_fault_is_listed_here() -> None:
    assert sorted(FAULT_IDS) == sorted(getattr(connection, name).name for name in connection.__all__)


@pytest.mark.parametrize("profile", ALL_PROFILES, ids=PROFILE_IDS)
@pytest.mark.parametrize(("fault", "error_type", "base"), FAULTS, ids=FAULT_IDS)
def test_the_failure_names_the_exception_class(
    fault: ReplacingFault, error_type: str, base: str, profile: Profile
) -> None:
    answer = failure(fault, profile=profile, streaming=True)
    assert answer.error_type == error_type
    assert answer.message
    assert answer.delay_ms == 0


@pytest.mark.parametrize("library", ["httpx", "httpx2"])
@pytest.mark.parametrize(("fault", "error_type", "base"), FAULTS, ids=FAULT_IDS)
def test_the_named_class_exists_in_both_libraries(
    fault: ReplacingFault, error_type: str, base: str, library: str
) -> None:
    module = pytest.importorskip(library)
    cls = getattr(module, failure(fault).error_type)
    # SDKs catch these families: a timeout must be a TimeoutException, a refusal a NetworkError.
    assert issubclass(cls, getattr(module, base))
    assert issubclass(cls, module.TransportError)


def test_connect_error_looks_like_a_refused_connection() -> None:
    assert failure(ConnectError()).message == "[Errno 111] Connection refused"


@pytest.mark.parametrize("fault", [ConnectTimeout(), ReadTimeout()], ids=["connect_timeout", "read_timeout"])
def test_timeouts_say_timed_out(fault: ReplacingFault) -> None:
    assert failure(fault).message == "timed out"


@pytest.mark.parametrize(
    ("cls", "replaces"),
    [(ConnectError, "a refused connection"), (ConnectTimeout, "`timed out`"), (ReadTimeout, "`timed out`")],
)
def test_the_message_parameter_says_what_it_replaces(cls: type[ReplacingFault], replaces: str) -> None:
    assert cls.model_fields["message"].description == f"error message instead of {replaces}"
    assert cls.family == "connection"


@pytest.mark.parametrize(("fault", "error_type", "base"), FAULTS, ids=FAULT_IDS)
def test_message_replaces_the_default(fault: ReplacingFault, error_type: str, base: str) -> None:
    changed = fault.model_copy(update={"message": "no route to host"})
    assert failure(changed).message == "no route to host"


def test_read_timeout_waits_for_the_clients_read_timeout() -> None:
    assert failure(ReadTimeout(), read_timeout_s=2.5).delay_ms == 2500
    assert failure(ReadTimeout(), read_timeout_s=0.0).delay_ms == 0


def test_read_timeout_without_a_client_timeout_fails_at_once() -> None:
    assert failure(ReadTimeout(), read_timeout_s=None).delay_ms == 0


def test_read_timeout_delay_can_be_set() -> None:
    assert failure(ReadTimeout(delay_ms=40), read_timeout_s=600.0).delay_ms == 40
    assert failure(ReadTimeout(delay_ms=0), read_timeout_s=600.0).delay_ms == 0


def test_connect_timeout_waits_for_the_clients_connect_timeout() -> None:
    assert failure(ConnectTimeout(), connect_timeout_s=2.5, read_timeout_s=30.0).delay_ms == 2500
    assert failure(ConnectTimeout(), read_timeout_s=30.0).delay_ms == 0  # none set: at once
    assert failure(ConnectTimeout(delay_ms=100), connect_timeout_s=2.5).delay_ms == 100


def test_connect_error_fails_at_once_whatever_the_timeout() -> None:
    assert failure(ConnectError(), read_timeout_s=30.0).delay_ms == 0


@pytest.mark.parametrize(
    ("spec", "fault"),
    [
        ("connect_error", ConnectError()),
        ("connect_error:times=2", ConnectError(times=2)),
        (
            "connect_error:message=Name or service not known",
            ConnectError(message="Name or service not known"),
        ),
        ("connect_timeout:delay_ms=100,nth=1", ConnectTimeout(delay_ms=100, nth=1)),
        ("read_timeout", ReadTimeout()),
        ("read_timeout:delay_ms=2500,stream=true", ReadTimeout(delay_ms=2500, stream=True)),
        ("read_timeout:provider=ollama,every=2", ReadTimeout(provider="ollama", every=2)),
    ],
)
def test_specs_parse_to_equal_models(spec: str, fault: ReplacingFault) -> None:
    assert parse_fault(spec) == fault
    assert parse_fault(fault.spec()) == fault


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ("read_timeout:delay_ms=-1", "delay_ms"),
        ("read_timeout:delay_ms=inf", "delay_ms"),
        ("connect_timeout:delay_ms=later", "delay_ms"),
    ],
)
def test_bad_values_name_the_parameter(spec: str, field: str) -> None:
    with pytest.raises(ConfigError, match=rf"parameter `{field}`: "):
        parse_fault(spec)


def test_connect_error_has_no_delay_parameter() -> None:
    with pytest.raises(ConfigError, match=r"no parameter 'delay_ms'; its parameters: .*message"):
        parse_fault("connect_error:delay_ms=5")


@given(
    name=st.sampled_from(FAULT_IDS),
    data=st.data(),
    read_timeout_s=st.none() | st.floats(0, 3600, allow_nan=False),
)
def test_any_connection_fault_round_trips_and_fails(
    name: str, data: st.DataObject, read_timeout_s: float | None
) -> None:
    fault = parse_fault({"name": name, **data.draw(fault_kwargs(name))})
    assert isinstance(fault, ReplacingFault)
    assert parse_fault(fault.spec()) == fault
    answer = failure(fault, read_timeout_s=read_timeout_s)
    assert answer.delay_ms >= 0
    if isinstance(fault, ReadTimeout) and fault.delay_ms is None:
        assert answer.delay_ms == (read_timeout_s or 0) * 1000
