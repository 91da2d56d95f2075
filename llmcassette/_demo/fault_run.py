"""
Run the demo conversation under each fault of the standard set, and say what the client did.

Each fault gets a fresh replay of the same cassette, under the virtual clock (a stall or a
Retry-After costs no real time). The outcome is compared with the clean replay: the client either
got the same answer (it survived), raised an error (it noticed), or returned a different answer
without any error, which is the outcome a fault test exists to catch.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from .._api import use_cassette
from .._cassette import Cassette
from .._clock import VirtualClock
from .._exceptions import NoMatchingInteraction
from .._matrix import STANDARD_FAULTS
from .client import ChatResult
from .scenario import converse_with

__all__ = ["FaultOutcome", "run_faults"]

# Faults after which the right behaviour is to fail: retrying a bad key does not help.
_MUST_FAIL = frozenset({"unauthorized"})
# Faults that only re-deliver the same bytes, or recover on a retry: the answer must not change.
_TRANSIENT = frozenset({"rate_limit", "server_error", "overloaded", "connect_error", "read_timeout"})


@dataclass(frozen=True)
class FaultOutcome:
    """What the client did under one fault."""

    fault_id: str
    spec: str
    #: "survived", "failed" or "wrong answer".
    outcome: str
    #: The error the client raised, or how its answer differed.
    detail: str
    #: Requests the client sent (retries included).
    attempts: int
    #: Virtual seconds the client slept (backoff, Retry-After).
    slept_s: float
    #: Whether the outcome is what a robust client does under this fault.
    ok: bool

    def line(self) -> str:
        """One line for the demo's report."""
        mark = "ok " if self.ok else "BUG"
        tail = f" ({self.detail})" if self.detail else ""
        waited = f", slept {self.slept_s:g} s" if self.slept_s else ""
        return (
            f"  {mark} {self.fault_id:<20} {self.outcome}{tail}; "
            f"{self.attempts} request{'s' if self.attempts != 1 else ''}{waited}"
        )


def _differences(got: list[ChatResult], expected: list[ChatResult]) -> str:
    if len(got) != len(expected):
        return f"the conversation had {len(got)} of its {len(expected)} turns"
    for number, (a, b) in enumerate(zip(got, expected, strict=True), start=1):
        if a.text != b.text:
            return f"turn {number} text {a.text[:40]!r} instead of {b.text[:40]!r}"
        if [(c.name, c.arguments) for c in a.tool_calls] != [(c.name, c.arguments) for c in b.tool_calls]:
            return f"turn {number} tool calls differ"
        if a.finish_reason != b.finish_reason:
            return f"turn {number} finish reason {a.finish_reason!r} instead of {b.finish_reason!r}"
    return ""


def _first_line(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return text if len(text) <= 70 else text[:67] + "..."


def _verdict(fault_id: str, outcome: str) -> bool:
    if fault_id in _MUST_FAIL:
        return outcome == "failed"
    if fault_id in _TRANSIENT or fault_id.startswith("rechunk"):
        return outcome == "survived"
    # Broken streams: surviving (a retry) and failing loudly are both right; a wrong answer is not.
    return outcome != "wrong answer"


async def _run_one(
    path: Path, base_url: str, fault_id: str, spec: str, clean: list[ChatResult]
) -> FaultOutcome:
    tape = use_cassette(path, record_mode="none", faults=[spec], allow_playback_repeats=True)
    cassette: Cassette | None = None
    with VirtualClock() as clock:
        try:
            async with tape as cassette:
                try:
                    turns = await converse_with(base_url)
                except NoMatchingInteraction:
                    raise
                except Exception as exc:  # whatever the client raised is the outcome
                    outcome, detail = "failed", f"{type(exc).__name__}: {_first_line(exc)}"
                else:
                    detail = _differences(turns, clean)
                    outcome = "wrong answer" if detail else "survived"
        except NoMatchingInteraction:
            # The client went on as if nothing happened, and its next request carried the damage.
            outcome, detail = "wrong answer", "it sent a follow-up built on the damaged reply"
    return FaultOutcome(
        fault_id=fault_id,
        spec=spec,
        outcome=outcome,
        detail=detail,
        attempts=len(cassette.attempts) if cassette is not None else 0,
        slept_s=round(sum(clock.sleeps), 3),
        ok=_verdict(fault_id, outcome),
    )


def run_faults(path: Path, base_url: str, clean: list[ChatResult]) -> list[FaultOutcome]:
    """Replay ``path`` once per standard fault to a client of ``base_url``; one outcome per fault."""

    async def run_all() -> list[FaultOutcome]:
        return [await _run_one(path, base_url, fid, spec, clean) for fid, spec in STANDARD_FAULTS.items()]

    return asyncio.run(run_all())
