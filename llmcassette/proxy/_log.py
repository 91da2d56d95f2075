"""The counted words that the messages of ``record`` and ``serve`` share."""

from __future__ import annotations

__all__ = ["chunks_text", "interactions_text"]


def chunks_text(count: int) -> str:
    """``count`` chunks, in words: ``1 chunk``, ``3 chunks``."""
    return f"{count} chunk" if count == 1 else f"{count} chunks"


def interactions_text(count: int) -> str:
    """``count`` interactions, in words: ``1 interaction``, ``3 interactions``."""
    return f"{count} interaction" if count == 1 else f"{count} interactions"
