"""Noticing a client that leaves while the proxy or ``serve`` is still answering it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["ClientWatch"]

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]


class ClientWatch:
    """
    Watches a request's ASGI ``receive`` channel for the client's disconnect.

    ``cancel``, when given, is cancelled as soon as the client leaves, unless the answer already
    ended the exchange itself (``settled``): a silent upstream or a stall then cannot keep a dead
    request open.
    """

    def __init__(self, receive: Receive, *, cancel: asyncio.Task[Any] | None = None) -> None:
        #: True once the client left before the answer ended.
        self.left = False
        #: Set once the answer ends the exchange itself: the client leaving is then expected.
        self.settled = False
        self._cancel = cancel
        self.task: asyncio.Future[None] = asyncio.ensure_future(self._watch(receive))

    async def _watch(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self.left = not self.settled
        if self.left and self._cancel is not None:
            self._cancel.cancel()

    async def gone(self, timeout_s: float) -> bool:
        """Wait until the client's connection is gone; False if it is still open after ``timeout_s``."""
        # asyncio.wait neither cancels the watch on timeout nor raises when the watch was cancelled.
        done, _ = await asyncio.wait({self.task}, timeout=timeout_s)
        return bool(done)

    def stop(self) -> None:
        """Stop watching: the exchange is over."""
        self.settled = True
        self.task.cancel()
