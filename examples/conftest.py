"""Shared test settings for the examples."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    # The async clients sleep with asyncio.sleep, so their tests run on asyncio only.
    return "asyncio"
