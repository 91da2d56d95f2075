"""
The cassette server: recorded interactions served as a fake provider on loopback, for clients in
any process and any language (``llmcassette serve``).

A request is answered by the same engine as in-process replay (matching, recorded order, chunk
boundaries, pacing, faults), then written to the client's connection as it plays:

- **Where a request goes.** A client may use a route prefix (``/openai/v1/chat/completions``) or
  the server's root as its base URL (``/v1/chat/completions``). The path as sent is looked up
  among the recorded paths first, then the path its route gives; the recorded URL's scheme and
  host are used, since the server stands in for whichever upstream was recorded. By default a
  request matches on method, path, query and body (:data:`SERVE_MATCH_ON`).
- **Several cassettes** are tried in the order given: the first that has an answer gives it, so a
  later cassette takes over a request whose recordings an earlier one has used up.
- **Repeats.** By default the last recorded answer to a request is played again once the others
  have been used: a long-running fake provider gets the same question many times. Recorded
  sequences (a ``429`` then a ``200``) still play in order first.
- **Faults** come from the server's plan (``--fault``) and from the request's
  ``x-llmcassette-fault`` header (:data:`FAULT_HEADER`), which is never passed on. Network faults
  are real socket behaviour (see :mod:`llmcassette.proxy._sockets`): a reset, an early close, or
  silence until the client's own timeout gives up (at most ``stall_max_s``).
- **A request no cassette answers** gets a ``404`` whose JSON body says why and lists the closest
  recorded requests; the log shows it as ``MISS``.
- **A WebSocket upgrade** is answered by a recorded session, found by its URL as a request is
  (path as sent, then the path its route gives, query included), and replayed turn by turn by the
  engine of :mod:`llmcassette._websocket` on the client's own connection; faults of the server's
  plan and of the handshake's :data:`FAULT_HEADER` act on the session (a close, a drop without a
  close frame, a fragmented message, a refused handshake...). No recorded session: a ``404`` with
  the closest recorded sessions, before any upgrade.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import pickle
import select
import signal
import sys
import time
import warnings
from collections.abc import Awaitable, Callable, Iterable, MutableMapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import httpx

from .._cassette import Cassette
from .._exceptions import CassetteNotFound, ConfigError, LlmCassetteError, NoMatchingInteraction
from .._exchange import RequestInfo
from .._flavors import get_flavor
from .._lazy import load_lazy
from .._matching import DEFAULT_IGNORED_BODY_FIELDS, PreparedBody, RequestParts
from .._models import RecordedRequest
from .._modes import Pace, RecordMode
from .._playlist import prepare_body, with_known_json
from .._scrub import Scrubber, strip_userinfo
from ..faults import Fault, FaultPlan, FaultSpec, ReplacingFault
from ..providers import detect_profile
from ._errors import send_error
from ._headers import HOP_BY_HOP, message_headers
from ._log import chunks_text
from ._routes import RouteTable
from ._server import (
    DEFAULT_HEADER_TIMEOUT_S,
    DEFAULT_IDLE_TIMEOUT_S,
    GatheredWrites,
    LoopbackServer,
    transport_for,
)
from ._sockets import SocketAction, close_connection, reset_connection, socket_action
from ._tls import tls_files
from ._upgrade import Upgrade, session_outcome, websocket_url
from ._watch import ClientWatch

__all__ = ["DEFAULT_MAX_BODY_BYTES", "FAULT_HEADER", "SERVE_MATCH_ON", "CassetteApp", "CassetteServer"]

#: The request header that names faults for that request: ``SPEC[; SPEC...]``.
FAULT_HEADER = "x-llmcassette-fault"

#: What a request served by ``serve`` matches on: the host is whichever upstream was recorded.
SERVE_MATCH_ON: tuple[str, ...] = ("method", "path", "query", "body")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_FAULT_HEADER_BYTES = FAULT_HEADER.encode("latin-1")
# The engine's request gets its Host from the recorded URL and its length from the body.
_NOT_FORWARDED = HOP_BY_HOP | {b"host", b"content-length", b"expect", _FAULT_HEADER_BYTES}
# How long to wait for the server to see a connection this side reset or closed.
_GONE_WAIT_S = 2.0
# A server may answer requests for days: each cassette keeps the log of its latest requests only.
KEEP_ATTEMPTS = 1000
_CANDIDATES_SHOWN = 3
#: The largest request body ``serve`` reads, by default: 32 MiB, the largest request the providers
#: themselves take (Anthropic's limit; OpenAI and Gemini take inline files of up to 20 MB).
DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024
# A body this large is scrubbed and parsed in a worker process, and matched in a worker thread:
# its regex scan and JSON parse would hold the interpreter, and so every other client, for their
# whole length (about 0.1 s per 10 MB on a busy machine). Smaller ones take under a millisecond.
_OFFLOAD_BYTES = 1024 * 1024
_MAX_FD = 65536
# A child that has not prepared its body in this long is killed, and the engine does the work.
_CHILD_TIMEOUT_S = 120.0
# How many distinct fault header values keep their call counts.
_HEADER_PLANS_KEPT = 1000


@dataclass
class _Outcome:
    """How one exchange ended, for its log line."""

    status: int | None = None
    chunks: int = 0
    detail: str = ""


async def _no_upstream(request: httpx.Request) -> httpx.Response:
    # Cassettes are served in record mode 'none': the engine never asks for the upstream.
    raise RuntimeError("llmcassette: serve never sends a request upstream.")  # pragma: no cover


class CassetteApp:
    """
    The cassette server as an ASGI app: each request is answered from ``cassettes``, tried in
    order, with the faults of ``faults`` and of the request's :data:`FAULT_HEADER`.

    Run it with :class:`~llmcassette.proxy.LoopbackServer`, whose connection tracking the socket
    faults need, or use :class:`CassetteServer`, which does all of that. ``routes`` says which path
    prefixes name a provider; ``log``, when given, receives one line per request once it has ended.
    """

    def __init__(
        self,
        cassettes: Sequence[Cassette],
        *,
        routes: RouteTable | None = None,
        faults: Iterable[FaultSpec] = (),
        stall_max_s: float = 600.0,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        log: Callable[[str], None] | None = None,
    ) -> None:
        if not cassettes:
            raise ConfigError("llmcassette: serve needs at least one cassette to answer from.")
        flavor = get_flavor("httpx")
        assert flavor is not None, "httpx is a dependency of llmcassette"
        self._flavor = flavor
        self.cassettes = list(cassettes)
        self.routes = routes if routes is not None else RouteTable()
        self.fault_plan = FaultPlan(faults)
        self.stall_max_s = stall_max_s
        if max_body_bytes < 1:
            raise ConfigError(
                f"llmcassette: max_body_bytes is {max_body_bytes!r}; give a size of at least 1 byte."
            )
        self.max_body_bytes = max_body_bytes
        self._log = log
        self._bodies = _BodyWorker()
        # The server's loop, known from its first request: `release` reaches it from other threads.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._open: set[asyncio.Future[None]] = set()
        self._stopping = False
        #: Requests answered (from a recording or by a fault), and requests no cassette answered.
        self.answered = 0
        self.missed = 0
        # Header faults keep their call counts per header value, so `rate_limit:times=1` sent on
        # every attempt of a call gives a 429, then the recording.
        self._header_plans: dict[str, FaultPlan] = {}
        self._recorded = [_recorded_requests(cassette) for cassette in self.cassettes]
        # Where each recorded (method, path) was sent: the first cassette and recording win.
        self._origins: dict[tuple[str, str], str] = {}
        for requests in self._recorded:
            for request in requests:
                if request.method == "*":  # a response-only file: it answers any path
                    continue
                parts = urlsplit(strip_userinfo(request.uri))
                key = (request.method.upper(), _normal_path(request.uri))
                self._origins.setdefault(key, f"{parts.scheme}://{parts.netloc}")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if self._loop is None:
                self._loop = asyncio.get_running_loop()
            await self._handle(scope, receive, send)

    async def websocket(self, upgrade: Upgrade) -> None:
        """Replay a recorded WebSocket session on an upgraded connection (the server's ``websocket``)."""
        shown = f"WS {self._shown_path(upgrade.path, upgrade.query)}"
        raw = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in upgrade.headers]
        try:
            header_plan = self._header_plan(raw)
        except ConfigError as exc:
            await upgrade.refuse(400, "llmcassette_bad_fault", str(exc))
            self._note(f"{shown} -> 400, bad {FAULT_HEADER} header")
            return
        plans = [plan for plan in (header_plan, self.fault_plan) if plan]
        scope = {"server": upgrade.writer.get_extra_info("sockname")}
        urls = [websocket_url(url, upgrade.query) for url in self._targets("GET", upgrade.path, scope)]
        misses: list[NoMatchingInteraction] = []
        for url in urls:
            for cassette in self.cassettes:
                book = cassette.websocket_sessions()
                try:
                    plan = book.plan(url)
                except NoMatchingInteraction as exc:
                    if url == urls[0]:
                        misses.append(exc)
                    continue
                self.answered += 1
                try:
                    await book.run(
                        plan,
                        upgrade.reader,
                        upgrade.writer,
                        fault_plans=plans,
                        max_silence_s=self.stall_max_s,
                    )
                finally:
                    self._note(f"{shown} -> {session_outcome(plan.attempt, cassette.path.name)}")
                return
        self.missed += 1
        candidates = _closest(misses)
        await upgrade.refuse(
            404, "llmcassette_no_match", _miss_text(self.cassettes, misses, candidates), candidates=candidates
        )
        self._note(f"{shown} -> 404, MISS, no cassette has a recorded session for it")

    def release(self) -> None:
        """
        End every exchange still open, at once: the server is stopping. Their connections are
        closed, as a server going away closes them. Call it from any thread before stopping the
        server, so that a client held in a silence does not hold the stop up.
        """
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already ended
                loop.call_soon_threadsafe(self._end_all)

    def _end_all(self) -> None:
        self._stopping = True
        for work in list(self._open):
            work.cancel()

    def close(self) -> None:
        """Stop the worker process that prepares large bodies, if one was started."""
        self._bodies.close()

    # -- one request -------------------------------------------------------------------------

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.monotonic()
        method: str = scope["method"]
        raw_path = scope.get("raw_path")
        path = raw_path.decode("latin-1") if raw_path else scope["path"]
        query = scope.get("query_string", b"").decode("latin-1")
        shown = f"{method} {self._shown_path(path, query)}"
        limit = self.max_body_bytes
        # A body announced as too large is refused before any of it is read.
        declared = _content_length(scope["headers"])
        body = _TOO_LARGE if declared is not None and declared > limit else await _read_body(receive, limit)
        if body is _TOO_LARGE:
            await send_error(
                send,
                413,
                "llmcassette_body_too_large",
                f"llmcassette: the request body is larger than the {self.max_body_bytes} bytes this "
                "server reads; send a smaller one, or start `llmcassette serve` with a larger "
                "--max-body-bytes.",
                close=True,
            )
            self._note(f"{shown} -> 413, body over {self.max_body_bytes} bytes")
            return
        if body is None:
            self._note(f"{shown} -> the client left before sending its body")
            return
        try:
            header_plan = self._header_plan(scope["headers"])
        except ConfigError as exc:
            await send_error(send, 400, "llmcassette_bad_fault", str(exc))
            self._note(f"{shown} -> 400, bad {FAULT_HEADER} header")
            return
        headers = message_headers(scope["headers"], _NOT_FORWARDED)
        requests = [
            httpx.Request(method, url + (f"?{query}" if query else ""), headers=headers, content=body)
            for url in self._targets(method, path, scope)
        ]
        large = len(body) >= _OFFLOAD_BYTES
        prepared: PreparedBody | None = None
        scrubber: Scrubber | None = None
        if large:
            # Found once per cassette (it reads the recorded bodies), off the loop like the rest.
            scrubber = await asyncio.to_thread(self.cassettes[0].body_scrubber)
            prepared = await self._bodies.prepare(scrubber, body)
        plans = [plan for plan in (header_plan, self.fault_plan) if plan]
        fired: list[tuple[Fault, int]] = []
        if plans and large and prepared is None:  # no child to parse it: a thread does
            fired = await asyncio.to_thread(self._select, plans, requests[0], body, None)
        elif plans:
            fired = self._select(plans, requests[0], body, prepared)
        outcome = _Outcome()
        watch = ClientWatch(receive)
        work = asyncio.ensure_future(
            self._answer(
                scope, send, requests, fired, watch, outcome, prepared=(scrubber, prepared), large=large
            )
        )
        self._open.add(work)
        try:
            await asyncio.wait({work, watch.task}, return_when=asyncio.FIRST_COMPLETED)
            if work.done() or watch.settled:
                await work
            else:
                # The client left first (its timeout, most often): the answer is dropped.
                work.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await work
                outcome.detail = f"the client left after {chunks_text(outcome.chunks)}"
        except asyncio.CancelledError:
            if not self._stopping:
                raise
            # The server is stopping: the connection is cut, quietly, as a server going away cuts it.
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await work
            transport = transport_for(scope)
            if transport is not None:
                close_connection(transport)
                await watch.gone(_GONE_WAIT_S)
            outcome.detail = f"cut after {chunks_text(outcome.chunks)}: the server stopped"
        finally:
            self._open.discard(work)
            if not work.done():
                work.cancel()
            watch.stop()
        elapsed_ms = (time.monotonic() - start) * 1000.0
        status = outcome.status if outcome.status is not None else "no response"
        faults = f" [fault {', '.join(fault.spec() for fault, _ in fired)}]" if fired else ""
        self._note(f"{shown} -> {status}, {outcome.detail} in {elapsed_ms:.0f} ms{faults}")

    async def _answer(
        self,
        scope: Scope,
        send: Send,
        requests: list[httpx.Request],
        fired: list[tuple[Fault, int]],
        watch: ClientWatch,
        outcome: _Outcome,
        *,
        prepared: tuple[Scrubber | None, PreparedBody | None] = (None, None),
        large: bool = False,
    ) -> None:
        scrubber, prepared_body = prepared
        # A replacing fault answers before any recording is looked at; the engine takes the first.
        replacing = next((fault for fault, _ in fired if isinstance(fault, ReplacingFault)), None)
        misses: list[NoMatchingInteraction] = []
        for request in requests:
            for cassette in self.cassettes:
                try:
                    response = await cassette.handle_async_request(
                        self._flavor,
                        request,
                        _no_upstream,
                        faults=fired,
                        # Prepared once, for each cassette that needs the body scrubbed alike.
                        prepared=prepared_body if large and cassette.body_scrubber() == scrubber else None,
                        off_loop=large,
                    )
                except NoMatchingInteraction as exc:
                    if request is requests[0]:
                        misses.append(exc)
                    continue
                except httpx.TransportError as exc:
                    # A connection fault: the client gets no response at all.
                    self.answered += 1
                    action = await self._break(scope, exc, watch)
                    outcome.detail = f"{action} before the response ({type(exc).__name__})"
                    return
                except LlmCassetteError as exc:
                    # A recording that cannot be played (an invalid body or chunk list).
                    outcome.status = 500
                    outcome.detail = "the recording cannot be played"
                    await send_error(send, 500, "llmcassette_bad_recording", str(exc))
                    return
                self.answered += 1
                where = (
                    f"by fault {replacing.name}" if replacing is not None else f"from {cassette.path.name}"
                )
                await self._play(scope, send, response, where, watch, outcome)
                return
        self.missed += 1
        outcome.status = 404
        outcome.detail = "MISS, no cassette has a recording for it"
        await self._miss(send, requests[0], misses)

    async def _play(
        self,
        scope: Scope,
        send: Send,
        response: httpx.Response,
        where: str,
        watch: ClientWatch,
        outcome: _Outcome,
    ) -> None:
        outcome.status = response.status_code
        headers = message_headers(response.headers.raw, HOP_BY_HOP)
        writes = GatheredWrites(scope)
        writes.hold()  # the head leaves with the first chunk; every later chunk leaves on its own
        await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
        stream = response.stream
        assert isinstance(stream, httpx.AsyncByteStream)
        pieces = stream.__aiter__()
        try:
            async for chunk in pieces:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                writes.release()
                outcome.chunks += 1
        except httpx.TransportError as exc:
            writes.release()
            action = await self._break(scope, exc, watch)
            outcome.detail = f"{where}, {action} after {chunks_text(outcome.chunks)} ({type(exc).__name__})"
            return
        finally:
            # The iterator first: a cancellation that struck while sending left it suspended.
            close = getattr(pieces, "aclose", None)
            if close is not None:
                await close()
            await stream.aclose()
        watch.settled = True
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        outcome.detail = f"{where}, {chunks_text(outcome.chunks)}"

    async def _break(self, scope: Scope, error: httpx.TransportError, watch: ClientWatch) -> str:
        """Show ``error`` to the client on its connection; returns what was done, for the log."""
        action = socket_action(error)
        transport = transport_for(scope)
        if transport is None:  # the connection is already gone
            return "the client left"
        # From here on the exchange ends on this side's terms: the client leaving is expected.
        watch.settled = True
        if action is SocketAction.SILENCE:
            if await watch.gone(self.stall_max_s):
                return "silence until the client left"
            close_connection(transport)
            await watch.gone(_GONE_WAIT_S)
            return f"silence for {self.stall_max_s:g} s, then closed"
        if action is SocketAction.RESET:
            await reset_connection(transport)
        else:
            close_connection(transport)
        # The app must not return before the server has seen the connection end: it would take
        # the unfinished response for a bug and say so in its log.
        await watch.gone(_GONE_WAIT_S)
        return "reset" if action is SocketAction.RESET else "closed"

    # -- faults --------------------------------------------------------------------------------

    def _header_plan(self, headers: Iterable[tuple[bytes, bytes]]) -> FaultPlan | None:
        values = [value.decode("latin-1") for name, value in headers if name.lower() == _FAULT_HEADER_BYTES]
        specs = [spec.strip() for value in values for spec in value.split(";") if spec.strip()]
        if not specs:
            return None
        key = "; ".join(specs)
        plan = self._header_plans.get(key)
        if plan is None:
            try:
                plan = FaultPlan(specs)
            except ConfigError as exc:
                reason = str(exc).removeprefix("llmcassette: ")
                shown = repr(key) if len(key) <= 100 else repr(key[:80]) + f"... ({len(key)} characters)"
                raise ConfigError(
                    f"llmcassette: the {FAULT_HEADER} header {shown} is not valid: {reason}"
                ) from None
            if len(self._header_plans) >= _HEADER_PLANS_KEPT:
                # A client that sends ever new header values must not grow the server: the oldest
                # value's call counts start again if it comes back.
                del self._header_plans[next(iter(self._header_plans))]
            self._header_plans[key] = plan
        return plan

    @staticmethod
    def _select(
        plans: list[FaultPlan], request: httpx.Request, body: bytes, prepared: PreparedBody | None
    ) -> list[tuple[Fault, int]]:
        headers: dict[str, str] = {}
        for name, value in request.headers.raw:
            headers.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
        info = RequestInfo(method=request.method, url=str(request.url), headers=headers, body=body)
        with_known_json(info, prepared)  # a large body was parsed in its child: not again here
        profile = detect_profile(info)
        streaming = profile.is_streaming(info)
        # Selected once here, not by each cassette tried, so that each call counts once.
        return [
            pair for plan in plans for pair in plan.select(info, provider=profile.name, streaming=streaming)
        ]

    # -- where a request goes ------------------------------------------------------------------

    def _targets(self, method: str, path: str, scope: Scope) -> list[str]:
        """
        The recorded URLs (without query) that a request to ``path`` may stand for, to be tried in
        order: the path as sent, then the path its route gives, each under the scheme and host it
        was recorded with. A path with no recording keeps the route's upstream, or this server.
        """
        paths = [path]
        resolved = self.routes.resolve(path)
        if resolved is not None:
            routed = urlsplit(resolved[1]).path or "/"
            if routed not in paths:
                paths.append(routed)
        urls = []
        for candidate in paths:
            origin = self._origins.get((method.upper(), _normal_path(candidate)))
            if origin is not None:
                urls.append(origin + candidate)
        if urls:
            return urls
        if resolved is not None:
            return [resolved[1]]
        host, port = scope.get("server") or ("127.0.0.1", 80)
        return [f"http://{host}:{port}{path}"]

    # -- misses --------------------------------------------------------------------------------

    async def _miss(self, send: Send, request: httpx.Request, misses: list[NoMatchingInteraction]) -> None:
        candidates = _closest(misses)
        message = _miss_text(self.cassettes, misses, candidates)
        await send_error(send, 404, "llmcassette_no_match", message, candidates=candidates)

    # -- log -----------------------------------------------------------------------------------

    def _shown_path(self, path: str, query: str) -> str:
        if not query:
            return path
        # Query strings can carry keys (`?key=...`): the log shows them scrubbed.
        scrubber = self.cassettes[0].scrubber
        shown = f"{path}?{query}"
        if scrubber is None:
            return shown
        return scrubber.scrub_url(f"http://server{shown}").removeprefix("http://server")

    def _note(self, line: str) -> None:
        if self._log is not None:
            self._log(line)


def _miss_text(
    cassettes: Sequence[Cassette], misses: list[NoMatchingInteraction], candidates: list[dict[str, Any]]
) -> str:
    """What a request (or a WebSocket handshake) no cassette answers is told."""
    if len(misses) == 1:
        return str(misses[0])
    lines = [
        f"llmcassette: none of the {len(misses)} cassettes served answers {misses[0].method} {misses[0].url}."
    ]
    for cassette, miss in zip(cassettes, misses, strict=True):
        first = str(miss).split("\n", 1)[0].removeprefix("llmcassette: ")
        lines.append(f"- {cassette.path}: {first}")
    if candidates:
        lines.append("Closest recorded candidates:")
        lines.extend(
            f"- {c['cassette']} #{c['interaction']} {c['method']} {c['url']}: "
            + ("; ".join(c["differences"]) or "matches, already played")
            for c in candidates
        )
    lines.append("Record the request into one of them with `llmcassette record`.")
    return "\n".join(lines)


def _closest(misses: list[NoMatchingInteraction]) -> list[dict[str, Any]]:
    """The recorded requests closest to a missed one in every cassette, fewest differences first."""
    ranked = [
        (len(candidate.differences), order, candidate.interaction, asdict(candidate))
        for order, miss in enumerate(misses)
        for candidate in miss.candidates
    ]
    ranked.sort(key=lambda item: item[:3])
    return [entry for *_, entry in ranked[:_CANDIDATES_SHOWN]]


class _BodyWorker:
    """
    Prepares large request bodies (:func:`prepare_body`: scrub, parse, digest) in a forked child.
    In this process, even in another thread, that work would hold the interpreter lock, and so
    the server's event loop, for as long as one regex scan or JSON parse of the body lasts. The
    child has the body already (a fork shares memory): only the small result crosses, by a pipe.
    Where there is no fork, it returns None and the engine prepares the body in its thread.
    """

    async def prepare(self, scrubber: Scrubber | None, body: bytes) -> PreparedBody | None:
        # Linux only: elsewhere a fork of a process with threads is not safe (macOS), or there is
        # none (Windows).
        if not sys.platform.startswith("linux"):  # pragma: no cover
            return None
        read_end, write_end = os.pipe()
        with warnings.catch_warnings():
            # The child runs plain computations on data it already has and exits: none of the
            # locks other threads may hold at the fork is ever taken in it.
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # pragma: no cover - the child; coverage does not follow it
            _child(scrubber, body, write_end)
        os.close(write_end)
        # The thread reaps the child and closes the pipe whatever happens here: if the client
        # leaves meanwhile, it still ends on its own.
        data = await asyncio.to_thread(_collect, pid, read_end, _CHILD_TIMEOUT_S)
        try:
            prepared = pickle.loads(data) if data else None
        except Exception:  # pragma: no cover - a child that died: the engine does it then
            return None
        return prepared if isinstance(prepared, PreparedBody) else None

    def close(self) -> None:
        """Nothing to stop: each child ends with its body."""


def _child(scrubber: Scrubber | None, body: bytes, write_end: int) -> None:  # pragma: no cover
    status = 1
    try:
        # The server's sockets are not the child's business: a connection the server closes
        # must not stay open here.
        os.closerange(3, write_end)
        os.closerange(write_end + 1, _MAX_FD)
        view = memoryview(pickle.dumps(prepare_body(scrubber, body)))
        while view:
            view = view[os.write(write_end, view) :]
        status = 0
    finally:
        os._exit(status)


def _collect(pid: int, fd: int, timeout_s: float) -> bytes | None:
    """What the child wrote on ``fd`` until it ended, or None (killed) after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    parts: list[bytes] = []
    poll = select.poll()
    poll.register(fd, select.POLLIN)
    try:
        while True:
            remaining_ms = (deadline - time.monotonic()) * 1000.0
            if remaining_ms <= 0 or not poll.poll(remaining_ms):
                os.kill(pid, signal.SIGKILL)
                return None
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return b"".join(parts)
            parts.append(chunk)
    finally:
        os.close(fd)
        os.waitpid(pid, 0)


def _recorded_requests(cassette: Cassette) -> list[RecordedRequest]:
    # Every response is validated once, before the server answers anything: a value it could not
    # play (a status of 999) is refused at start, naming the file, the interaction and the field,
    # rather than when a client asks for it. The engine still parses a response when it plays it.
    tape = load_lazy(cassette.path)
    for index in range(len(tape)):
        tape.response(index)
    return [tape.request(index) for index in range(len(tape))]


def _normal_path(url_or_path: str) -> str:
    return RequestParts(method="", url=url_or_path, body=b"").split[3]


# What _read_body returns for a body past the limit.
_TOO_LARGE = b"<too large>"


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """
    The whole request body, None when the client left before sending it, or :data:`_TOO_LARGE`
    as soon as it passes ``limit`` bytes.
    """
    # Gathered in a BytesIO, whose value is its buffer: joining a large body's parts at the end
    # would copy it in one go, holding up every other client meanwhile.
    gathered = io.BytesIO()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        part: bytes = message.get("body", b"")
        if gathered.tell() + len(part) > limit:
            return _TOO_LARGE
        if not message.get("more_body", False) and not gathered.tell():
            return part
        gathered.write(part)
        if not message.get("more_body", False):
            return gathered.getvalue()


def _content_length(headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class CassetteServer:
    """
    Cassettes served on loopback: :meth:`start` it, point clients at :attr:`url` (or at
    :meth:`environment`), and :meth:`stop` it. Nothing is ever written to the cassettes.

    A connection is closed when its client takes more than ``header_timeout_s`` to send a
    request's head or pauses as long while sending its body, or leaves it idle between requests
    for more than ``idle_timeout_s``. A request body over ``max_body_bytes`` gets a ``413``. With
    ``tls_cert`` and ``tls_key`` (PEM files, both or neither) it listens with TLS, for clients that
    only dial ``https://``/``wss://``; a wrong file is a :class:`ConfigError` naming it.

    Example::

        with CassetteServer(["cassettes/chat.yaml"], faults=["rate_limit:times=1"]) as url:
            client = openai.OpenAI(base_url=f"{url}/openai/v1", api_key="sk-test")
            ...
    """

    def __init__(
        self,
        paths: Sequence[str | Path],
        *,
        routes: RouteTable | None = None,
        faults: Iterable[FaultSpec] = (),
        pace: Pace = "instant",
        match_on: Sequence[str] = SERVE_MATCH_ON,
        ignored_body_fields: Sequence[str] = DEFAULT_IGNORED_BODY_FIELDS,
        allow_repeats: bool = True,
        scrub: Scrubber | bool = True,
        port: int = 0,
        stall_max_s: float = 600.0,
        header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S,
        idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        log: Callable[[str], None] | None = None,
        tls_cert: str | os.PathLike[str] | None = None,
        tls_key: str | os.PathLike[str] | None = None,
    ) -> None:
        tls = tls_files(tls_cert, tls_key)
        scrubber = (Scrubber() if scrub else None) if isinstance(scrub, bool) else scrub
        cassettes = []
        for path in paths:
            if not Path(path).is_file():
                raise CassetteNotFound(
                    f"llmcassette: cassette {str(path)!r} does not exist; record one with "
                    f"`llmcassette record -o {path}`.",
                    path=path,
                )
            cassettes.append(
                Cassette(
                    path,
                    record_mode=RecordMode.NONE,
                    pace=pace,
                    match_on=match_on,
                    ignored_body_fields=ignored_body_fields,
                    scrubber=scrubber,
                    allow_playback_repeats=allow_repeats,
                    keep_attempts=KEEP_ATTEMPTS,
                )
            )
        self.routes = routes if routes is not None else RouteTable()
        self.app = CassetteApp(
            cassettes,
            routes=self.routes,
            faults=faults,
            stall_max_s=stall_max_s,
            max_body_bytes=max_body_bytes,
            log=log,
        )
        self._server = LoopbackServer(
            self.app,
            port=port,
            header_timeout_s=header_timeout_s,
            idle_timeout_s=idle_timeout_s,
            websocket=self.app.websocket,
            tls=tls,
        )

    @property
    def cassettes(self) -> list[Cassette]:
        """The cassettes served, in the order they are tried."""
        return self.app.cassettes

    @property
    def url(self) -> str:
        """The server's base URL, such as ``http://127.0.0.1:8765`` (``https://`` with TLS)."""
        return self._server.url

    def environment(self) -> dict[str, str]:
        """The variables that point each SDK, and ``LLMCASSETTE_PROXY_URL``, at the server."""
        return self.routes.environment(self.url)

    def start(self) -> str:
        """Start serving in a background thread; returns the base URL."""
        return self._server.start()

    def stop(self) -> None:
        """Stop serving. Requests still open are cut at once: a replay has nothing left to wait for."""
        self.app.release()
        self._server.stop()
        self.app.close()

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
