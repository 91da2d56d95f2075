"""
``Cassette.expect_miss()``: a test that means to make a request the cassette cannot answer.

A miss fails the test even when the client swallowed the error (a retry loop, a fallback), so
``pytest.raises(NoMatchingInteraction)`` alone is not enough: the miss is raised again when the
cassette closes. Inside ``expect_miss()`` a miss is the expected outcome instead: the block ends
at the miss (or goes on, if the client swallowed it), and the miss no longer fails the test.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING

from ._exceptions import NoMatchingInteraction

if TYPE_CHECKING:
    from ._cassette import Cassette

__all__ = ["ExpectedMiss"]


class ExpectedMiss:
    """
    What :meth:`Cassette.expect_miss` returns: a context manager (use it with ``with``, also in
    async code) that expects at least one request of its block to miss the cassette. It stops
    the miss as ``pytest.raises`` stops an exception; ``misses`` then lists them, ``value`` is
    the first. A block with no miss fails with an ``AssertionError``.
    """

    def __init__(self, cassette: Cassette) -> None:
        self._cassette = cassette
        self._known: set[int] = set()
        #: The misses of the block, in order (set when the block ends).
        self.misses: list[NoMatchingInteraction] = []

    @property
    def value(self) -> NoMatchingInteraction:
        """The block's first miss."""
        if not self.misses:
            raise AssertionError(
                "llmcassette: `expect_miss()` has no miss yet: read `value` after the block."
            )
        return self.misses[0]

    def __enter__(self) -> ExpectedMiss:
        self._known = {id(miss) for miss in self._cassette.misses}
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        __tracebackhide__ = True
        self.misses = self._cassette._claim_misses(self._known)
        if any(exc is miss for miss in self.misses):
            return True
        if exc is not None:
            return False  # another error (perhaps the client's own, raised from the miss) goes on
        if not self.misses:
            raise AssertionError(
                f"llmcassette: every request in the `expect_miss()` block was answered from cassette "
                f"{str(self._cassette.path)!r}, so the miss the test expected did not happen. Check the "
                "request the block makes, or remove `expect_miss()`."
            )
        return False
