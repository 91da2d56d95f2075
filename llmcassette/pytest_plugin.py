"""
The llmcassette pytest plugin: markers, fixtures and options over :func:`llmcassette.use_cassette`.

Installed, it changes nothing for a test that uses none of it. A test opts in with the
``llm_cassette``, ``llm_faults`` or ``llm_fault_matrix`` marker, or by requesting the
``llm_cassette`` fixture; pytest-recording's ``--record-mode``, ``--block-network``,
``--allowed-hosts`` and ``vcr_config`` keep their meaning. On a ``vcr`` test, llmcassette answers
httpx and httpx2 from vcrpy's cassette file, in vcrpy's record mode and matching, and writes what
it records in a form vcrpy reads.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from ._exceptions import ConfigError

# Every pytest run imports this module, most of them for tests that use no cassette: what a test
# needs (pydantic models, faults, httpx, the engine) is imported in the hooks and fixtures that
# serve such a test, never at the top (tests/plugin/test_startup.py checks it).
if TYPE_CHECKING:
    from ._cassette import Cassette
    from ._clock import VirtualClock
    from ._pytest_support import ActiveCassette, StaleCassetteWarning
    from .faults import Fault

__all__ = ["StaleCassetteWarning", "llm_cassette", "llm_clock", "llm_fault", "llm_snapshot"]

_ACTIVE: pytest.StashKey[ActiveCassette] = pytest.StashKey()
_CURRENT_ITEM = pytest.StashKey[pytest.Item]()
_MARKERS = ("llm_cassette", "llm_faults", "llm_fault_matrix")
_UNFIRED = ("ignore", "warn", "fail")


def __getattr__(name: str) -> Any:
    # `-W error::llmcassette.pytest_plugin.StaleCassetteWarning` names the class here; it lives
    # with the code that warns, imported when a filter or a test first asks for it.
    if name == "StaleCassetteWarning":
        from ._pytest_support import StaleCassetteWarning

        return StaleCassetteWarning
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    group.addoption(
        "--llm-max-age-days",
        type=float,
        default=None,
        metavar="DAYS",
        help="Warn (StaleCassetteWarning) when a test's cassette holds interactions recorded longer ago.",
    )
    parser.addini(
        "llmcassette_max_age_days",
        "Warn when a test's cassette holds interactions recorded longer ago than this many days.",
        default="",
    )
    from ._vcr_switch import add_options

    add_options(parser, group)


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
    pace, specs = config.getoption("--llm-pace"), config.getoption("--llm-faults")
    if pace is None and not specs:
        return
    from ._modes import parse_pace
    from .faults import parse_fault

    try:
        parse_pace(pace or "instant")
        for spec in specs:
            parse_fault(spec)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None


def _fail(exc: ConfigError) -> NoReturn:
    # The message alone: raised from inside the `except`, pytest would print it twice, as the
    # ConfigError and then as the failure "during handling" of it.
    __tracebackhide__ = True
    failure = pytest.fail.Exception(str(exc), pytrace=False)
    failure.__suppress_context__ = True
    raise failure


def _uses_llmcassette(item: pytest.Item) -> bool:
    from ._vcr_switch import routes

    return (
        any(item.get_closest_marker(name) for name in _MARKERS)
        or "llm_cassette" in getattr(item, "fixturenames", ())
        or routes(item)  # `--llm-vcr`: every `vcr` test
    )


def _matrix_case(item: pytest.Item) -> tuple[str, Fault] | None:
    """The ``(id, fault)`` of a fault matrix case, None for any other test."""
    case: tuple[str, Fault] | None = getattr(getattr(item, "callspec", None), "params", {}).get("llm_fault")
    return case


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    mark = metafunc.definition.get_closest_marker("llm_fault_matrix")
    if mark is None:
        return
    from ._pytest_support import matrix_faults

    try:
        cases = matrix_faults(mark.args)
    except ConfigError as exc:
        _fail(exc)
    if "llm_fault" not in metafunc.fixturenames:
        metafunc.fixturenames.append("llm_fault")
    metafunc.parametrize("llm_fault", cases, ids=[case_id for case_id, _ in cases], indirect=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names = getattr(item, "fixturenames", None)
        if not isinstance(names, list) or not _uses_llmcassette(item):
            continue
        # A marked test gets its cassette without asking for the fixture, set up before the others.
        if "llm_cassette" not in names:
            names.insert(0, "llm_cassette")
        # A fault matrix case runs on the virtual clock: retry backoff, `stall` and `read_timeout`
        # would otherwise wait for real, up to the client's read timeout (minutes for the SDKs).
        if _matrix_case(item) is not None and "llm_clock" not in names:
            names.insert(0, "llm_clock")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.config.stash[_CURRENT_ITEM] = item


@pytest.hookimpl(optionalhook=True)
def pytest_recording_configure(config: pytest.Config, vcr: Any) -> None:
    # On a `vcr` test that also uses llmcassette, llmcassette answers the libraries it intercepts
    # itself (with chunks, timing and faults); vcrpy keeps every other library.
    item = config.stash.get(_CURRENT_ITEM, None)
    if item is None or not _uses_llmcassette(item) or not hasattr(vcr, "skip_patchers"):
        return  # (vcrpy before 9.4 cannot skip httpx: the `llm_cassette` fixture says so)
    from ._intercept import VCRPY_PATCHERS

    vcr.skip_patchers = tuple(dict.fromkeys([*vcr.skip_patchers, *VCRPY_PATCHERS]))
    from ._vcr_switch import share_file

    share_file(item, vcr)  # unless the `llm_cassette` marker names a file of its own
    case = _matrix_case(item)
    if case is None or item.get_closest_marker("default_cassette") is not None:
        return
    from ._pytest_support import cassette_name, without_param_id

    # pytest-recording names each matrix case's cassette after its id; every case replays the
    # test's one recording instead, and vcrpy is pointed at the same file.
    test_class = getattr(item, "cls", None)
    own = cassette_name(test_class, item.name)
    shared = cassette_name(test_class, without_param_id(item.name, case[0]))
    original = vcr.path_transformer

    def shared_path(path: Any) -> Any:
        head, name = os.path.split(os.fspath(path))
        if name == own or name.startswith(f"{own}."):
            path = os.path.join(head, shared + name[len(own) :])
        return original(path) if original is not None else path

    vcr.path_transformer = shared_path


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


def _vcr_settings(request: pytest.FixtureRequest, vcr_owned: bool) -> dict[str, Any]:
    # pytest-recording's `vcr_config` fixture; on a `vcr` test, with the `vcr` markers' arguments
    # over it (the closest marker last), as pytest-recording merges them for vcrpy.
    if not request.config.pluginmanager.hasplugin("recording"):
        return {}
    settings = dict(request.getfixturevalue("vcr_config") or {})
    if vcr_owned:
        for mark in reversed(list(request.node.iter_markers("vcr"))):
            settings.update(mark.kwargs)
    return settings


def _record_mode(
    request: pytest.FixtureRequest, marked: dict[str, Any], settings: dict[str, Any], vcr_owned: bool
) -> Any:
    cli = request.config.getoption("--record-mode", None)
    if vcr_owned:
        # One file, one mode: the one pytest-recording gives vcrpy for the test, which lets
        # `vcr_config` and the `vcr` marker win over --record-mode ("rewrite" stays "rewrite").
        if "record_mode" in marked:
            raise ConfigError(
                f"llmcassette: {request.node.nodeid}: `llm_cassette(record_mode=...)` is not used on a "
                "`vcr` test, whose cassette file vcrpy shares: set record_mode on the `vcr` marker or "
                "in `vcr_config`, or give `llm_cassette` a path of its own."
            )
        return settings.get("record_mode") or cli or "none"
    # Elsewhere the option wins (a CI run with --record-mode=none never records), then the
    # `llm_cassette` marker, then `vcr_config`, then "none": replay only.
    if cli:
        return cli
    if "record_mode" in marked:
        return marked["record_mode"]
    return settings.get("record_mode", "none")


def _options(request: pytest.FixtureRequest) -> tuple[Path, dict[str, Any], int]:
    from ._pytest_support import (
        VCRPY_MATCH_ON,
        default_cassette_path,
        marker_faults,
        marker_options,
        relative_to,
        require_vcrpy_skip_patchers,
        vcr_match_on,
        vcr_scrubber,
        without_param_id,
    )
    from .faults import parse_fault

    item = request.node
    path_arg, options = marker_options(item)
    case = _matrix_case(item)
    faults: list[Fault] = [case[1]] if case is not None else []
    faults += [parse_fault(spec) for spec in options.pop("faults", ())]
    faults += marker_faults(item)
    own = len(faults)
    faults += [parse_fault(spec) for spec in request.config.getoption("--llm-faults")]
    vcr_cassette = None
    if item.get_closest_marker("vcr") is not None and request.config.pluginmanager.hasplugin("recording"):
        vcr_cassette = request.getfixturevalue("vcr")  # None under --disable-recording
        if vcr_cassette is not None:
            require_vcrpy_skip_patchers(item.nodeid)
    # A `vcr` test's cassette is vcrpy's file, unless the `llm_cassette` marker names another.
    vcr_owned = vcr_cassette is not None and path_arg is None
    settings = _vcr_settings(request, vcr_owned)
    if path_arg is not None:
        path = relative_to(item.path.parent, path_arg)
    elif vcr_cassette is not None:
        path = Path(vcr_cassette.path)
    else:
        name = without_param_id(item.name, case[0]) if case is not None else item.name
        path = default_cassette_path(item.path, request.cls, name)
    options["record_mode"] = _record_mode(request, options, settings, vcr_owned)
    # Pace: the CLI option `--llm-pace`, then the marker, then "instant".
    options["pace"] = request.config.getoption("--llm-pace") or options.get("pace", "instant")
    options.setdefault("allow_playback_repeats", bool(settings.get("allow_playback_repeats", False)))
    if "match_on" not in options:
        if settings.get("match_on") is not None:
            options["match_on"] = vcr_match_on(settings["match_on"], item.nodeid)
        elif vcr_owned:
            options["match_on"] = VCRPY_MATCH_ON
    if "scrub" not in options:
        # A secret the suite filters out of vcrpy's recordings stays out of llmcassette's too.
        scrubber = vcr_scrubber(settings)
        if scrubber is not None:
            options["scrub"] = scrubber
    # What llmcassette records into vcrpy's file stays readable by vcrpy alone.
    options.setdefault("vcrpy_compatible", vcr_owned)
    if vcr_owned:
        from ._vcr_switch import vcr_hooks

        # vcrpy's hooks (`vcr_config` filters, before_record_*) apply to llmcassette's traffic.
        options["interaction_filter"] = vcr_hooks(item, vcr_cassette, options.get("scrub", True))
    options["faults"] = faults
    return path, options, own


@pytest.fixture
def llm_cassette(request: pytest.FixtureRequest) -> Iterator[Cassette]:
    """The test's active llmcassette cassette (interactions, attempt log, fault plan)."""
    __tracebackhide__ = True
    from ._api import use_cassette
    from ._pytest_support import ActiveCassette, warn_if_stale

    if "llm_clock" in request.fixturenames:
        request.getfixturevalue("llm_clock")  # the clock first, so the cassette runs on it
    try:
        path, options, own = _options(request)
        context = use_cassette(path, **options)
    except ConfigError as exc:
        _fail(exc)
    max_age_days = _max_age_days(request.config)  # a bad setting fails before the cassette is active
    active = ActiveCassette(context, context.__enter__(), own)
    request.node.stash[_ACTIVE] = active
    try:
        warn_if_stale(active.cassette, max_age_days, request.node.nodeid)
        yield active.cassette
    finally:
        del request.node.stash[_ACTIVE]
        active.close()


def _max_age_days(config: pytest.Config) -> float | None:
    option: float | None = config.getoption("--llm-max-age-days")
    if option is not None:
        return option
    ini = str(config.getini("llmcassette_max_age_days")).strip()
    try:
        return float(ini) if ini else None
    except ValueError:
        raise pytest.UsageError(
            f"llmcassette: the ini setting llmcassette_max_age_days must be a number of days, not {ini!r}."
        ) from None


@pytest.fixture
def llm_clock() -> Iterator[VirtualClock]:
    """A virtual clock, active for the test: sleeps return at once and are recorded."""
    from ._clock import VirtualClock

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
