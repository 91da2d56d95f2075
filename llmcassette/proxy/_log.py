"""The words that the per-request log lines of ``record`` and ``serve`` share."""

from __future__ import annotations

__all__ = ["chunks_text"]


def chunks_text(count: int) -> str:
    """``count`` chunks, in words: ``1 chunk``, ``3 chunks``."""
    return f"{count} chunk" if count == 1 else f"{count} chunks"
