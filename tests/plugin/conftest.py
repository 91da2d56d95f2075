"""Shared fixtures of the plugin tests: a loopback upstream and an inner pytest run."""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points, version

# Imported here, before any inner run: pytester's in-process runs forget modules first imported
# inside them, and a second import of PyYAML's classes would not match its C parser's events.
# httpx and httpx2 map their core's exceptions to their own with classes they load on first use:
# loaded inside an inner run and then forgotten, the map would hold classes no later error is
# an instance of, and the outer suite would see `httpcore.ConnectError` for `httpx.ConnectError`.
# Hypothesis's plugin imports `observability` at the end of every run: imported afresh (and
# assertion-rewritten) each time, it would cost a second per inner run.
import httpcore  # noqa: F401
import httpcore2  # noqa: F401
import hypothesis.internal.observability  # noqa: F401
import pytest
import vcr  # noqa: F401

import llmcassette.pytest_plugin  # noqa: F401
from llmcassette._pytest_support import VCRPY_SKIP_PATCHERS
from tests.servers import serve, stream_app

# Until the `pytest11` entry point is installed, inner runs load the plugin by name.
_REGISTERED = any(ep.name == "llmcassette" for ep in entry_points(group="pytest11"))
PLUGIN_ARGS: tuple[str, ...] = () if _REGISTERED else ("-p", "llmcassette.pytest_plugin")
#: Arguments that run an inner session without the plugin at all.
NO_PLUGIN_ARGS: tuple[str, ...] = ("-p", "no:llmcassette") if _REGISTERED else ()
#: On a test that runs `vcr` tests through llmcassette: vcrpy before 9.4 cannot leave httpx to it.
needs_vcrpy_skip_patchers = pytest.mark.skipif(
    tuple(int(part) for part in re.findall(r"\d+", version("vcrpy"))[:2]) < VCRPY_SKIP_PATCHERS,
    reason="vcrpy before 9.4 has no `skip_patchers`: test_old_vcrpy.py checks the error instead",
)
#: Arguments of an inner run in a subprocess: Hypothesis's plugin alone would add a second to each.
SUBPROCESS_ARGS: tuple[str, ...] = (*PLUGIN_ARGS, "-p", "no:cacheprovider", "-p", "no:hypothesispytest")


@pytest.fixture(scope="session")
def upstream() -> Iterator[str]:
    """Base URL of a loopback test upstream (`/json` echoes, `/sse` streams)."""
    with serve(stream_app()) as url:
        yield url


@pytest.fixture
def run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Callable[..., pytest.RunResult]:
    """Run pytest in-process in the pytester folder, with the plugin loaded."""
    # pytest-recording's network blocking restores the socket methods it saw at import, which
    # would drop the suite's loopback guard: put back whatever is there now.
    monkeypatch.setattr(socket.socket, "connect", socket.socket.connect)
    monkeypatch.setattr(socket.socket, "connect_ex", socket.socket.connect_ex)

    def run_inner(*args: str) -> pytest.RunResult:
        return pytester.runpytest(
            *PLUGIN_ARGS, "-p", "no:cacheprovider", *args, "-W", "ignore::pytest.PytestAssertRewriteWarning"
        )

    return run_inner
