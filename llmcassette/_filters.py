"""
Request and response filters a cassette can be given: another library's recording hooks.

The engine calls them at four points: on each live request before matching (a request filtered
out goes to the network, neither matched, logged nor recorded), on each recorded request before
it is matched against, and on each response as it is replayed or recorded. pytest-recording
suites give vcrpy such hooks (``before_record_request``, ``ignore_hosts``, ...); the ``vcr``
switch (:mod:`llmcassette._vcr_switch`) hands them to the engine through this interface.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ._exceptions import NoMatchingInteraction
    from ._models import RecordedRequest, RecordedResponse

__all__ = ["InteractionFilter", "LiveRequest"]


@dataclass(frozen=True)
class LiveRequest:
    """A live request as a filter leaves it: what is matched and, when recording, stored."""

    method: str
    url: str
    raw_headers: list[tuple[bytes, bytes]]
    body: bytes


class InteractionFilter(Protocol):
    """What a cassette asks of a filter; each method returns None to leave the message out."""

    #: What a miss raises: a subclass of ``NoMatchingInteraction`` that the other library's own
    #: tests also recognise (vcrpy's ``CannotOverwriteExistingCassetteException``).
    miss_type: type[NoMatchingInteraction]

    def live_request(self, request: LiveRequest) -> LiveRequest | None:
        """The request to match and record, or None to send it upstream untouched and unlogged."""

    def stored_request(self, request: RecordedRequest) -> RecordedRequest | None:
        """A recorded request as matching sees it, or None to never match it."""

    def response(self, response: RecordedResponse) -> RecordedResponse | None:
        """A response as it is replayed or stored, or None to not store it."""
