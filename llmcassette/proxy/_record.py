"""
The recording proxy: a reverse proxy on loopback that sends each request to its real upstream and
records the exchange in a cassette, through the same engine as the in-process path.

A request to ``/openai/v1/chat/completions`` is sent to the upstream its route names (see
:class:`~llmcassette.proxy.RouteTable`) with the client's method, query, headers and body; the
cassette stores the upstream's URL, never the proxy's, so the recording replays in-process too.

What the client gets is what the upstream sent, as it arrives:

- **Streams pass through unbuffered.** Each chunk read from the upstream is handed to the client
  at once and recorded with its arrival time. The body is forwarded as raw bytes, so a gzip body
  stays gzip for the client; the cassette stores it decoded, as in-process recording does.
- **A stream the upstream breaks** is recorded up to the break and marked ``end: error``; the
  client's connection is cut at the same point, closed or reset as the upstream's was, so it sees
  a broken stream, not a clean end.
- **A client that leaves** mid-stream keeps what it was sent: the upstream request is closed (no
  tokens are spent on text nobody reads) and the recording is marked ``end: closed``, unless it
  had already reached the stream's terminator, as in-process.
- **An upstream that hangs up before answering** (closes or resets the connection once it has the
  request) is recorded as a response without status, ``end: error``, and the client's connection
  is closed or reset the same way: it sees what it would see without the proxy.
- **An upstream that cannot be reached** gets the client a 502 whose JSON body names the upstream
  and the cause; nothing is recorded for it. A path no route takes gets a 404 listing the routes.
- **A request the cassette must answer but cannot** (record mode ``once`` on an existing file)
  gets the 404 that ``llmcassette serve`` gives, with the engine's message and closest candidates.
- **A WebSocket upgrade** (``Upgrade: websocket``) goes to the same route's upstream with a
  ``ws``/``wss`` scheme, and the session is relayed and recorded by the engine of
  :mod:`llmcassette._websocket` on the client's own connection: its handshake headers and
  subprotocols go to the upstream, the upstream's answer (a refusal too) comes back, and every
  message passes on as it arrives, stored with its offset, until one side closes or drops.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable, MutableMapping
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from .._cassette import Cassette
from .._exceptions import CassetteError, ConfigError, NoMatchingInteraction
from .._flavors import get_flavor
from .._models import Interaction
from .._modes import RecordMode
from .._recording import hung_up_before_answer
from .._scrub import Scrubber, strip_userinfo
from .._streams import RecordingStream
from ._errors import send_error
from ._fallback import save_elsewhere, unwritable_reason
from ._headers import HOP_BY_HOP, message_headers
from ._journal import Journal, journal_path, recover
from ._log import chunks_text, interactions_text
from ._routes import RouteTable
from ._server import GatheredWrites, LoopbackServer, transport_for
from ._sockets import SocketAction, close_connection, reset_connection, socket_action
from ._tls import tls_files
from ._upgrade import Upgrade, plan_url, session_outcome, websocket_url
from ._upstream import upstream_transport
from ._watch import ClientWatch

__all__ = ["Recorder", "RecordingProxy"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Any]
Send = Callable[[MutableMapping[str, Any]], Any]

# httpx sets Host from the upstream URL, and Content-Length from the body it sends. The body has
# already been read whole, so a client's `Expect: 100-continue` has been answered here.
_NOT_FORWARDED = HOP_BY_HOP | {b"host", b"content-length", b"expect"}
# The body is relayed as it arrives, in HTTP/1.1 chunks: a length would promise what a broken
# upstream may not deliver (and a replayed body may be stored decoded, at another length).
_NOT_RETURNED = HOP_BY_HOP | {b"content-length"}

# How long to wait for the server to notice a connection this proxy cut.
_CUT_WAIT_S = 2.0


class RecordingProxy:
    """
    The recording proxy as an ASGI app: every request is answered by ``cassette`` (which replays or
    records according to its record mode) with the upstream that ``routes`` gives for its path.

    Run it with :class:`~llmcassette.proxy.LoopbackServer` (``lifespan=True`` lets it close its
    upstream connections on shutdown), or use :class:`Recorder`, which does all of that.
    ``log``, when given, receives one line per exchange once it has ended.
    """

    def __init__(
        self,
        cassette: Cassette,
        routes: RouteTable,
        *,
        connect_timeout_s: float = 30.0,
        log: Callable[[str], None] | None = None,
    ) -> None:
        flavor = get_flavor("httpx")
        assert flavor is not None, "httpx is a dependency of llmcassette"
        self.cassette = cassette
        self.routes = routes
        self._flavor = flavor
        self._log = log
        # One transport for every request, so that upstream connections are reused. No read
        # timeout: a model may think for minutes before its first token, and the client decides
        # how long it waits.
        self._transport = upstream_transport()
        self._timeout = {"connect": connect_timeout_s, "read": None, "write": None, "pool": None}
        # Requests being answered, so that shutdown lets them finish cutting their clients off.
        self._active: set[asyncio.Task[Any]] = set()

    async def aclose(self) -> None:
        """Close the connections to upstreams. Call it on the loop that served the requests."""
        await self._transport.aclose()

    async def websocket(self, upgrade: Upgrade) -> None:
        """Relay a WebSocket session to its upstream and record it (the server's ``websocket``)."""
        resolved = self.routes.resolve(upgrade.path)
        if resolved is None:
            routes = "; ".join(self.routes.describe())
            message = (
                f"llmcassette: no route takes {upgrade.path}; the proxy serves {routes}. Start the "
                "path with a route's name, add one with --route NAME=URL, or send every path to "
                "one upstream with --upstream URL."
            )
            await upgrade.refuse(404, "llmcassette_no_route", message)
            self._note(f"WS {upgrade.path} -> 404, no route")
            return
        url = websocket_url(resolved[1], upgrade.query)
        book = self.cassette.websocket_sessions()
        try:
            plan = book.plan(url)
        except NoMatchingInteraction as exc:
            await upgrade.refuse(404, "llmcassette_no_match", str(exc))
            self._note(f"WS {plan_url(self.cassette, url)} -> 404, no recorded session matches")
            return
        try:
            await book.run(plan, upgrade.reader, upgrade.writer)
        finally:
            self._note(f"WS {plan.attempt.url} -> {session_outcome(plan.attempt)}")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._handle(scope, receive, send)
        elif scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    if self._active:
                        await asyncio.wait(self._active, timeout=_CUT_WAIT_S)
                    await self.aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.monotonic()  # the log times the whole exchange, the upstream's wait included
        method: str = scope["method"]
        raw_path = scope.get("raw_path")
        path = raw_path.decode("latin-1") if raw_path else scope["path"]
        resolved = self.routes.resolve(path)
        if resolved is None:
            await self._no_route(path, scope, send)
            return
        target = resolved[1]
        query: bytes = scope.get("query_string", b"")
        parts: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            parts.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        request = httpx.Request(
            method,
            target + ("?" + query.decode("latin-1") if query else ""),
            headers=message_headers(scope["headers"], _NOT_FORWARDED),
            content=b"".join(parts),
            extensions={"timeout": self._timeout},
        )
        task = asyncio.current_task()
        watch = ClientWatch(receive, cancel=task)
        if task is not None:
            self._active.add(task)
        try:
            try:
                response = await self.cassette.handle_async_request(
                    self._flavor, request, self._transport.handle_async_request
                )
            except httpx.TransportError as exc:
                if hung_up_before_answer(exc):
                    # The engine recorded it (a response without status): the client sees the
                    # same hang-up it would see without the proxy, not an answer made up here.
                    action = await self._break(scope, exc, watch)
                    self._outcome(request, f"no response, {action} as the upstream did: {_cause(exc)}")
                    return
                watch.stop()
                await self._upstream_failed(target, exc, send)
                self._outcome(request, f"502, {_cause(exc)}")
                return
            except NoMatchingInteraction as exc:
                watch.stop()
                # As `llmcassette serve` answers a request its cassettes cannot.
                await send_error(send, 404, "llmcassette_no_match", str(exc))
                self._outcome(request, "404, no recorded interaction matches")
                return
            await self._relay(response, request, scope, send, watch, start)
        except asyncio.CancelledError:
            # Either the watch cancelled the relay because the client left, or the server is
            # stopping and stopped waiting for this response. Both end the request here: the
            # engine has kept what was recorded, marked closed.
            if task is not None:
                task.uncancel()
            if watch.left:
                self._outcome(request, "the client left before the end")
            else:
                self._outcome(request, "cut: the proxy stopped before the end")
                await self._cut(scope, watch)
        finally:
            watch.stop()
            self._active.discard(task)

    async def _relay(
        self,
        response: httpx.Response,
        request: httpx.Request,
        scope: Scope,
        send: Send,
        watch: ClientWatch,
        start: float,
    ) -> None:
        stream = response.stream
        assert isinstance(stream, httpx.AsyncByteStream)
        action = "recorded" if isinstance(stream, RecordingStream) else "replayed"
        chunks = 0
        writes = GatheredWrites(scope)
        writes.hold()  # the head leaves with the first bytes of the body
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": message_headers(response.headers.raw, _NOT_RETURNED),
            }
        )
        pieces = stream.__aiter__()
        try:
            async for chunk in pieces:
                chunks += 1
                if chunks > 1:
                    writes.hold()  # chunks read together leave together
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                if chunks == 1:
                    writes.release()  # the first bytes leave at once
        except httpx.TransportError as exc:
            # The upstream broke the stream: the engine recorded it up to here, marked `error`.
            # The client must see the same break, not a clean end: its connection is closed or
            # reset as the upstream's was.
            writes.release()
            cut = await self._break(scope, exc, watch)
            broke = f"{cut} after {chunks_text(chunks)}: {exc}"
            self._outcome(request, f"{response.status_code}, {action}, {broke}")
            return
        finally:
            # The iterator first: a cancellation that struck while sending left it suspended.
            close = getattr(pieces, "aclose", None)
            if close is not None:
                await close()
            await stream.aclose()
        watch.settled = True
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        elapsed_ms = (time.monotonic() - start) * 1000.0
        took = f"{chunks_text(chunks)} in {elapsed_ms:.0f} ms"
        self._outcome(request, f"{response.status_code}, {action}, {took}")

    async def _break(self, scope: Scope, error: httpx.TransportError, watch: ClientWatch) -> str:
        # The upstream's failure shown on the client's connection, as `serve` replays it
        # (`socket_action`): a close (FIN) for RemoteProtocolError, a reset for the rest; what was
        # already sent reaches the client first. Returns what was done, for the log.
        watch.settled = True
        transport = transport_for(scope)
        if transport is None:  # the connection is already gone
            return "the client left"
        if socket_action(error) is SocketAction.CLOSE:
            close_connection(transport)
            action = "closed"
        else:
            await reset_connection(transport)
            action = "reset"
        await watch.gone(_CUT_WAIT_S)
        return action

    async def _cut(self, scope: Scope, watch: ClientWatch) -> None:
        transport = transport_for(scope)
        if transport is None:  # the connection is already gone
            return
        # close(), not abort(): what was already sent reaches the client before the connection ends.
        transport.close()
        watch.settled = True
        await watch.gone(_CUT_WAIT_S)

    def _outcome(self, request: httpx.Request, outcome: str) -> None:
        # Written once the exchange is over, so that scrubbing the URL for the log line is not on
        # the way of the answer.
        if self._log is None:
            return
        # As the cassette will show it: a key in the query string is not printed either.
        url = strip_userinfo(str(request.url))
        scrubber = self.cassette.scrubber
        self._log(f"{request.method} {scrubber.scrub_url(url) if scrubber is not None else url} -> {outcome}")

    def _note(self, line: str) -> None:
        if self._log is not None:
            self._log(line)

    async def _no_route(self, path: str, scope: Scope, send: Send) -> None:
        routes = "; ".join(self.routes.describe())
        message = (
            f"llmcassette: no route takes {path}; the proxy serves {routes}. Start the path with a "
            "route's name, add one with --route NAME=URL, or send every path to one upstream "
            "with --upstream URL."
        )
        await send_error(send, 404, "llmcassette_no_route", message)
        self._note(f"{scope['method']} {path} -> 404, no route")

    async def _upstream_failed(self, target: str, exc: httpx.TransportError, send: Send) -> None:
        cause = _cause(exc)
        target = strip_userinfo(target)
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            kind = "llmcassette_upstream_unreachable"
            message = (
                f"llmcassette: cannot reach upstream {target}: {cause}. Check that it is running "
                "and that the route's URL is right."
            )
        else:
            kind = "llmcassette_upstream_failed"
            message = f"llmcassette: upstream {target} failed before answering: {cause}."
        await send_error(send, 502, kind, message)


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _problem(exc: OSError | CassetteError) -> str:
    """A file error as words that go inside a sentence: the system's, or ours without the frame."""
    # A CassetteError may wrap the system's error: its words are the most exact.
    inner = exc if isinstance(exc, OSError) else (exc.__cause__ or exc.__context__)
    if isinstance(inner, OSError):
        return inner.strerror or str(inner)
    return str(exc).removeprefix("llmcassette: ").removesuffix(".")


def _cause(exc: BaseException) -> str:
    """An exception as one line, with the system's own words for the socket error at its root."""
    # Without a final period: the cause goes inside a sentence.
    text = f"{type(exc).__name__}: {str(exc).removesuffix('.')}" if str(exc) else type(exc).__name__
    root: BaseException = exc
    while (inner := root.__cause__ or root.__context__) is not None:
        root = inner
    # The system's words for the root cause, unless the message has them already (the proxy's own
    # socket layer says "Connection refused"; httpcore's says "All connection attempts failed").
    if root is not exc and isinstance(root, OSError) and isinstance(root.errno, int) and root.errno > 0:
        words = os.strerror(root.errno)
        if words not in text:
            text += f" ({words})"
    return text


class Recorder:
    """
    A recording proxy on loopback with its cassette: :meth:`start` it, point clients at
    :meth:`environment`, and :meth:`stop` it to save what was recorded, atomically.

    ``record_mode`` is the cassette's (``new_episodes`` by default: what the file answers is
    replayed, the rest recorded); ``scrub`` as for :func:`llmcassette.use_cassette`; ``port`` 0
    picks a free one; ``log`` receives one line per exchange once it has ended; ``warn`` receives
    what goes wrong with the files meanwhile, at once (stderr when not given). With ``tls_cert`` and
    ``tls_key`` (PEM files, both or neither) the proxy listens with TLS, for clients that only dial
    ``https://``/``wss://``; a wrong file is a :class:`ConfigError` naming it.

    Each interaction is also written to a journal beside the cassette as soon as it is recorded
    (see :mod:`llmcassette.proxy._journal`): a session killed before it saves loses nothing, as
    the next Recorder on the same cassette adds the journal's interactions to it first.

    A cassette whose folder takes no new files is refused at once (:class:`ConfigError`), before
    any request is taken. A save that fails when the Recorder stops writes the cassette to a new
    folder of the system's temporary folder instead, and raises a :class:`CassetteError` that
    names it: what was recorded is never dropped.

    Example::

        with Recorder("cassettes/run.yaml", routes=RouteTable(upstream="http://127.0.0.1:4000")) as url:
            ...  # clients send their requests to url
        # the cassette is saved here
    """

    def __init__(
        self,
        path: str | Path,
        *,
        routes: RouteTable | None = None,
        record_mode: str | RecordMode = RecordMode.NEW_EPISODES,
        scrub: Scrubber | bool = True,
        port: int = 0,
        log: Callable[[str], None] | None = None,
        warn: Callable[[str], None] | None = None,
        stop_timeout_s: float = 5.0,
        tls_cert: str | os.PathLike[str] | None = None,
        tls_key: str | os.PathLike[str] | None = None,
    ) -> None:
        tls = tls_files(tls_cert, tls_key)  # before anything is recovered or written
        path = Path(path)
        # Before anything is recovered or recorded: a session that cannot write its journal and
        # its cassette would proxy every request and keep nothing.
        reason = unwritable_reason(path, journal_path(path))
        if reason is not None:
            raise ConfigError(
                f"llmcassette: cannot record to {str(path)!r}: {reason}. The cassette and its journal "
                "are written in its folder: choose a path you can write to."
            )
        scrubber = (Scrubber() if scrub else None) if isinstance(scrub, bool) else scrub
        #: What an earlier session on this cassette left in its journal, now added to the file.
        self.recovery = recover(path)
        self.cassette = Cassette(path, record_mode=record_mode, scrubber=scrubber)
        self._journal = Journal(path)
        self._warn = warn if warn is not None else _to_stderr
        self.cassette.on_recorded = self._write_down
        self.routes = routes if routes is not None else RouteTable()
        self.proxy = RecordingProxy(self.cassette, self.routes, log=log)
        self._server = LoopbackServer(
            self.proxy,
            port=port,
            lifespan=True,
            graceful_timeout_s=stop_timeout_s,
            websocket=self.proxy.websocket,
            tls=tls,
        )
        self._stopped = False

    @property
    def url(self) -> str:
        """The proxy's base URL, such as ``http://127.0.0.1:8765`` (``https://`` with TLS)."""
        return self._server.url

    @property
    def recorded(self) -> int:
        """How many interactions were recorded so far."""
        return len(self.cassette.new_interactions)

    def environment(self) -> dict[str, str]:
        """The variables that point each SDK, and ``LLMCASSETTE_PROXY_URL``, at the proxy."""
        return self.routes.environment(self.url)

    def start(self) -> str:
        """Start serving in a background thread; returns the proxy's base URL."""
        return self._server.start()

    def stop(self) -> None:
        """
        Stop serving and save the cassette. Requests still open get ``stop_timeout_s`` to end;
        then their clients are cut off, and what was recorded of them is kept, marked as closed
        early. The file is written atomically, and only when something was recorded. When it
        cannot be written, it is written elsewhere, and a :class:`CassetteError` says where.
        """
        if self._stopped:
            return
        self._stopped = True
        try:
            self._server.stop()
        finally:
            try:
                self.cassette.finish()
            except (OSError, CassetteError) as exc:
                self._save_elsewhere(exc)
            # Only once the cassette holds it all: a save that failed leaves the journal to recover.
            problem = self._discard_journal()
            if problem is not None:
                self._warn(
                    f"llmcassette: the journal {str(self._journal.path)!r} cannot be deleted ({problem}). "
                    "Delete it: the cassette now holds all it held, and the next record session on the "
                    "cassette would add that a second time."
                )

    def _save_elsewhere(self, exc: OSError | CassetteError) -> None:
        path, recorded = self.cassette.path, interactions_text(self.recorded)
        cause = _problem(exc)
        try:
            where = save_elsewhere(
                path, self.cassette.document(), vcrpy_compatible=self.cassette.vcrpy_compatible
            )
        except (OSError, CassetteError) as again:
            # Kept, and let go of: the next session on the cassette recovers what it holds.
            self._journal.close()
            journal = self._journal.path
            kept = (
                f", but for what its journal {str(journal)!r} holds, which the next record session "
                "on the cassette recovers"
                if journal.exists()
                else ""
            )
            raise CassetteError(
                f"llmcassette: cannot save the cassette {str(path)!r} ({cause}), nor a copy of it in "
                f"the temporary folder ({_problem(again)}). What this session recorded ({recorded}) "
                f"is lost{kept}.",
                path=path,
            ) from None
        # The copy holds all that the journal held: left beside the cassette, it would be
        # recovered into it too, a second time, once the copy is moved into place.
        problem = self._discard_journal()
        also = (
            f"; the journal {str(self._journal.path)!r} cannot be deleted ({problem}): delete it "
            "first, or the next record session on the cassette adds what it holds a second time"
            if problem is not None
            else ""
        )
        if where.suffix == path.suffix:
            then = f"Move it to {str(path)!r} once that can be written"
        else:  # a JSON cassette that JSON cannot hold was written as YAML
            then = f"Use it as {str(path.with_suffix(where.suffix))!r}"
        raise CassetteError(
            f"llmcassette: cannot save the cassette {str(path)!r} ({cause}); it is saved as "
            f"{str(where)!r} instead, with the {recorded} recorded in this session. {then}{also}.",
            path=path,
        ) from None

    def _discard_journal(self) -> str | None:
        """Delete the journal; the system's words for what went wrong, when it cannot be."""
        try:
            self._journal.discard()
        except OSError as exc:
            return _problem(exc)
        return None

    def _write_down(self, interaction: Interaction) -> None:
        # Journaled once the answer is on its way: the write is no part of the client's wait.
        try:
            asyncio.get_running_loop().call_soon(self._journal_append, interaction)
        except RuntimeError:  # no loop: the cassette is closing what was still open
            self._journal_append(interaction)

    def _journal_append(self, interaction: Interaction) -> None:
        try:
            self._journal.append(interaction)
        except OSError as exc:
            # Said once: the journal takes nothing more after a failure. The session goes on.
            self._warn(
                f"llmcassette: cannot write the journal {str(self._journal.path)!r} ({_problem(exc)}). "
                "Recording goes on: what is recorded is kept in memory and saved when record stops, "
                "but a session killed before then loses what the journal does not hold."
            )

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
