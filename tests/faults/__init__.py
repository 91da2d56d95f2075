"""Helpers shared by the fault tests: contexts, the profiles to cover, and parameter strategies."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from llmcassette._exchange import RequestInfo
from llmcassette.faults import FaultContext, fault_types
from llmcassette.faults._base import MAX_DURATION_MS, MAX_RETRY_AFTER_MS, MAX_RETRY_AFTER_S
from llmcassette.providers import GENERIC, PROFILES, Profile

#: Every profile that exists when the tests run, and the generic fallback.
ALL_PROFILES: list[Profile] = [*PROFILES, GENERIC]

#: A fixed "now" with no fraction, so HTTP-dates compare exactly.
NOW_S = 1_750_000_000.0


def make_context(
    profile: Profile = GENERIC,
    *,
    url: str = "https://api.example.com/v1/chat/completions",
    call: int = 1,
    streaming: bool = False,
    now_s: float = NOW_S,
    read_timeout_s: float | None = None,
    connect_timeout_s: float | None = None,
) -> FaultContext:
    """A fault context for a POST to ``url``."""
    request = RequestInfo(method="POST", url=url, headers={"content-type": "application/json"}, body=b"{}")
    return FaultContext(
        request=request,
        profile=profile,
        call=call,
        streaming=streaming,
        now_s=now_s,
        read_timeout_s=read_timeout_s,
        connect_timeout_s=connect_timeout_s,
    )


def request_to(path: str) -> RequestInfo:
    """A request whose URL path is ``path``."""
    return RequestInfo(method="POST", url=f"https://api.example.com{path}")


# Values that survive the spec syntax: no `,` or `=` (separators), no surrounding whitespace.
_SPEC_TEXT = st.text(
    alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyzABCXYZ0123456789/*?._-! "), max_size=24
).map(str.strip)


def _floats(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(min_value=low, max_value=high, allow_nan=False, allow_infinity=False)


#: A strategy for every fault parameter name, so generated faults cover every field.
FIELD_STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    "times": st.integers(1, 10_000),
    "nth": st.integers(1, 10_000),
    "every": st.integers(1, 10_000),
    "probability": _floats(0, 1),
    "seed": st.integers(-(2**63), 2**63 - 1),
    "path": _SPEC_TEXT,
    "provider": _SPEC_TEXT,
    "stream": st.booleans(),
    "message": _SPEC_TEXT,
    "should_retry": st.booleans(),
    "retry_after": st.none() | _floats(0, MAX_RETRY_AFTER_S),
    "retry_after_ms": st.none() | _floats(0, MAX_RETRY_AFTER_MS),
    "retry_after_date": st.none() | _floats(-1e9, 1e9),
    "rate_limit_headers": st.booleans(),
    "code": st.integers(100, 599),
    "delay_ms": _floats(0, MAX_DURATION_MS),
}


def fault_kwargs(name: str) -> st.SearchStrategy[dict[str, Any]]:
    """Keyword arguments for the fault called ``name``: its required fields and any optional ones."""
    cls = fault_types()[name]
    missing = sorted(set(cls.model_fields) - set(FIELD_STRATEGIES))
    assert not missing, f"no strategy for fault parameters {missing}"
    required = {key: FIELD_STRATEGIES[key] for key, field in cls.model_fields.items() if field.is_required()}
    optional = {key: FIELD_STRATEGIES[key] for key in cls.model_fields if key not in required}
    return st.fixed_dictionaries(required, optional=optional)
