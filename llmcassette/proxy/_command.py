"""
Running a command under the proxy: a child process with the proxy's environment, and the signals
that stop it.

The proxy serves from a thread, so the main thread is free to wait for the child and to take the
signals. A signal never kills llmcassette outright: it is noted (:class:`SignalWatch`), passed on
to the child, and once the child is gone the cassette is saved, whatever happened.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from types import FrameType, TracebackType
from typing import Any

__all__ = ["STOP_SIGNALS", "SignalWatch", "child_environment", "exit_status", "run_command"]

#: The signals that stop ``llmcassette record``, and that it passes on to its command.
STOP_SIGNALS: tuple[signal.Signals, ...] = tuple(
    sig for name in ("SIGINT", "SIGTERM", "SIGHUP") if (sig := getattr(signal, name, None)) is not None
)

# How often the main thread looks for a signal or the child's exit. Signal handlers only run in
# the main thread between bytecodes, so it polls rather than block in a lock a handler might need.
_POLL_S = 0.02

# prctl's option that sets the signal a process gets when its parent dies (<linux/prctl.h>).
_PR_SET_PDEATHSIG = 1

_LOOPBACK = ("127.0.0.1", "localhost")
_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


class SignalWatch:
    """
    While active (``with SignalWatch() as signals:``), SIGINT, SIGTERM and SIGHUP are noted instead
    of acting, and the previous handlers come back on exit. Only the main thread may enter it.
    """

    def __init__(self) -> None:
        self._pending: list[int] = []
        self._previous: list[tuple[signal.Signals, Any]] = []

    def _note(self, signum: int, frame: FrameType | None) -> None:
        self._pending.append(signum)

    def __enter__(self) -> SignalWatch:
        for sig in STOP_SIGNALS:
            self._previous.append((sig, signal.signal(sig, self._note)))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        while self._previous:
            sig, handler = self._previous.pop()
            signal.signal(sig, handler)

    def take(self) -> list[int]:
        """The signals received since the last call, oldest first."""
        taken, self._pending = self._pending, []
        return taken

    def wait(self, timeout_s: float | None = None) -> int | None:
        """Block until a signal arrives and return it, or return None after ``timeout_s``."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not self._pending:
            if deadline is not None and time.monotonic() >= deadline:
                return None
            time.sleep(_POLL_S)
        return self._pending.pop(0)


def child_environment(base: Mapping[str, str], proxy: Mapping[str, str]) -> dict[str, str]:
    """
    ``base`` (the caller's environment) with the variables that point SDKs at the proxy. When an
    outbound HTTP proxy is configured, loopback is added to ``NO_PROXY``: the SDKs must reach the
    recording proxy directly, not through the company proxy.
    """
    env = {**base, **proxy}
    if any(env.get(name) for name in _PROXY_VARIABLES):
        # Tools differ on which spelling wins, so both get the same, merged list.
        given = f"{env.get('NO_PROXY', '')},{env.get('no_proxy', '')}".split(",")
        hosts = list(dict.fromkeys(h.strip() for h in [*given, *_LOOPBACK] if h.strip()))
        env["NO_PROXY"] = env["no_proxy"] = ",".join(hosts)
    return env


def exit_status(returncode: int) -> int:
    """A child's exit status as a shell reports it: a death by signal N is ``128 + N``."""
    return 128 - returncode if returncode < 0 else returncode


def _sent_by_terminal(signum: int) -> bool:
    # Ctrl-C reaches every process of the terminal's foreground group, the child included: passing
    # it on would interrupt the child twice (a Python child's clean-up would get a second
    # KeyboardInterrupt). A SIGINT sent to llmcassette alone (`kill -INT`) is passed on.
    if signum != signal.SIGINT:
        return False
    for fd in (0, 1, 2):
        try:
            if os.isatty(fd) and os.tcgetpgrp(fd) == os.getpgrp():
                return True
        except OSError:
            continue
    return False


def _dies_with_parent() -> Callable[[], None] | None:
    """
    On Linux, what the child runs before the command: it asks the system to kill it when its
    parent dies. A SIGKILL to llmcassette runs no handler of ours, so nothing else could stop the
    command, which would go on with a proxy that is gone. None elsewhere (no such request).
    """
    if not sys.platform.startswith("linux"):
        return None
    import ctypes  # only here: most commands never run a child

    # Looked up now, in the parent: the child, forked from a process with other threads (the
    # proxy's), only calls a function already at hand.
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def request() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the request: too late to be told
            os.kill(os.getpid(), signal.SIGKILL)

    return request


def run_command(
    argv: Sequence[str], *, env: Mapping[str, str], signals: SignalWatch, grace_s: float = 10.0
) -> int:
    """
    Run ``argv`` with ``env`` and return its exit status once it ends.

    A stop signal received meanwhile is passed on to the command (except a terminal's Ctrl-C,
    which the command got itself). The command then has ``grace_s`` seconds to end before it is
    killed; a second signal kills it at once. On Linux, the command is also killed when the
    thread that called this dies without stopping it (``kill -9``): call it from the main thread.
    Raises :class:`OSError` when it cannot be started.
    """
    process = subprocess.Popen(list(argv), env=dict(env), preexec_fn=_dies_with_parent())
    deadline: float | None = None
    while True:
        try:
            return exit_status(process.wait(timeout=_POLL_S))
        except subprocess.TimeoutExpired:
            pass
        for signum in signals.take():
            if deadline is not None:
                process.kill()
            elif not _sent_by_terminal(signum):
                process.send_signal(signum)
                deadline = time.monotonic() + grace_s
        if deadline is not None and time.monotonic() >= deadline:
            process.kill()
