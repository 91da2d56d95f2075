"""Running a command under the proxy: its environment, its exit status, and the signals it gets."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from llmcassette.proxy._command import SignalWatch, child_environment, exit_status, run_command

# A child that notes when it is ready, then waits for signals: with `ignore`, it survives SIGTERM.
CHILD = """
import signal, sys, time
if sys.argv[2] == "ignore":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
open(sys.argv[1], "w").close()
time.sleep(30)
"""


def _when_ready(marker: Path, then: Callable[[], None]) -> threading.Thread:
    """Run ``then()`` in a thread once the child has written ``marker`` (bounded wait)."""

    def run() -> None:
        deadline = time.monotonic() + 10
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        then()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_the_command_gets_the_environment_and_its_exit_status_is_returned(tmp_path: Path) -> None:
    script = "import os, sys; sys.exit(int(os.environ['LLMCASSETTE_PROXY_URL'].rsplit(':', 1)[1]))"
    env = child_environment(os.environ, {"LLMCASSETTE_PROXY_URL": "http://127.0.0.1:7"})
    with SignalWatch() as signals:
        assert run_command([sys.executable, "-c", script], env=env, signals=signals) == 7


def test_a_stop_signal_is_passed_on_and_the_command_ends_by_it(tmp_path: Path) -> None:
    marker = tmp_path / "ready"
    with SignalWatch() as signals:
        # The signal is sent to this process, as `kill` or a CI runner would send it.
        _when_ready(marker, lambda: os.kill(os.getpid(), signal.SIGTERM))
        status = run_command(
            [sys.executable, "-c", CHILD, str(marker), "default"], env=os.environ, signals=signals, grace_s=10
        )
    assert status == 128 + signal.SIGTERM


def test_a_command_that_ignores_the_signal_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    marker = tmp_path / "ready"
    with SignalWatch() as signals:
        _when_ready(marker, lambda: os.kill(os.getpid(), signal.SIGTERM))
        start = time.monotonic()
        status = run_command(
            [sys.executable, "-c", CHILD, str(marker), "ignore"], env=os.environ, signals=signals, grace_s=0.3
        )
    assert status == 128 + signal.SIGKILL
    assert time.monotonic() - start < 5


def test_a_second_signal_kills_the_command_at_once(tmp_path: Path) -> None:
    marker = tmp_path / "ready"

    def twice() -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGINT)

    with SignalWatch() as signals:
        _when_ready(marker, twice)
        start = time.monotonic()
        status = run_command(
            [sys.executable, "-c", CHILD, str(marker), "ignore"], env=os.environ, signals=signals, grace_s=30
        )
    assert status == 128 + signal.SIGKILL
    assert time.monotonic() - start < 5


def test_signals_are_noted_while_watched_and_handlers_restored_after() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with SignalWatch() as signals:
        os.kill(os.getpid(), signal.SIGTERM)
        assert signals.wait(timeout_s=5) == signal.SIGTERM
        assert signals.wait(timeout_s=0.05) is None
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        assert signals.take() == [signal.SIGINT]
    assert signal.getsignal(signal.SIGTERM) == before


@pytest.mark.parametrize(
    ("base", "no_proxy"),
    [
        ({}, None),
        ({"HTTPS_PROXY": "http://proxy.corp:3128"}, "127.0.0.1,localhost"),
        (
            {"http_proxy": "http://proxy.corp:3128", "NO_PROXY": "corp.internal"},
            "corp.internal,127.0.0.1,localhost",
        ),
        ({"ALL_PROXY": "socks5://proxy.corp", "NO_PROXY": "localhost"}, "localhost,127.0.0.1"),
    ],
)
def test_loopback_bypasses_a_configured_outbound_proxy(base: dict[str, str], no_proxy: str | None) -> None:
    env = child_environment(base, {"OPENAI_BASE_URL": "http://127.0.0.1:9/openai/v1"})
    assert env["OPENAI_BASE_URL"] == "http://127.0.0.1:9/openai/v1"
    assert env.get("NO_PROXY") == no_proxy
    assert env.get("no_proxy") == no_proxy


@pytest.mark.parametrize(("returncode", "status"), [(0, 0), (3, 3), (-15, 143), (-9, 137)])
def test_exit_status_is_the_shells(returncode: int, status: int) -> None:
    assert exit_status(returncode) == status
