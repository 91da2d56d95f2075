"""Shared fixtures of the plugin tests: a loopback upstream and an inner pytest run."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points

import pytest
import vcr  # noqa: F401

import llmcassette.pytest_plugin  # noqa: F401
from tests.servers import serve, stream_app

# Imported here, before any inner run: pytester's in-process runs forget modules first imported
# inside them, and a second import of PyYAML's classes would not match its C parser's events.

# Until the `pytest11` entry point is installed, inner runs load the plugin by name.
_REGISTERED = any(ep.name == "llmcassette" for ep in entry_points(group="pytest11"))
PLUGIN_ARGS: tuple[str, ...] = () if _REGISTERED else ("-p", "llmcassette.pytest_plugin")
#: Arguments that run an inner session without the plugin at all.
NO_PLUGIN_ARGS: tuple[str, ...] = ("-p", "no:llmcassette") if _REGISTERED else ()


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
