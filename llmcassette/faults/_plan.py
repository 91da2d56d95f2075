"""The faults active under a cassette, with the call counters their schedules need."""

from __future__ import annotations

import threading
from collections.abc import Iterable

from .._exceptions import ConfigError
from .._exchange import RequestInfo
from ._base import MAX_FAULTS, Fault, parse_fault

__all__ = ["FaultPlan", "FaultSpec"]

#: Anything that names a fault: a model, a spec string, or a mapping with a ``name`` key.
FaultSpec = Fault | str | dict[str, object]


class FaultPlan:
    """
    Decides, call by call, which faults fire. Each fault counts the calls that pass its filter;
    the same faults, seed and sequence of requests give the same decisions every run.
    """

    def __init__(self, faults: Iterable[FaultSpec] = ()) -> None:
        specs = list(faults)
        if len(specs) > MAX_FAULTS:
            # Checked before any is parsed: a header on `serve` may name thousands.
            raise ConfigError(
                f"llmcassette: {len(specs)} faults were given where at most {MAX_FAULTS} may apply "
                "to a request; give fewer, and use a schedule (times=, nth=, every=) or a filter "
                "(path=, provider=, stream=) on one fault instead of repeating it."
            )
        self.faults: list[Fault] = [parse_fault(spec) for spec in specs]
        self._calls = [0] * len(self.faults)
        self._fired = [0] * len(self.faults)
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self.faults)

    def select(
        self, request: RequestInfo, *, provider: str, streaming: bool, websocket: bool = False
    ) -> list[tuple[Fault, int]]:
        """
        The faults that fire on ``request``, in plan order, each with its call number.
        ``websocket``: the request is a WebSocket handshake (its session is the call).
        """
        fired: list[tuple[Fault, int]] = []
        with self._lock:
            for position, fault in enumerate(self.faults):
                if not fault.applies_to(request, provider=provider, streaming=streaming, websocket=websocket):
                    continue
                self._calls[position] += 1
                call = self._calls[position]
                if fault.fires_on(call):
                    self._fired[position] += 1
                    fired.append((fault, call))
        return fired

    def fired_counts(self) -> list[tuple[Fault, int]]:
        """How many times each fault fired so far."""
        with self._lock:
            return list(zip(self.faults, self._fired, strict=True))

    def unfired(self) -> list[Fault]:
        """The faults that never fired."""
        return [fault for fault, count in self.fired_counts() if count == 0]
