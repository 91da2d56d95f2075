"""
The node SDKs (``openai@6``, ``@anthropic-ai/sdk``) as clients, for the tests of ``record`` and
``serve`` from another language.

``tests/node/`` holds a package.json and package-lock.json with exact versions, and
``clients.mjs``, a small program that calls both SDKs and prints what they parsed as JSON.
:func:`install` runs ``npm ci`` there once: later sessions find ``node_modules`` up to date (a
stamp holds the lockfile's hash) and install nothing. npm's download cache is kept outside the work
tree, in ``$XDG_CACHE_HOME/llmcassette/npm`` (``~/.cache`` by default), so a fresh worktree
installs from it offline. A file lock keeps pytest-xdist workers from installing at once.

Without ``node`` or ``npm`` the tests skip, saying so. An install that fails fails the tests when
``CI`` is set (CI reaches the package registry), and skips them with npm's words otherwise.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

__all__ = ["CLIENTS", "NODE_DIR", "finish_clients", "install", "run_clients", "start_clients"]

NODE_DIR = Path(__file__).parent / "node"
CLIENTS = NODE_DIR / "clients.mjs"
# openai@6 runs on Node 20; openai@7 would need 22.
NODE_MAJOR_MIN = 20
INSTALL_TIMEOUT_S = 300
RUN_TIMEOUT_S = 60

_STAMP = NODE_DIR / "node_modules" / ".llmcassette-lock-sha256"
_LOCK = NODE_DIR / ".install-lock"


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "llmcassette" / "npm"


def _lock_hash() -> str:
    return hashlib.sha256((NODE_DIR / "package-lock.json").read_bytes()).hexdigest()


def _unavailable(reason: str) -> None:
    __tracebackhide__ = True
    if os.environ.get("CI"):
        pytest.fail(f"the node SDKs could not be installed, and CI must run their tests: {reason}")
    pytest.skip(f"the node SDKs could not be installed: {reason}")


def install() -> str:
    """
    Install the locked node packages if they are not, and return the ``node`` executable; skip
    the calling test when node or npm is missing or too old.
    """
    __tracebackhide__ = True
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        missing = [name for name, path in (("node", node), ("npm", npm)) if path is None]
        verb = "are" if len(missing) > 1 else "is"
        pytest.skip(f"the node SDK tests need node and npm; {' and '.join(missing)} {verb} not on PATH")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    if int(version.lstrip("v").split(".")[0]) < NODE_MAJOR_MIN:
        pytest.skip(f"the node SDK tests need Node {NODE_MAJOR_MIN} or later (openai@6); this is {version}")
    wanted = _lock_hash()
    with _LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if _STAMP.is_file() and _STAMP.read_text() == wanted:
            return node
        command = [npm, "ci", "--prefer-offline", "--no-audit", "--no-fund", "--cache", str(_cache_dir())]
        try:
            done = subprocess.run(
                command, cwd=NODE_DIR, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S
            )
        except subprocess.TimeoutExpired:
            _unavailable(f"`npm ci` did not finish in {INSTALL_TIMEOUT_S} s")
        if done.returncode != 0:
            _unavailable(f"`npm ci` exited with {done.returncode}: {done.stderr.strip()[-2000:]}")
        _STAMP.write_text(wanted)
    return node


def start_clients(
    node: str, calls: Sequence[str], *, env: Mapping[str, str], **options: str
) -> subprocess.Popen[str]:
    """
    Start ``clients.mjs`` with ``calls`` (``openai-json``, ``openai-stream``, ``anthropic-json``,
    ``anthropic-stream``, each with an optional ``@FAULT`` for ``serve``); ``options`` are its
    ``CLIENT_*`` variables, such as ``CLIENT_MAX_RETRIES="2"``.
    """
    return subprocess.Popen(
        [node, str(CLIENTS), *calls],
        env={**env, **options},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish_clients(process: subprocess.Popen[str]) -> dict[str, Any]:
    """Wait for a run of ``clients.mjs`` and return what it printed, per call."""
    try:
        stdout, stderr = process.communicate(timeout=RUN_TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    results: dict[str, Any] = json.loads(stdout)
    return results


def run_clients(node: str, calls: Sequence[str], *, env: Mapping[str, str], **options: str) -> dict[str, Any]:
    """Run ``clients.mjs`` to the end (see :func:`start_clients`)."""
    return finish_clients(start_clients(node, calls, env=env, **options))
