"""Fault matrices: the standard set, the named sets, and resolving a matrix argument into cases."""

from __future__ import annotations

import re

import pytest

from llmcassette import ConfigError, faults
from llmcassette._matrix import FAULT_SETS, STANDARD_FAULTS, resolve_matrix
from llmcassette.faults import fault_names, parse_fault

pytest_plugins = ["pytester"]

ALL_ENTRIES = [
    (set_name, key, spec) for set_name, entries in FAULT_SETS.items() for key, spec in entries.items()
]
# What pytest ids may hold without escaping, and people can read: no spaces, quotes or brackets.
READABLE_ID = re.compile(r"[a-z0-9_][a-z0-9_.=/*-]*")


@pytest.mark.parametrize(
    ("set_name", "key", "spec"), ALL_ENTRIES, ids=[f"{s}-{k}" for s, k, _ in ALL_ENTRIES]
)
def test_every_set_entry_parses_and_round_trips(set_name: str, key: str, spec: str) -> None:
    fault = parse_fault(spec)
    assert parse_fault(fault.spec()) == fault
    assert READABLE_ID.fullmatch(key), key
    # An id names its fault: the fault's own name, or a refinement of it (`rechunk_1_byte`).
    assert key.startswith(fault.name), (key, fault.name)


def test_the_standard_set_covers_the_acceptance_checks() -> None:
    names = {parse_fault(spec).name for spec in STANDARD_FAULTS.values()}
    assert names >= {
        "rate_limit",
        "server_error",
        "overloaded",
        "unauthorized",
        "connect_error",
        "read_timeout",
        "empty_stream",
        "malformed_chunk",
        "truncate",
        "disconnect",
        "error_event",
        "rechunk",
        "stall",
    }
    assert set(FAULT_SETS) == {"standard", "status", "stream", "connection", "websocket"}
    assert FAULT_SETS["standard"] is STANDARD_FAULTS


def test_transient_faults_fire_once_and_permanent_ones_always() -> None:
    # The schedule is what makes each case end within one test: a retrying client gets the
    # recording after a transient failure, and never gets past a bad key.
    for key in ("rate_limit", "server_error", "overloaded", "connect_error", "read_timeout", "truncate"):
        assert parse_fault(STANDARD_FAULTS[key]).times == 1, key
    unauthorized = parse_fault(STANDARD_FAULTS["unauthorized"])
    assert (unauthorized.times, unauthorized.nth, unauthorized.every) == (None, None, None)


def test_family_sets_hold_only_their_family() -> None:
    families = {
        "status": faults.status.__all__,
        "connection": faults.connection.__all__,
        "stream": faults.stream.__all__,
    }
    for set_name, classes in families.items():
        for key, fault in resolve_matrix(set_name):
            assert type(fault).__name__ in classes, (set_name, key)


@pytest.mark.parametrize("set_name", sorted(FAULT_SETS))
def test_a_set_name_resolves_to_its_keys_in_order(set_name: str) -> None:
    cases = resolve_matrix(set_name)
    assert [case_id for case_id, _ in cases] == list(FAULT_SETS[set_name])
    assert [fault for _, fault in cases] == [parse_fault(spec) for spec in FAULT_SETS[set_name].values()]


def test_a_list_takes_ids_from_fault_names() -> None:
    cases = resolve_matrix(["rate_limit:times=2", faults.ServerError(times=1), {"name": "truncate"}])
    assert [case_id for case_id, _ in cases] == ["rate_limit", "server_error", "truncate"]
    assert cases[0][1] == faults.RateLimit(times=2)
    assert cases[1][1] == faults.ServerError(times=1)


def test_one_spec_or_model_is_a_matrix_of_one() -> None:
    assert resolve_matrix("rate_limit:times=1") == [("rate_limit", faults.RateLimit(times=1))]
    assert resolve_matrix("truncate") == [("truncate", faults.Truncate())]
    assert resolve_matrix(faults.Stall(after=1)) == [("stall", faults.Stall(after=1))]


def test_repeated_names_are_told_apart_by_what_differs() -> None:
    cases = resolve_matrix(
        ["rate_limit:retry_after_ms=250,times=1", "rate_limit:retry_after=2,times=1", "server_error"]
    )
    # `times=1` is common to both rate limits, so it says nothing; 250.0 reads as 250.
    assert [case_id for case_id, _ in cases] == [
        "rate_limit-retry_after_ms=250",
        "rate_limit-retry_after=2",
        "server_error",
    ]


def test_identical_faults_still_get_unique_ids() -> None:
    ids = [case_id for case_id, _ in resolve_matrix(["rechunk", "rechunk", "rechunk:mode=adversarial"])]
    assert ids == ["rechunk", "rechunk-2", "rechunk-mode=adversarial"]
    assert len(set(ids)) == len(ids)


def test_ids_are_unique_in_every_set() -> None:
    for set_name in FAULT_SETS:
        ids = [case_id for case_id, _ in resolve_matrix(set_name)]
        assert len(ids) == len(set(ids)), set_name


def test_an_unknown_set_lists_the_sets_and_the_faults() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_matrix("standart")
    message = str(info.value)
    assert message.startswith("llmcassette: unknown fault set 'standart'")
    assert "connection, standard, status, stream" in message
    assert ", ".join(fault_names()) in message


def test_a_bad_spec_in_a_list_names_the_valid_faults() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_matrix(["rate_limit", "rate_limimt:times=1"])
    assert str(info.value).startswith("llmcassette: unknown fault 'rate_limimt'")
    assert ", ".join(fault_names()) in str(info.value)


def test_a_bad_parameter_names_the_valid_parameters() -> None:
    with pytest.raises(ConfigError, match=r"^llmcassette: fault 'rate_limit' has no parameter 'tims'"):
        resolve_matrix("rate_limit:tims=1")


def test_an_empty_matrix_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"^llmcassette: the fault matrix is empty"):
        resolve_matrix([])


def test_ids_work_as_pytest_ids(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from llmcassette._matrix import resolve_matrix

        CASES = resolve_matrix("standard")

        @pytest.mark.parametrize("fault", [f for _, f in CASES], ids=[i for i, _ in CASES])
        def test_chat(fault):
            pass
        """
    )
    result = pytester.runpytest("-v", "-p", "no:cacheprovider", "-p", "no:hypothesispytest")
    result.assert_outcomes(passed=len(STANDARD_FAULTS))
    result.stdout.fnmatch_lines(["*test_chat?rate_limit? PASSED*", "*test_chat?rechunk_1_byte? PASSED*"])
