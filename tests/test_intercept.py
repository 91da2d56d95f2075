"""
Interception scope: what llmcassette patches while a cassette is active, which cassette answers
a request, and that everything is put back on exit. Against a real local server, for httpx and
httpx2, sync and async.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest

import llmcassette
from llmcassette import _intercept
from tests.servers import Client, Received, serve, stream_app


@pytest.fixture(scope="module")
def offline(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A cassette recorded from a server that has since stopped, and the recorded URL."""
    path = tmp_path_factory.mktemp("offline") / "offline.yaml"
    with serve(stream_app()) as base:
        url = f"{base}/json"
        with llmcassette.use_cassette(path, record_mode="once"), httpx.Client(verify=False) as http:
            assert http.post(url, json={"q": "offline"}).status_code == 200
    return path, url


PATCHED = [
    (httpx.HTTPTransport, "handle_request"),
    (httpx.AsyncHTTPTransport, "handle_async_request"),
    (httpx2.HTTPTransport, "handle_request"),
    (httpx2.AsyncHTTPTransport, "handle_async_request"),
]


def methods() -> list[Any]:
    return [owner.__dict__[name] for owner, name in PATCHED]


def test_patches_exist_only_while_a_cassette_is_active(tmp_path: Path) -> None:
    originals = methods()
    assert not _intercept.is_installed()
    with llmcassette.use_cassette(tmp_path / "a.yaml"):
        assert _intercept.is_installed()
        patched = methods()
        assert all(new is not old for new, old in zip(patched, originals, strict=True))
        assert [m.__wrapped__ for m in patched] == originals
        with llmcassette.use_cassette(tmp_path / "b.yaml"):
            assert methods() == patched  # a nested cassette does not patch twice
        assert _intercept.is_installed()  # the outer one is still active
    assert not _intercept.is_installed()
    assert methods() == originals


def test_patches_are_removed_when_the_block_raises(tmp_path: Path) -> None:
    originals = methods()
    with pytest.raises(KeyError):
        with llmcassette.use_cassette(tmp_path / "a.yaml"):
            raise KeyError("boom")
    assert not _intercept.is_installed()
    assert methods() == originals


@pytest.mark.anyio
async def test_after_exit_requests_reach_the_real_server(
    client: Client, upstream: str, offline: tuple[Path, str]
) -> None:
    path, _ = offline
    with pytest.raises(llmcassette.NoMatchingInteraction):
        with llmcassette.use_cassette(path):
            await client.send("POST", f"{upstream}/json", json={"q": "live"})
    assert not _intercept.is_installed()
    live = await client.send("POST", f"{upstream}/json", json={"q": "live"})
    assert live.body == b'{"echo":{"q":"live"},"path":"/json"}'


@pytest.mark.anyio
async def test_transport_built_before_the_cassette_is_intercepted(
    client: Client, offline: tuple[Path, str]
) -> None:
    path, url = offline
    transport = client.make_transport()
    with llmcassette.use_cassette(path) as cassette:
        replayed = await client.send("POST", url, json={"q": "offline"}, transport=transport)
    assert replayed.status == 200
    assert replayed.body == b'{"echo":{"q":"offline"},"path":"/json"}'
    assert cassette.attempts[0].interaction == 0


@pytest.mark.anyio
async def test_mock_transport_is_left_alone(client: Client, tmp_path: Path) -> None:
    seen: list[str] = []

    def handler(request: Any) -> Any:
        seen.append(str(request.url))
        return client.lib.Response(201, json={"mocked": True})

    # Mode none and no file: any request the cassette saw would be a miss.
    with llmcassette.use_cassette(tmp_path / "absent.yaml") as cassette:
        response = await client.send(
            "GET", "http://mocked.invalid/x", transport=client.lib.MockTransport(handler)
        )
    assert response.status == 201 and response.body == b'{"mocked":true}'
    assert seen == ["http://mocked.invalid/x"]
    assert cassette.attempts == [] and cassette.misses == []


class CannedTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """A user's own transport (httpx flavour): answers every request itself."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(202, content=b"canned")

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(202, content=b"canned")


class CannedTransport2(httpx2.BaseTransport, httpx2.AsyncBaseTransport):
    """The same, on httpx2."""

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(202, content=b"canned")

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(202, content=b"canned")


@pytest.mark.anyio
async def test_custom_transport_is_left_alone(client: Client, tmp_path: Path) -> None:
    transport = CannedTransport() if client.library == "httpx" else CannedTransport2()
    with llmcassette.use_cassette(tmp_path / "absent.yaml") as cassette:
        response = await client.send("GET", "http://custom.invalid/", transport=transport)
    assert (response.status, response.body) == (202, b"canned")
    assert cassette.attempts == []


@pytest.mark.anyio
async def test_nested_cassettes_inner_wins(client: Client, tmp_path: Path) -> None:
    outer_path, inner_path = tmp_path / "outer.yaml", tmp_path / "inner.yaml"
    with serve(stream_app()) as base:
        url = f"{base}/flaky?counter=nested&fail=1"
        # Recording nested: each request lands in the innermost cassette only.
        with llmcassette.use_cassette(outer_path, record_mode="once") as outer:
            assert (await client.send("GET", url)).status == 429
            with llmcassette.use_cassette(inner_path, record_mode="once") as inner:
                assert (await client.send("GET", url)).status == 200
    assert (len(outer.new_interactions), len(inner.new_interactions)) == (1, 1)

    with llmcassette.use_cassette(outer_path) as outer:
        with llmcassette.use_cassette(inner_path) as inner:
            in_inner = await client.send("GET", url)
        after_inner = await client.send("GET", url)
    assert (in_inner.status, after_inner.status) == (200, 429)
    assert (len(outer.attempts), len(inner.attempts)) == (1, 1)


@pytest.mark.anyio
@pytest.mark.parametrize("how", ["thread", "to_thread"])
async def test_requests_from_worker_threads_are_intercepted(
    client: Client, offline: tuple[Path, str], how: str
) -> None:
    path, url = offline
    results: list[Any] = []

    def work() -> None:
        # A worker runs its own event loop for an async client, as an SDK's sync facade would.
        try:
            results.append(asyncio.run(client.send("POST", url, json={"q": "offline"})))
        except Exception as exc:  # a request that escaped the cassette finds no server
            results.append(exc)

    with llmcassette.use_cassette(path) as cassette:
        if how == "thread":
            # A plain thread does not inherit the context: the latest cassette answers.
            worker = threading.Thread(target=work)
            worker.start()
            worker.join(timeout=10)
        else:
            await asyncio.to_thread(work)
    assert [type(r) for r in results] == [Received]
    assert results[0].status == 200
    assert results[0].body == b'{"echo":{"q":"offline"},"path":"/json"}'
    assert cassette.attempts[0].interaction == 0


@pytest.mark.anyio
async def test_concurrent_tasks_each_use_their_own_cassette(client: Client, tmp_path: Path) -> None:
    with serve(stream_app()) as base:
        url = f"{base}/flaky?counter=tasks&fail=1"
        with llmcassette.use_cassette(tmp_path / "first.yaml", record_mode="once"):
            assert (await client.send("GET", url)).status == 429
        with llmcassette.use_cassette(tmp_path / "second.yaml", record_mode="once"):
            assert (await client.send("GET", url)).status == 200

    inside = {"first": asyncio.Event(), "second": asyncio.Event()}
    done = {"first": asyncio.Event(), "second": asyncio.Event()}

    async def use(name: str, other: str) -> tuple[int, int]:
        with llmcassette.use_cassette(tmp_path / f"{name}.yaml") as cassette:
            inside[name].set()
            await inside[other].wait()  # both cassettes are active from here on
            response = await client.send("GET", url)
            done[name].set()
            await done[other].wait()
        return response.status, len(cassette.attempts)

    results = await asyncio.gather(use("first", "second"), use("second", "first"))
    assert results == [(429, 1), (200, 1)]


# --- doors open on the libraries a process imports, not before ----------------------------------

#: Libraries with a door of their own (or behind one) that a cassette must not import itself.
DOOR_LIBRARIES = ("aiohttp", "urllib3", "requests", "botocore")

_PING = """\
interactions:
- request: {method: GET, uri: 'http://127.0.0.1:9/ping', body: '', headers: {}}
  response:
    status: {code: 200, message: OK}
    headers: {content-type: [text/plain]}
    body: {string: pong}
version: 1
"""


def _run(tmp_path: Path, code: str) -> list[str]:
    """Run ``code`` in a fresh interpreter with ``CASSETTE`` (a recorded GET of port 9) at hand,
    every socket connection refused; its printed lines."""
    cassette = tmp_path / "ping.yaml"
    cassette.write_text(_PING)
    preamble = (
        "import socket, sys\n"
        f"CASSETTE = {str(cassette)!r}\n"
        f"LIBRARIES = {DOOR_LIBRARIES!r}\n"
        "def _refused(*args):\n"
        "    raise OSError('the test opened a socket')\n"
        "socket.socket.connect = socket.socket.connect_ex = _refused\n"
        "def loaded():\n"
        "    return sorted(name for name in LIBRARIES if name in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", preamble + textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_entering_a_cassette_imports_no_library_the_code_has_not(tmp_path: Path) -> None:
    lines = _run(
        tmp_path,
        """
        import httpx, llmcassette
        with llmcassette.use_cassette(CASSETTE), httpx.Client() as client:
            print(client.get("http://127.0.0.1:9/ping").text, loaded())
        print(loaded(), [type(f).__name__ for f in sys.meta_path if "llmcassette" in type(f).__module__])
        """,
    )
    assert lines == ["pong []", "[] []"]  # and no import hook is left behind


def test_a_library_imported_inside_a_cassette_is_intercepted(tmp_path: Path) -> None:
    lines = _run(
        tmp_path,
        """
        import asyncio, llmcassette
        with llmcassette.use_cassette(CASSETTE, allow_playback_repeats=True) as cassette:
            import requests
            print(requests.get("http://127.0.0.1:9/ping").text)
            import aiohttp

            async def fetch():
                async with aiohttp.ClientSession() as session:
                    async with session.get("http://127.0.0.1:9/ping") as reply:
                        return await reply.text()

            print(asyncio.run(fetch()), len(cassette.attempts))
        import urllib3.connection
        # The door closed with the cassette, and nothing watches imports any more.
        print(not hasattr(urllib3.connection.HTTPConnection.request, "__wrapped__"))
        print(any("llmcassette" in type(f).__module__ for f in sys.meta_path))
        """,
    )
    assert lines == ["pong", "pong 2", "True", "False"]


def test_two_libraries_imported_at_once_on_two_threads_open_their_doors_without_deadlock(
    tmp_path: Path,
) -> None:
    # Thread B imports `otherlib`: its door opens under the engine's lock, and (as an adapter
    # imports its library) imports `slowlib`, which thread A is importing. Thread A, holding
    # `slowlib`'s import lock, finishes importing `slowlib.core`, which also has a door. Before,
    # A's hook waited for the lock that B held while B waited for A's import: both for ever.
    for name, body in {
        "slowlib/__init__.py": "import _steps\n_steps.a_importing.set()\n"
        "_steps.b_holds_the_lock.wait(10)\nimport slowlib.core\n",
        "slowlib/core.py": "",
        "otherlib/__init__.py": "",
        "_steps.py": "import threading\n"
        "a_importing = threading.Event()\nb_holds_the_lock = threading.Event()\n",
    }.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(body)
    lines = _run(
        tmp_path,
        f"""
        import threading
        sys.path.insert(0, {str(tmp_path)!r})
        import _steps, llmcassette, llmcassette._adapters
        from llmcassette import _intercept

        opened = []

        def open_door(door, module):
            if door == "other":  # an adapter that imports a library, under the engine's lock
                _steps.b_holds_the_lock.set()
                _steps.a_importing.wait(10)
                import slowlib
            opened.append(module.__name__)

        llmcassette._adapters.DOORS += (("slowlib.core", "slow"), ("otherlib", "other"))
        _intercept._open_door = open_door
        with llmcassette.use_cassette(CASSETTE):
            a = threading.Thread(target=lambda: __import__("slowlib"), daemon=True)
            b = threading.Thread(
                target=lambda: (_steps.a_importing.wait(10), __import__("otherlib")), daemon=True
            )
            a.start(); b.start(); a.join(10); b.join(1)
            if a.is_alive() or b.is_alive():
                print("deadlocked", flush=True)
                os._exit(0)
        print(sorted(set(opened) & {{"otherlib", "slowlib.core"}}))
        """.replace("import threading\n", "import os, threading\n", 1),
    )
    assert lines == ["['otherlib', 'slowlib.core']"]


def test_a_library_imported_while_another_thread_briefly_holds_the_lock_has_its_door_open_at_once(
    tmp_path: Path,
) -> None:
    # Another thread entering or leaving a cassette holds the engine's lock for moments: the
    # import waits for it, so a request made right after the import is answered by the cassette.
    (tmp_path / "quicklib.py").write_text("")
    lines = _run(
        tmp_path,
        f"""
        import threading, time
        sys.path.insert(0, {str(tmp_path)!r})
        import llmcassette, llmcassette._adapters
        from llmcassette import _intercept

        opened = []
        _intercept._open_door = lambda door, module: opened.append(module.__name__)
        llmcassette._adapters.DOORS += (("quicklib", "quick"),)
        with llmcassette.use_cassette(CASSETTE):
            held = threading.Event()

            def hold():
                with _intercept._lock:
                    held.set()
                    time.sleep(0.2)

            holder = threading.Thread(target=hold)
            holder.start()
            held.wait(10)
            import quicklib
            print([name for name in opened if name == "quicklib"])
            holder.join(10)
        """,
    )
    assert lines == ["['quicklib']"]
