"""
The llmcassette pytest plugin: markers, fixtures and options over :func:`llmcassette.use_cassette`.

Installed, it changes nothing for a test that uses none of it. A test opts in with the
``llm_cassette``, ``llm_faults`` or ``llm_fault_matrix`` marker, or by requesting the
``llm_cassette`` fixture; pytest-recording's ``--record-mode``, ``--block-network``,
``--allowed-hosts`` and ``vcr_config`` keep their meaning.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ._api import use_cassette
from ._cassette import Cassette
from ._clock import VirtualClock
from ._exceptions import ConfigError
from ._modes import parse_pace
from ._pytest_support import (
    ActiveCassette,
    default_cassette_path,
    marker_faults,
    marker_options,
    matrix_faults,
    relative_to,
    without_param_id,
)
from .faults import Fault, parse_fault

__all__ = ["llm_cassette", "llm_clock", "llm_fault", "llm_snapshot"]

_ACTIVE = pytest.StashKey[ActiveCassette]()
_CURRENT_ITEM = pytest.StashKey[pytest.Item]()
_MARKERS = ("llm_cassette", "llm_faults", "llm_fault_matrix")
_UNFIRED = ("ignore", "warn", "fail")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("llmcassette", "llmcassette: record/replay of LLM traffic")
    group.addoption(
        "--llm-pace",
        default=None,
        help="Replay pace of every llm cassette: 'instant' (default), 'recorded', or a speed factor.",
    )
    group.addoption(
        "--llm-faults",
        action="append",
        default=[],
        metavar="SPEC",
        help="Add a fault (spec such as 'rate_limit:times=1') to every test that uses an llm cassette. "
        "Repeatable.",
    )
    group.addoption(
        "--llm-unfired",
        default="fail",
        choices=_UNFIRED,
        help="What a passing test does when a fault it was given never fired: fail (default), warn, ignore.",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "llm_cassette(path=None, *, record_mode, pace, match_on, faults, ...): record and replay the "
        "test's LLM traffic with llmcassette (default path cassettes/<module>/<test>.yaml).",
    )
    config.addinivalue_line(
        "markers", "llm_faults(*faults): inject faults (specs or models) into the test's llm cassette."
    )
    config.addinivalue_line(
        "markers",
        "llm_fault_matrix(faults): run the test once per fault ('standard', another set name, or a list).",
    )
    try:
        parse_pace(config.getoption("--llm-pace") or "instant")
        for spec in config.getoption("--llm-faults"):
            parse_fault(spec)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None


def _uses_llmcassette(item: pytest.Item) -> bool:
    return any(item.get_closest_marker(name) for name in _MARKERS) or "llm_cassette" in getattr(
        item, "fixturenames", ()
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    mark = metafunc.definition.get_closest_marker("llm_fault_matrix")
    if mark is None:
        return
    try:
        cases = matrix_faults(mark.args)
    except ConfigError as exc:
        pytest.fail(str(exc), pytrace=False)
    if "llm_fault" not in metafunc.fixturenames:
        metafunc.fixturenames.append("llm_fault")
    metafunc.parametrize("llm_fault", cases, ids=[case_id for case_id, _ in cases], indirect=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A marked test gets its cassette without asking for the fixture, set up before the others.
    for item in items:
        names = getattr(item, "fixturenames", None)
        if isinstance(names, list) and "llm_cassette" not in names and _uses_llmcassette(item):
            names.insert(0, "llm_cassette")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.config.stash[_CURRENT_ITEM] = item


@pytest.hookimpl(optionalhook=True)
def pytest_recording_configure(config: pytest.Config, vcr: Any) -> None:
    # On a `vcr` test that also uses llmcassette, llmcassette answers httpx/httpx2 itself (with
    # chunks, timing and faults); vcrpy keeps every other library.
    item = config.stash.get(_CURRENT_ITEM, None)
    if item is not None and _uses_llmcassette(item):
        vcr.skip_patchers = tuple(dict.fromkeys([*vcr.skip_patchers, "httpx", "httpx2"]))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    active = item.stash.get(_ACTIVE, None)
    if active is None:
        return (yield)
    try:
        result = yield
    except BaseException as exc:
        active.error = exc
        active.explain(exc)
        raise
    active.check_passed(item.config.getoption("--llm-unfired"))
    return result


def _record_mode(request: pytest.FixtureRequest, marked: dict[str, Any], vcr_cassette: Any) -> Any:
    # Take the record mode with the most priority:
    #  - the explicit CLI option `--record-mode` (pytest-recording's)
    #  - on a `vcr` test, the mode pytest-recording gave its cassette
    #  - the `llm_cassette` marker
    #  - the `vcr_config` fixture
    #  - "none": replay only, safe for CI
    cli = request.config.getoption("--record-mode", None)
    if cli:
        return cli
    if vcr_cassette is not None:
        return getattr(vcr_cassette.record_mode, "value", vcr_cassette.record_mode)
    if "record_mode" in marked:
        return marked["record_mode"]
    return _vcr_config(request).get("record_mode", "none")


def _vcr_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    if not request.config.pluginmanager.hasplugin("recording"):
        return {}
    return dict(request.getfixturevalue("vcr_config") or {})


def _options(request: pytest.FixtureRequest) -> tuple[Path, dict[str, Any], int]:
    item = request.node
    path_arg, options = marker_options(item)
    case = getattr(getattr(item, "callspec", None), "params", {}).get("llm_fault")
    faults: list[Fault] = [case[1]] if case is not None else []
    faults += [parse_fault(spec) for spec in options.pop("faults", ())]
    faults += marker_faults(item)
    own = len(faults)
    faults += [parse_fault(spec) for spec in request.config.getoption("--llm-faults")]
    vcr_cassette = None
    if item.get_closest_marker("vcr") is not None and request.config.pluginmanager.hasplugin("recording"):
        vcr_cassette = request.getfixturevalue("vcr")
    if path_arg is not None:
        path = relative_to(item.path.parent, path_arg)
    elif vcr_cassette is not None:
        path = Path(vcr_cassette.path)
    else:
        name = without_param_id(item.name, case[0]) if case is not None else item.name
        path = default_cassette_path(item.path, request.cls, name)
    options["record_mode"] = _record_mode(request, options, vcr_cassette)
    # Pace: the CLI option `--llm-pace`, then the marker, then "instant".
    options["pace"] = request.config.getoption("--llm-pace") or options.get("pace", "instant")
    config = _vcr_config(request) if vcr_cassette is None else {}
    options.setdefault("allow_playback_repeats", config.get("allow_playback_repeats", False))
    options["faults"] = faults
    return path, options, own


@pytest.fixture
def llm_cassette(request: pytest.FixtureRequest) -> Iterator[Cassette]:
    """The test's active llmcassette cassette (interactions, attempt log, fault plan)."""
    __tracebackhide__ = True
    if "llm_clock" in request.fixturenames:
        request.getfixturevalue("llm_clock")  # the clock first, so the cassette runs on it
    try:
        path, options, own = _options(request)
        context = use_cassette(path, **options)
    except ConfigError as exc:
        pytest.fail(str(exc), pytrace=False)
    active = ActiveCassette(context, context.__enter__(), own)
    request.node.stash[_ACTIVE] = active
    try:
        yield active.cassette
    finally:
        del request.node.stash[_ACTIVE]
        active.close()


@pytest.fixture
def llm_clock() -> Iterator[VirtualClock]:
    """A virtual clock, active for the test: sleeps return at once and are recorded."""
    with VirtualClock() as clock:
        yield clock


@pytest.fixture
def llm_fault(request: pytest.FixtureRequest) -> Fault | None:
    """The fault this `llm_fault_matrix` case runs under (None outside a matrix)."""
    case = getattr(request, "param", None)
    return case[1] if case is not None else None


@pytest.fixture
def llm_snapshot(snapshot: Any) -> Any:
    """A syrupy snapshot of normalised LLM events, one `<test>.events.jsonl` file per assertion."""
    from ._snapshot import LLMStreamSnapshotExtension

    return snapshot.with_defaults(extension_class=LLMStreamSnapshotExtension)
