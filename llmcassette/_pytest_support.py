"""
What the pytest plugin works out for one test: its cassette path, options and faults.

Kept apart from ``pytest_plugin`` so that module stays hooks and fixtures only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ._api import CassetteContext
from ._cassette import Cassette
from ._exceptions import ConfigError
from ._matching import MATCHERS
from ._scrub import Scrubber
from .faults import Fault, parse_fault

__all__ = [
    "MARKER_OPTIONS",
    "VCRPY_MATCH_ON",
    "ActiveCassette",
    "StaleCassetteWarning",
    "UnfiredFaultWarning",
    "cassette_name",
    "default_cassette_path",
    "marker_faults",
    "marker_options",
    "matrix_faults",
    "relative_to",
    "require_vcrpy_skip_patchers",
    "vcr_match_on",
    "vcr_scrubber",
    "warn_if_stale",
    "without_param_id",
]

#: The keyword arguments the ``llm_cassette`` marker passes on to ``use_cassette``.
MARKER_OPTIONS = (
    "record_mode",
    "pace",
    "match_on",
    "ignored_body_fields",
    "scrub",
    "allow_playback_repeats",
    "decode_compressed",
    "faults",
    "provider",
    "vcrpy_compatible",
)

# Characters that cannot be in a file name on some system, as pytest-recording replaces them.
_FORBIDDEN = "<>?%*:|\"'/\\"
try:
    # The longest file name the system takes: longer cassette names end in a hash instead.
    _MAX_NAME = os.pathconf(".", "PC_NAME_MAX")
except (AttributeError, ValueError, OSError):  # pragma: no cover - not POSIX
    _MAX_NAME = 255


class UnfiredFaultWarning(UserWarning):
    """A fault given to a test never fired (``--llm-unfired=warn``)."""


def cassette_name(test_class: type | None, test_name: str, suffix: str = ".yaml") -> str:
    """
    ``Class.test_name`` or ``test_name``, safe as a file name, without ``suffix``: the name
    pytest-recording gives the test's cassette (a name too long for the system ends in a hash).
    """
    name = f"{test_class.__name__}.{test_name}" if test_class is not None else test_name
    for char in _FORBIDDEN:
        name = name.replace(char, "-")
    if len(name) + len(suffix) > _MAX_NAME:
        digest = hashlib.md5(name.encode()).hexdigest()
        name = f"{name[: _MAX_NAME - len(suffix) - len(digest) - 3]}...{digest}"
    return name


def default_cassette_path(test_file: Path, test_class: type | None, test_name: str) -> Path:
    """``<test file dir>/cassettes/<test module>/<test name>.yaml``, as pytest-recording names it."""
    return test_file.parent / "cassettes" / test_file.stem / f"{cassette_name(test_class, test_name)}.yaml"


def without_param_id(name: str, case_id: str) -> str:
    """A test's name without one parametrization id: every fault case shares one recording."""
    base, bracket, rest = name.partition("[")
    if not bracket or not rest.endswith("]"):
        return name
    parts = rest[:-1]
    if parts == case_id:
        return base
    if parts.startswith(f"{case_id}-"):
        return f"{base}[{parts[len(case_id) + 1 :]}]"
    if parts.endswith(f"-{case_id}"):
        return f"{base}[{parts[: -len(case_id) - 1]}]"
    return f"{base}[{parts.replace(f'-{case_id}-', '-', 1)}]"


#: What vcrpy matches on when its configuration does not say: no body.
VCRPY_MATCH_ON = ("method", "scheme", "host", "port", "path", "query")


def vcr_match_on(names: Any, node_id: str) -> tuple[str, ...]:
    """
    vcrpy's ``match_on`` names as llmcassette's: ``raw_body`` is the body (compared as canonical
    JSON, as llmcassette compares bodies); a part llmcassette cannot match on is a ``ConfigError``.
    """
    if isinstance(names, str) or not isinstance(names, Sequence):
        names = [names]
    translated = ["body" if name == "raw_body" else name for name in names]
    unknown = [name for name in translated if not isinstance(name, str) or name not in MATCHERS]
    if unknown:
        raise ConfigError(
            f"llmcassette: {node_id}: `vcr_config` (or the `vcr` marker) matches requests on "
            f"{', '.join(repr(name) for name in unknown)}, which llmcassette cannot match on (it matches "
            f"on {', '.join(sorted(MATCHERS))}). Give the test its own "
            "`@pytest.mark.llm_cassette(match_on=[...])`, or leave those parts out of match_on."
        )
    return tuple(dict.fromkeys(translated))


#: The first vcrpy whose patching llmcassette can take httpx and httpx2 out of (`skip_patchers`).
VCRPY_SKIP_PATCHERS = (9, 4)


def require_vcrpy_skip_patchers(node_id: str) -> None:
    """Refuse a `vcr` test that uses llmcassette when vcrpy would patch httpx under it too."""
    installed = importlib.metadata.version("vcrpy")
    parts = tuple(int(part) for part in re.findall(r"\d+", installed)[:2])
    if parts >= VCRPY_SKIP_PATCHERS:
        return
    raise ConfigError(
        f"llmcassette: {node_id}: a `vcr` test's httpx and httpx2 traffic can go to llmcassette only "
        f"with vcrpy 9.4 or newer, whose `skip_patchers` keeps vcrpy's own httpx patches out of its "
        f"way; vcrpy {installed} is installed. Upgrade vcrpy, or use llmcassette on tests without the "
        "`vcr` marker."
    )


def _filter_names(entries: Any) -> set[str]:
    # vcrpy takes a name, or a (name, replacement) pair; llmcassette always writes its placeholder.
    if isinstance(entries, str):
        entries = [entries]
    return {str(entry[0] if isinstance(entry, list | tuple) else entry) for entry in entries or ()}


def vcr_scrubber(settings: dict[str, Any]) -> Scrubber | None:
    """
    The default scrubber, also scrubbing the headers and query parameters that ``vcr_config``'s
    ``filter_headers`` and ``filter_query_parameters`` name (None when it names none).
    """
    headers = _filter_names(settings.get("filter_headers"))
    params = _filter_names(settings.get("filter_query_parameters"))
    if not headers and not params:
        return None
    base = Scrubber()
    return dataclasses.replace(
        base,
        secret_headers=base.secret_headers | headers,
        secret_query_params=base.secret_query_params | params,
    )


def marker_options(node: pytest.Item) -> tuple[str | None, dict[str, Any]]:
    """The path and options of the ``llm_cassette`` markers, the closest marker winning."""
    path: str | None = None
    options: dict[str, Any] = {}
    for mark in reversed(list(node.iter_markers("llm_cassette"))):
        if len(mark.args) > 1:
            raise ConfigError(
                f"llmcassette: `llm_cassette` takes one cassette path, got {len(mark.args)}: {mark.args!r}."
            )
        if mark.args or mark.kwargs.get("path") is not None:
            path = str(mark.args[0] if mark.args else mark.kwargs["path"])
        unknown = sorted(set(mark.kwargs) - {*MARKER_OPTIONS, "path"})
        if unknown:
            raise ConfigError(
                f"llmcassette: `llm_cassette` got unknown argument(s) {', '.join(unknown)}; "
                f"it accepts path, {', '.join(MARKER_OPTIONS)}."
            )
        options.update({k: v for k, v in mark.kwargs.items() if k != "path"})
    return path, options


def marker_faults(node: pytest.Item) -> list[Fault]:
    """The faults of the ``llm_faults`` markers, broadest first."""
    faults: list[Fault] = []
    for mark in reversed(list(node.iter_markers("llm_faults"))):
        for spec in mark.args:
            if isinstance(spec, list | tuple):
                faults.extend(parse_fault(item) for item in spec)
            else:
                faults.append(parse_fault(spec))
    return faults


def matrix_faults(args: Sequence[Any]) -> list[tuple[str, Fault]]:
    """The ``(id, fault)`` cases of a ``llm_fault_matrix`` marker."""
    from ._matrix import resolve_matrix

    if not args:
        raise ConfigError(
            "llmcassette: `llm_fault_matrix` needs a fault set name such as 'standard', or faults."
        )
    return resolve_matrix(args[0] if len(args) == 1 else list(args))


@dataclass
class ActiveCassette:
    """A cassette the plugin activated for one test, with what the test's outcome needs."""

    context: CassetteContext
    cassette: Cassette
    #: How many of the plan's faults (the first ones) the test itself asked for.
    own_faults: int
    error: BaseException | None = field(default=None)

    def explain(self, exc: BaseException) -> None:
        """Add what llmcassette knows to the error a test failed with."""
        misses = self.cassette.misses
        if misses and not any(exc is miss for miss in misses):
            exc.add_note(str(misses[0]))
        blocked = next((a for a in self.cassette.attempts if "Network is disabled" in (a.error or "")), None)
        if blocked is not None:
            exc.add_note(
                f"llmcassette: record mode {self.cassette.record_mode.value!r} sent {blocked.method} "
                f"{blocked.url} upstream to record it, and network blocking (--block-network) refused "
                "the connection. Record without --block-network, or allow the host with "
                "--allowed-hosts (a regex list, e.g. --allowed-hosts=127.0.0.1)."
            )

    def check_passed(self, unfired: str) -> None:
        """After a passing test: fail on a swallowed miss, then report faults that never fired."""
        if self.cassette.misses:
            self.error = self.cassette.misses[0]
            self.error.add_note(
                "llmcassette: the test went on after this miss (the client or the test caught it). "
                "A test that expects it makes the request inside `with llm_cassette.expect_miss():`."
            )
            raise self.error
        never = [f for f, n in self.cassette.fault_plan.fired_counts()[: self.own_faults] if n == 0]
        if not never or unfired == "ignore":
            return
        specs = ", ".join(repr(f.spec()) for f in never)
        message = (
            f"llmcassette: fault {specs} never fired in this test ({len(self.cassette.attempts)} "
            "request(s) reached the cassette), so the test proves nothing about it. Check the fault's "
            "schedule and filters (path=, stream=, provider=)"
        )
        if unfired == "warn":
            warnings.warn(UnfiredFaultWarning(message + "."), stacklevel=1)
        else:
            pytest.fail(message + ", or pass --llm-unfired=warn or ignore.", pytrace=False)

    def close(self) -> None:
        """Deactivate the cassette and write it if due, without raising what was reported."""
        exc, self.error = self.error, None
        if exc is None and self.cassette.misses:
            exc = self.cassette.misses[0]
        self.context.__exit__(type(exc) if exc is not None else None, exc, None)


def relative_to(base: Path, path: str) -> Path:
    """``path`` as given when absolute, else relative to ``base``."""
    return Path(path) if os.path.isabs(path) else base / path


class StaleCassetteWarning(pytest.PytestWarning):
    """A cassette a test replays was recorded longer ago than ``--llm-max-age-days`` allows."""


def warn_if_stale(cassette: Cassette, max_age_days: float | None, node_id: str) -> None:
    """Warn, naming the file, when an interaction of ``cassette`` is older than the limit."""
    if max_age_days is None or not cassette.path.exists():
        return
    from ._age import stale_interactions
    from ._storage import load_cassette

    stale = list(stale_interactions(load_cassette(cassette.path), max_age_days))
    if stale:
        oldest = max(age for _, age in stale)
        warnings.warn(
            StaleCassetteWarning(
                f"llmcassette: {node_id}: cassette {str(cassette.path)!r} has {len(stale)} "
                f"interaction(s) recorded more than {max_age_days:g} days ago (the oldest {oldest:.0f} "
                "days); record them again (`llmcassette drift --update`, or this test in record mode)."
            ),
            stacklevel=2,
        )
