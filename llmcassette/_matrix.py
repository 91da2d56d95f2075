"""
Fault matrices: named sets of faults to run one test under, each fault a case of its own.

``STANDARD_FAULTS`` is the set every LLM client should survive. Each entry is scheduled so that a
well-behaved client with its default retries either recovers (the retry gets the recording) or
fails cleanly at once, within one test: transient failures fire once (``times=1``), failures a
client must not retry fire on every call, and faults that only re-deliver the same bytes
(``rechunk``) apply to every call. :func:`resolve_matrix` turns a set name or a list of faults
into ``(id, fault)`` pairs, the ids being what pytest shows (``test_chat[rate_limit]``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from ._exceptions import ConfigError
from .faults import Fault, fault_names, parse_fault

__all__ = ["FAULT_SETS", "STANDARD_FAULTS", "WEBSOCKET_FAULTS", "resolve_matrix"]

#: The faults every LLM client should survive: id -> spec.
STANDARD_FAULTS: dict[str, str] = {
    # 429 once with `retry-after: 1` and `retry-after-ms: 250`, as OpenAI sends them: the client
    # waits what it is told (the finer header wins in the Stainless SDKs, so 0.25 s, not its own
    # backoff) and its retry gets the recording.
    "rate_limit": "rate_limit:times=1,retry_after_ms=250",
    # 500 once: a transient server error is retried with backoff.
    "server_error": "server_error:times=1",
    # The provider's overload once (Anthropic 529 `overloaded_error`, 503 elsewhere): retried.
    "overloaded": "overloaded:times=1",
    # 401 on every call: a bad key is not transient. The client must fail at once with its
    # authentication error; firing on every call keeps a client that wrongly retries failing
    # too (the attempt log shows the extra attempts) instead of letting it pass.
    "unauthorized": "unauthorized",
    # Connection refused once: retried (an SDK's APIConnectionError), then the recording.
    "connect_error": "connect_error:times=1",
    # No response head once: retried as a timeout. The silence length changes nothing the client
    # does, so it is 0: the case stays fast with or without the virtual clock.
    "read_timeout": "read_timeout:times=1,delay_ms=0",
    # A 200 stream with no content once: the client must notice an answer that says nothing
    # (no text, no tool call) rather than return an empty string as success.
    "empty_stream": "empty_stream:times=1",
    # The middle event's JSON cut in half once: the client's decoder fails loudly (a JSON or
    # API error), never skips the event silently and returns partial text as complete.
    "malformed_chunk": "malformed_chunk:times=1",
    # The stream ends cleanly halfway, without its terminator (`[DONE]`, `message_stop`, ...):
    # the client must treat the answer as incomplete, not as a short success.
    "truncate": "truncate:times=1",
    # The connection drops halfway through the stream: a transport error reaches the caller
    # (SDKs do not retry a stream once it started), after the chunks that did arrive.
    "disconnect": "disconnect:times=1",
    # The provider's own in-stream error event on a 200, halfway: the client raises it as an
    # API error with the provider's message, not a parse error, and keeps no partial answer.
    "error_event": "error_event:times=1",
    # One byte per read: SSE/NDJSON decoding must not depend on chunk boundaries.
    "rechunk_1_byte": "rechunk:mode=fixed,size=1",
    # Cuts inside every UTF-8 character and between CR and LF: the decoder must buffer bytes,
    # not decode chunk by chunk, and must not read a split CRLF as two line ends.
    "rechunk_adversarial": "rechunk:mode=adversarial",
    # Silence for ever after the first event, once: the client's read timeout fires mid-stream
    # and it fails with a timeout (or retries and gets the recording) instead of hanging. The
    # silence lasts the client's read timeout: instant under the virtual clock (`llm_clock`).
    "stall": "stall:after=1,times=1",
}

_STATUS: dict[str, str] = {
    "rate_limit": STANDARD_FAULTS["rate_limit"],
    # Retry-After as an HTTP-date 1 s ahead: clients that only parse seconds get this wrong.
    "rate_limit_http_date": "rate_limit:times=1,retry_after_date=1",
    "server_error": STANDARD_FAULTS["server_error"],
    "bad_gateway": "bad_gateway:times=1",
    "unavailable": "unavailable:times=1",
    "overloaded": STANDARD_FAULTS["overloaded"],
    # Client errors: never retried, so they fire on every call.
    "bad_request": "bad_request",
    "unauthorized": STANDARD_FAULTS["unauthorized"],
    "forbidden": "forbidden",
    "not_found": "not_found",
}
_CONNECTION: dict[str, str] = {
    "connect_error": STANDARD_FAULTS["connect_error"],
    "connect_timeout": "connect_timeout:times=1",
    "read_timeout": STANDARD_FAULTS["read_timeout"],
}
_STREAM: dict[str, str] = {
    key: spec for key, spec in STANDARD_FAULTS.items() if key not in _STATUS and key not in _CONNECTION
} | {
    # A reset rather than a clean close: `httpx.ReadError` rather than `RemoteProtocolError`.
    "disconnect_reset": "disconnect:mode=reset,times=1",
    # Random chunk sizes, different on each retry but the same every run.
    "rechunk_random": "rechunk:mode=random,min_size=1,max_size=7",
}

#: What a realtime client (OpenAI Realtime, Gemini Live) should survive or report: id -> spec.
#: Each fires on one session (or on every handshake, for what must not be retried), so a client
#: that reconnects gets the recording, and one that does not fails with the SDK's own error.
WEBSOCKET_FAULTS: dict[str, str] = {
    # The handshake refused with the provider's error body: a bad key is not transient...
    "unauthorized": "unauthorized",
    # ...a quota is (after the wait it is told), and so is an unavailable service.
    "rate_limit": "rate_limit:times=1,retry_after_ms=250",
    "unavailable": "unavailable:times=1",
    # Closed by the server: an internal error and "try again later" are worth a reconnect,
    # a policy violation is not (the openai SDK's reconnect policy draws the same line).
    "ws_close_1011": "ws_close:code=1011,times=1",
    "ws_close_1013": "ws_close:code=1013,times=1",
    "ws_close_1008": "ws_close:code=1008",
    # The connection cut with no close frame (1006 to the client): recoverable.
    "ws_drop": "ws_drop:times=1",
    # The provider's error: an `error` event the client must surface (OpenAI), a 1011 close
    # (Gemini Live).
    "ws_error": "ws_error:times=1",
    # Limits exhausted, resetting in 20 s: the client is told, nothing breaks.
    "ws_rate_limits": "ws_rate_limits:requests=0,tokens=0,reset_s=20",
    # Silence for ever halfway: the client needs a timeout of its own.
    "ws_stall": "ws_stall:times=1",
    # A message's JSON cut in half: the client's parse fails loudly.
    "ws_malformed": "ws_malformed:times=1",
    # Every server message in one-byte continuation frames: the same messages reassembled.
    "ws_fragment_1_byte": "ws_fragment:size=1",
}

#: Named fault sets, for ``resolve_matrix("stream")`` and the pytest plugin's matrix marker.
FAULT_SETS: dict[str, dict[str, str]] = {
    "standard": STANDARD_FAULTS,
    "status": _STATUS,
    "stream": _STREAM,
    "connection": _CONNECTION,
    "websocket": WEBSOCKET_FAULTS,
}

MatrixArg = str | Fault | Mapping[str, Any] | Sequence[str | Fault | Mapping[str, Any]]


def resolve_matrix(arg: MatrixArg) -> list[tuple[str, Fault]]:
    """
    ``(id, fault)`` pairs for a fault set name (``"standard"``, see ``FAULT_SETS``), one fault,
    or a list of fault specs and models. Ids come from the set's keys, else from the fault's
    name; faults sharing a name get the parameters that tell them apart
    (``rate_limit-retry_after_ms=250``). An unknown set or a bad spec raises ``ConfigError``.
    """
    if isinstance(arg, str):
        if arg in FAULT_SETS:
            return [(key, parse_fault(spec)) for key, spec in FAULT_SETS[arg].items()]
        name = arg.partition(":")[0].strip()
        if ":" not in arg and name not in fault_names():
            raise ConfigError(
                f"llmcassette: unknown fault set {arg!r}; fault sets: {', '.join(sorted(FAULT_SETS))}; "
                f"or give a list of faults, known faults: {', '.join(fault_names())}."
            )
        items: Sequence[Any] = [arg]
    elif isinstance(arg, Fault | Mapping):
        items = [arg]
    else:
        items = list(arg)
    if not items:
        raise ConfigError(
            f"llmcassette: the fault matrix is empty; give a fault set ({', '.join(sorted(FAULT_SETS))}) "
            "or at least one fault."
        )
    faults = [parse_fault(item) for item in items]
    return list(zip(_ids(faults), faults, strict=True))


def _ids(faults: list[Fault]) -> list[str]:
    counts = Counter(fault.name for fault in faults)
    params = [_params(fault) for fault in faults]
    # Parameters every fault of a name shares say nothing about which one a case is.
    shared: dict[str, set[str]] = {}
    for fault, pairs in zip(faults, params, strict=True):
        shared[fault.name] = shared[fault.name] & set(pairs) if fault.name in shared else set(pairs)
    ids: list[str] = []
    for fault, pairs in zip(faults, params, strict=True):
        if counts[fault.name] == 1:
            ids.append(fault.name)
            continue
        distinct = [pair for pair in pairs if pair not in shared[fault.name]]
        ids.append("-".join([fault.name, *distinct]))
    # Identical faults listed twice still need ids of their own.
    seen: Counter[str] = Counter()
    unique: list[str] = []
    for case_id in ids:
        seen[case_id] += 1
        unique.append(case_id if seen[case_id] == 1 else f"{case_id}-{seen[case_id]}")
    return unique


def _params(fault: Fault) -> list[str]:
    return [f"{key}={_text(value)}" for key, value in fault.model_dump(exclude_defaults=True).items()]


def _text(value: Any) -> str:
    # Ids are read by people: `250`, not the `250.0` a float field holds.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "none" if value is None else str(value)
