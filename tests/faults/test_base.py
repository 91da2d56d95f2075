"""The fault model itself: spec parsing and errors, the registry, schedules, filters and the plan."""

from __future__ import annotations

from typing import Any, get_args

import pytest
from hypothesis import given, strategies as st

from llmcassette import ConfigError
from llmcassette._fault_catalog import FAMILIES
from llmcassette.faults import (
    ConnectError,
    Fault,
    FaultFamily,
    FaultPlan,
    RateLimit,
    ReplacingFault,
    ServerError,
    SessionFault,
    StreamFault,
    Unavailable,
    fault_names,
    fault_types,
    parse_fault,
)
from tests.faults import request_to

# -- spec strings ---------------------------------------------------------------------------------


def test_the_documented_spec_parses_to_the_equal_model() -> None:
    assert parse_fault("rate_limit:retry_after_ms=250,times=2") == RateLimit(retry_after_ms=250, times=2)


def test_a_spec_without_parameters_is_the_default_fault() -> None:
    assert parse_fault("server_error") == ServerError()
    assert parse_fault("  server_error  ") == ServerError()


def test_spaces_around_parameters_and_empty_items_are_ignored() -> None:
    assert parse_fault("rate_limit: times = 2 , , nth=1,") == RateLimit(times=2, nth=1)


def test_a_mapping_with_a_name_key_parses_like_a_spec() -> None:
    assert parse_fault({"name": "rate_limit", "times": 2, "retry_after_ms": 250}) == RateLimit(
        retry_after_ms=250, times=2
    )


def test_a_fault_is_returned_as_it_is() -> None:
    fault = Unavailable(every=2)
    assert parse_fault(fault) is fault


@pytest.mark.parametrize("name", fault_names())
def test_every_example_parses_to_its_fault_and_round_trips(name: str) -> None:
    cls = fault_types()[name]
    assert cls.example.startswith(name), f"{cls.__name__}.example should start with its name"
    fault = parse_fault(cls.example)
    assert type(fault) is cls
    assert parse_fault(fault.spec()) == fault
    assert str(fault) == fault.spec()


@pytest.mark.parametrize("name", fault_names())
def test_every_fault_describes_itself(name: str) -> None:
    cls = fault_types()[name]
    assert cls.name == name
    assert cls.summary and "\n" not in cls.summary
    assert cls.__doc__ and cls.__doc__.strip()
    assert issubclass(cls, ReplacingFault | StreamFault | SessionFault)


_DEFAULT_CONSTRUCTIBLE = [
    name
    for name, cls in sorted(fault_types().items())
    if not any(field.is_required() for field in cls.model_fields.values())
]


@pytest.mark.parametrize("name", _DEFAULT_CONSTRUCTIBLE)
def test_a_default_fault_writes_its_bare_name(name: str) -> None:
    cls = fault_types()[name]
    assert cls().spec() == name
    assert parse_fault(name) == cls()


_SCHEDULE_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "times": st.integers(1, 1000),
    "nth": st.integers(1, 1000),
    "every": st.integers(1, 1000),
    "probability": st.floats(0, 1),
    "seed": st.integers(-(10**6), 10**6),
    "path": st.sampled_from(["/v1/chat/*", "*/messages", "/api/[cg]*"]),
    "provider": st.sampled_from(["openai", "anthropic", "generic"]),
    "stream": st.booleans(),
}


@given(
    cls=st.sampled_from([RateLimit, ServerError, ConnectError]),
    fields=st.fixed_dictionaries({}, optional=_SCHEDULE_FIELDS),
)
def test_schedule_and_filter_fields_round_trip_through_specs(
    cls: type[Fault], fields: dict[str, Any]
) -> None:
    fault = cls(**fields)
    assert parse_fault(fault.spec()) == fault
    assert parse_fault({"name": cls.name, **fields}) == fault


# -- spec errors ----------------------------------------------------------------------------------


def test_an_unknown_name_lists_the_known_faults() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_fault("rate_limited:times=2")
    message = str(caught.value)
    assert message.startswith("llmcassette: unknown fault 'rate_limited'")
    assert "known faults: " + ", ".join(fault_names()) in message
    for name in ("rate_limit", "connect_error", "read_timeout", "status", "overloaded"):
        assert name in message


def test_a_mapping_without_a_name_lists_the_known_faults() -> None:
    with pytest.raises(ConfigError, match="unknown fault '' .*known faults: .*rate_limit"):
        parse_fault({"times": 2})


def test_an_unknown_parameter_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_fault("rate_limit:retry_after_s=2")
    message = str(caught.value)
    assert "fault 'rate_limit' has no parameter 'retry_after_s'" in message
    assert "its parameters: " + ", ".join(sorted(RateLimit.model_fields)) in message
    for key in ("retry_after", "retry_after_ms", "retry_after_date", "times", "seed", "path"):
        assert key in message


def test_an_item_without_equals_says_how_to_write_it() -> None:
    with pytest.raises(ConfigError, match=r"has 'times' where `key=value` belongs.*`rate_limit:key=value"):
        parse_fault("rate_limit:times")


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ("rate_limit:times=0", "times"),
        ("rate_limit:times=two", "times"),
        ("server_error:nth=-1", "nth"),
        ("server_error:every=0", "every"),
        ("server_error:probability=1.5", "probability"),
        ("server_error:stream=maybe", "stream"),
        ("status", "code"),
        ("status:code=99", "code"),
        ("status:code=600", "code"),
    ],
)
def test_a_bad_value_names_the_parameter(spec: str, field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_fault(spec)
    message = str(caught.value)
    assert message.startswith(f"llmcassette: fault spec {spec!r}: parameter `{field}`: ")
    assert message.endswith(".")


def test_config_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_fault("nope")


def test_a_second_fault_with_a_taken_name_is_refused() -> None:
    with pytest.raises(TypeError, match="fault name 'rate_limit' is already used by RateLimit"):

        class Again(ReplacingFault):
            name = "rate_limit"

    assert fault_types()["rate_limit"] is RateLimit


def test_a_fault_without_a_family_is_refused_at_registration() -> None:
    with pytest.raises(TypeError) as caught:

        class NoFamily(ReplacingFault):
            name = "no_family"

    assert str(caught.value) == (
        "llmcassette: fault 'no_family' (NoFamily) has no family; set its `family` class attribute to "
        "one of status, connection, stream, websocket, or derive it from that family's base class."
    )
    assert "no_family" not in fault_types()


def test_a_fault_with_an_unknown_family_is_refused_at_registration() -> None:
    with pytest.raises(
        TypeError, match=r"fault 'odd_family' \(OddFamily\) has family 'network', which is not one;"
    ):

        class OddFamily(ReplacingFault):
            name = "odd_family"
            family = "network"  # type: ignore[assignment]

    assert "odd_family" not in fault_types()


def test_an_unnamed_base_class_needs_no_family() -> None:
    # Only registered faults are listed, so only they must say their family.
    class Unnamed(ReplacingFault):
        pass

    assert not hasattr(Unnamed, "family")
    assert Unnamed not in fault_types().values()


def test_the_family_type_and_the_documented_families_agree() -> None:
    assert list(get_args(FaultFamily)) == list(FAMILIES)
    assert all(meaning and not meaning.endswith(".") for meaning in FAMILIES.values())


@pytest.mark.parametrize("name", fault_names())
def test_every_registered_fault_has_a_family(name: str) -> None:
    cls = fault_types()[name]
    assert cls.family in FAMILIES
    assert (cls.family == "stream") == issubclass(cls, StreamFault)
    assert (cls.family == "websocket") == issubclass(cls, SessionFault)


def test_faults_are_frozen_and_reject_unknown_fields() -> None:
    fault = RateLimit(times=2)
    with pytest.raises(ValueError):
        fault.times = 3
    with pytest.raises(ValueError):
        RateLimit(retry_after_s=2)  # type: ignore[call-arg]


# -- schedules ------------------------------------------------------------------------------------


def fired(fault: Fault, calls: int = 12) -> list[int]:
    return [call for call in range(1, calls + 1) if fault.fires_on(call)]


def test_without_a_schedule_a_fault_fires_on_every_call() -> None:
    assert fired(ServerError()) == list(range(1, 13))


def test_times_fires_on_the_first_n_calls() -> None:
    assert fired(ServerError(times=3)) == [1, 2, 3]


def test_nth_fires_only_on_that_call() -> None:
    assert fired(ServerError(nth=4)) == [4]


def test_every_fires_on_each_multiple() -> None:
    assert fired(ServerError(every=3)) == [3, 6, 9, 12]


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (ServerError(times=7, every=2), [2, 4, 6]),
        (ServerError(nth=6, every=3), [6]),
        (ServerError(nth=5, every=3), []),
        (ServerError(nth=3, times=2), []),
        (ServerError(times=4, probability=1.0), [1, 2, 3, 4]),
        (ServerError(every=2, probability=0.0), []),
    ],
)
def test_schedule_conditions_combine_as_and(fault: Fault, expected: list[int]) -> None:
    assert fired(fault) == expected


@given(
    times=st.none() | st.integers(1, 50),
    nth=st.none() | st.integers(1, 50),
    every=st.none() | st.integers(1, 50),
    call=st.integers(1, 200),
)
def test_schedules_follow_their_definition(
    times: int | None, nth: int | None, every: int | None, call: int
) -> None:
    expected = (
        (times is None or call <= times)
        and (nth is None or call == nth)
        and (every is None or call % every == 0)
    )
    assert ServerError(times=times, nth=nth, every=every).fires_on(call) is expected


def test_probability_is_deterministic_for_a_seed() -> None:
    first = fired(ServerError(probability=0.5, seed=7), 1000)
    again = fired(ServerError(probability=0.5, seed=7), 1000)
    other = fired(ServerError(probability=0.5, seed=8), 1000)
    assert first == again
    assert first != other


@pytest.mark.parametrize("probability", [0.05, 0.3, 0.5, 0.9])
@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_probability_fires_in_proportion(probability: float, seed: int) -> None:
    count = len(fired(ServerError(probability=probability, seed=seed), 1000))
    # Four standard deviations of a binomial(1000, p): a fair draw stays well inside.
    spread = 4 * (1000 * probability * (1 - probability)) ** 0.5
    assert abs(count - 1000 * probability) < spread


def test_probability_zero_never_fires_and_one_always_does() -> None:
    assert fired(ServerError(probability=0.0), 1000) == []
    assert fired(ServerError(probability=1.0), 1000) == list(range(1, 1001))


def test_different_faults_with_one_seed_draw_differently() -> None:
    # The fault name is part of the draw, so two faults at 50 % do not always fire together.
    assert fired(ServerError(probability=0.5), 200) != fired(RateLimit(probability=0.5), 200)


# -- filters --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("glob", "path", "expected"),
    [
        ("/v1/chat/*", "/v1/chat/completions", True),
        ("/v1/chat/*", "/v1/messages", False),
        ("*/messages", "/v1/messages", True),
        ("/v1/*", "/v1/chat/completions", True),
        ("/v1/chat/completions", "/v1/chat/completions", True),
        ("/V1/*", "/v1/messages", False),
        ("/v1beta/models/*:streamGenerateContent", "/v1beta/models/gemini-2.5:streamGenerateContent", True),
    ],
)
def test_path_is_a_case_sensitive_glob_on_the_url_path(glob: str, path: str, expected: bool) -> None:
    fault = ServerError(path=glob)
    assert fault.applies_to(request_to(path), provider="openai", streaming=False) is expected


def test_the_path_filter_ignores_the_query_string() -> None:
    request = request_to("/v1/chat/completions?api-version=2024-10-21")
    assert ServerError(path="/v1/chat/completions").applies_to(
        request, provider="azure-openai", streaming=False
    )


def test_provider_filters_by_profile_name() -> None:
    fault = ServerError(provider="anthropic")
    request = request_to("/v1/messages")
    assert fault.applies_to(request, provider="anthropic", streaming=False)
    assert not fault.applies_to(request, provider="openai", streaming=False)


@pytest.mark.parametrize(
    ("stream", "streaming", "expected"),
    [
        (None, True, True),
        (None, False, True),
        (True, True, True),
        (True, False, False),
        (False, True, False),
        (False, False, True),
    ],
)
def test_stream_filters_streaming_or_not(stream: bool | None, streaming: bool, expected: bool) -> None:
    fault = ServerError(stream=stream)
    assert (
        fault.applies_to(request_to("/v1/chat/completions"), provider="openai", streaming=streaming)
        is expected
    )


def test_filters_combine_as_and() -> None:
    fault = ServerError(path="/v1/*", provider="openai", stream=True)
    request = request_to("/v1/chat/completions")
    assert fault.applies_to(request, provider="openai", streaming=True)
    assert not fault.applies_to(request, provider="openai", streaming=False)
    assert not fault.applies_to(request, provider="groq", streaming=True)
    assert not fault.applies_to(request_to("/api/chat"), provider="openai", streaming=True)


# -- the plan -------------------------------------------------------------------------------------


def select(plan: FaultPlan, path: str, *, provider: str = "openai", streaming: bool = False) -> list[str]:
    return [
        f"{fault.name}#{call}"
        for fault, call in plan.select(request_to(path), provider=provider, streaming=streaming)
    ]


def test_the_plan_counts_only_calls_that_pass_the_filter() -> None:
    plan = FaultPlan([ServerError(path="/v1/chat/*", nth=2)])
    assert select(plan, "/v1/messages") == []
    assert select(plan, "/v1/chat/completions") == []
    assert select(plan, "/v1/messages") == []
    assert select(plan, "/v1/chat/completions") == ["server_error#2"]
    assert select(plan, "/v1/chat/completions") == []


def test_the_plan_counts_each_fault_separately_and_keeps_plan_order() -> None:
    plan = FaultPlan(["rate_limit:times=2", "server_error:every=2", "unavailable:stream=true"])
    assert select(plan, "/v1/chat/completions") == ["rate_limit#1"]
    assert select(plan, "/v1/chat/completions", streaming=True) == [
        "rate_limit#2",
        "server_error#2",
        "unavailable#1",
    ]
    assert select(plan, "/v1/chat/completions") == []
    assert select(plan, "/v1/chat/completions", streaming=True) == ["server_error#4", "unavailable#2"]


def test_the_plan_reports_fired_and_unfired_faults() -> None:
    plan = FaultPlan([RateLimit(times=2), {"name": "not_found", "provider": "gemini"}])
    assert plan and not FaultPlan()
    for _ in range(3):
        select(plan, "/v1/chat/completions")
    assert [(fault.name, count) for fault, count in plan.fired_counts()] == [
        ("rate_limit", 2),
        ("not_found", 0),
    ]
    assert [fault.name for fault in plan.unfired()] == ["not_found"]


def test_the_plan_is_reproducible_with_probability() -> None:
    def run() -> list[list[str]]:
        plan = FaultPlan(["server_error:probability=0.4,seed=3", "rate_limit:probability=0.4,seed=3"])
        return [select(plan, "/v1/chat/completions") for _ in range(100)]

    decisions = run()
    assert decisions == run()
    assert any(decisions) and not all(decisions)


def test_the_plan_rejects_a_bad_spec_up_front() -> None:
    with pytest.raises(ConfigError, match="unknown fault 'rate'"):
        FaultPlan(["rate:times=1"])


# -- limits -------------------------------------------------------------------------------------


def test_every_numeric_or_text_parameter_of_every_fault_has_a_bound() -> None:
    from annotated_types import Le, MaxLen

    for name, cls in fault_types().items():
        for field_name, info in cls.model_fields.items():
            kinds = {arg for arg in get_args(info.annotation) or (info.annotation,) if arg is not type(None)}
            if kinds & {int, float}:
                assert any(isinstance(m, Le) for m in info.metadata), f"{name}.{field_name} has no maximum"
            if str in kinds:
                assert any(isinstance(m, MaxLen) for m in info.metadata), (
                    f"{name}.{field_name} has no max length"
                )


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("slow:ttfb_ms=1e308", "`ttfb_ms`: Input should be less than or equal to 3600000"),
        ("slow:gap_ms=inf", "`gap_ms`: Input should be a finite number"),
        ("stall:seconds=86400", "`seconds`: Input should be less than or equal to 3600"),
        ("read_timeout:delay_ms=-1", "`delay_ms`: Input should be greater than or equal to 0"),
        ("rate_limit:retry_after=nan", "`retry_after`: Input should be a finite number"),
        ("rate_limit:times=1000001", "`times`: Input should be less than or equal to 1000000"),
        ("rechunk:size=1000000000", "`size`: Input should be less than or equal to 67108864"),
        ("server_error:message=" + "x" * 1001, "`message`: String should have at most 1000 characters"),
    ],
)
def test_a_parameter_out_of_its_range_is_refused_in_words(spec: str, words: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_fault(spec)
    assert str(error.value).startswith("llmcassette: fault spec ")
    assert words in str(error.value)
    assert len(str(error.value)) < 300  # a long spec is quoted in part


def test_a_plan_holds_at_most_max_faults() -> None:
    from llmcassette.faults._base import MAX_FAULTS

    assert len(FaultPlan(["rate_limit"] * MAX_FAULTS).faults) == MAX_FAULTS
    with pytest.raises(ConfigError, match=r"^llmcassette: 1000 faults were given where at most 32 may apply"):
        FaultPlan(["slow:gap_ms=1"] * 1000)
