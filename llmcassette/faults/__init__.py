"""
Faults injected into real recordings: one vocabulary for Python, markers, CLI flags and headers.

Use a model (``faults.RateLimit(retry_after_ms=250, times=2)``) or its spec string
(``"rate_limit:retry_after_ms=250,times=2"``); :func:`parse_fault` turns either into a model, and
:func:`fault_names` lists what exists. Each fault's ``family`` (status, connection, stream or
websocket) says what the client gets from it: an HTTP error, a transport error, the recorded
response changed, or the recorded WebSocket session changed.
"""

from __future__ import annotations

from . import connection, status, stream, websocket
from ._base import (
    ConnectionFailure,
    Fault,
    FaultContext,
    FaultFamily,
    ReplacingFault,
    StreamFault,
    fault_names,
    fault_types,
    parse_fault,
)
from ._plan import FaultPlan, FaultSpec
from .connection import *  # noqa: F403
from .status import *  # noqa: F403
from .stream import *  # noqa: F403
from .websocket import *  # noqa: F403

__all__ = [
    "ConnectionFailure",
    "Fault",
    "FaultContext",
    "FaultFamily",
    "FaultPlan",
    "FaultSpec",
    "ReplacingFault",
    "StreamFault",
    "fault_names",
    "fault_types",
    "parse_fault",
    *connection.__all__,
    *status.__all__,
    *stream.__all__,
    *websocket.__all__,
]
