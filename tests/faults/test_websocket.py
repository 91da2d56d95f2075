"""WebSocket faults as pure functions of a recorded session: what each plays instead of it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from llmcassette import ConfigError
from llmcassette._exchange import RequestInfo
from llmcassette._websocket._models import WebSocketClose, WebSocketMessage, WebSocketSession
from llmcassette._websocket._script import (
    Close,
    Expect,
    Pause,
    Send,
    SessionContext,
    SessionScript,
    apply_faults,
    script_of,
)
from llmcassette.faults import (
    FaultPlan,
    SessionFault,
    WsClose,
    WsDrop,
    WsError,
    WsFragment,
    WsMalformed,
    WsRateLimits,
    WsStall,
    parse_fault,
)
from llmcassette.faults._session import bound_silences, dialect_of
from llmcassette.providers import detect_profile

REALTIME_URL = "wss://api.openai.com/v1/realtime?model=gpt-realtime"
LIVE_URL = (
    "wss://generativelanguage.googleapis.com/ws/"
    "google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
)


def _session(*senders: str, close: bool = True) -> WebSocketSession:
    """A session whose messages are ``{"type": "c0"}``, ``{"type": "s1"}``... in the given order."""
    messages = [
        WebSocketMessage.capture(
            "client" if sender == "c" else "server", 10.0 * index, json.dumps({"type": f"{sender}{index}"})
        )
        for index, sender in enumerate(senders)
    ]
    ended = (
        WebSocketClose(code=1000, reason="", by="client", offset_ms=10.0 * len(senders)) if close else None
    )
    return WebSocketSession(messages=messages, close=ended)


def _types(script: SessionScript) -> list[str]:
    """Each step: the message type of a Send or Expect, ``pause`` or ``close``."""
    names = []
    for step in script.steps:
        if isinstance(step, Send):
            names.append(json.loads(step.data)["type"])
        elif isinstance(step, Expect):
            names.append(step.message.json_value["type"])
        else:
            names.append(type(step).__name__.lower())
    return names


def _play(session: WebSocketSession, *faults: Any, url: str = REALTIME_URL, call: int = 1) -> SessionScript:
    fired: list[tuple[Any, int]] = [(parse_fault(fault), call) for fault in faults]
    return apply_faults(script_of(session), fired, SessionContext(url=url, provider="openai", call=call))


def _close(script: SessionScript) -> Close:
    step = script.steps[-1]
    assert isinstance(step, Close)
    return step


SESSION = _session("s", "c", "s", "s", "c", "s", "s", "s")  # server messages: 0, 2, 3, 5, 6, 7
RECORDED = [*"s0 c1 s2 s3 c4 s5 s6 s7".split(), "close"]


def test_without_faults_the_recording_plays_as_it_is() -> None:
    assert _play(SESSION) == script_of(SESSION)
    assert _types(_play(SESSION)) == RECORDED


# -- endings ----------------------------------------------------------------------------------------


def test_close_after_n_server_messages_comes_where_the_next_one_would_have() -> None:
    play = _play(SESSION, "ws_close:code=1008,reason=bye,after=3")
    # The client message recorded before the fourth server message is still waited for.
    assert _types(play) == ["s0", "c1", "s2", "s3", "c4", "close"]
    assert _close(play) == Close("server", 1008, "bye", offset_ms=40.0)


def test_close_after_zero_waits_for_nothing_the_server_sent() -> None:
    client_first = _session("c", "s", "s")
    assert _types(_play(client_first, "ws_close:after=0")) == ["c0", "close"]  # the opening message stays
    assert _types(_play(SESSION, "ws_close:after=0")) == ["close"]


def test_close_past_the_last_server_message_replaces_the_recorded_close() -> None:
    play = _play(_session("s", "c", "s", "c"), "ws_close:after=99,code=4000,reason=session expired")
    assert _types(play) == ["s0", "c1", "s2", "c3", "close"]
    assert _close(play) == Close("server", 4000, "session expired", offset_ms=30.0)
    still_open = _play(_session("c", "c", close=False), "ws_close")  # no server message at all
    assert _types(still_open) == ["c0", "c1", "close"]


def test_the_default_place_is_half_of_the_server_messages() -> None:
    assert _types(_play(SESSION, "ws_close")) == ["s0", "c1", "s2", "s3", "c4", "close"]  # 3 of 6
    assert _types(_play(_session("s"), "ws_drop")) == ["s0", "close"]  # at least one, when there is one


@pytest.mark.parametrize(
    ("url", "code", "reason"),
    [
        (REALTIME_URL, 1011, "Internal server error"),
        (LIVE_URL, 1011, "Internal error encountered."),
        (LIVE_URL, 1013, "The service is currently unavailable."),
        (REALTIME_URL, 4000, ""),
    ],
)
def test_a_close_without_a_reason_sends_the_usual_one(url: str, code: int, reason: str) -> None:
    assert _close(_play(SESSION, f"ws_close:code={code}", url=url)) == Close("server", code, reason, 40.0)


def test_drop_ends_without_a_close_frame() -> None:
    play = _play(SESSION, "ws_drop:after=1")
    assert _types(play) == ["s0", "c1", "close"]
    assert _close(play) == Close("none", offset_ms=10.0)


def test_a_stall_is_silence_before_the_next_server_message_for_ever_or_for_seconds() -> None:
    forever = _play(SESSION, "ws_stall:after=3")
    # After the client message that precedes the fourth server message: the silence is the server's.
    assert _types(forever) == ["s0", "c1", "s2", "s3", "c4", "pause", "s5", "s6", "s7", "close"]
    assert forever.steps[5] == Pause(None)
    assert _play(SESSION, "ws_stall:after=3,seconds=1.5").steps[5] == Pause(1500.0)


def test_serve_bounds_a_silence_and_then_drops_the_connection() -> None:
    bounded = bound_silences(_play(SESSION, "ws_stall:after=3"), 250.0)
    assert _types(bounded) == ["s0", "c1", "s2", "s3", "c4", "pause", "close"]
    assert bounded.steps[-2:] == (Pause(250.0), Close("none", offset_ms=40.0))
    short = _play(SESSION, "ws_stall:after=3,seconds=0.1")
    assert bound_silences(short, 250.0) == short


def test_a_stall_past_the_last_server_message_holds_the_end() -> None:
    play = _play(_session("s", "c"), "ws_stall:after=1")
    assert _types(play) == ["s0", "c1", "pause", "close"]


# -- provider events --------------------------------------------------------------------------------


def test_an_openai_error_event_is_inserted_and_the_session_goes_on() -> None:
    play = _play(SESSION, "ws_error:after=2,error_code=server_error,message=boom", call=3)
    assert _types(play) == ["s0", "c1", "s2", "error", "s3", "c4", "s5", "s6", "s7", "close"]
    event = play.steps[3]
    assert isinstance(event, Send)
    assert json.loads(event.data) == {
        "type": "error",
        "event_id": "event_llmcassette_error_3_2",
        "error": {
            "type": "server_error",
            "code": "server_error",
            "message": "boom",
            "param": None,
            "event_id": None,
        },
    }
    assert (event.offset_ms, event.index, event.fragments) == (
        20.0,
        None,
        None,
    )  # when its predecessor was sent
    # Its text is what the service sends: compact JSON.
    assert event.data == json.dumps(json.loads(event.data), separators=(",", ":"))


def test_gemini_live_has_no_error_event_so_its_error_is_a_1011_close() -> None:
    play = _play(SESSION, "ws_error:after=2", url=LIVE_URL)
    assert _types(play) == ["s0", "c1", "s2", "close"]
    assert _close(play) == Close("server", 1011, "Internal error encountered.", 20.0)
    long = _close(_play(SESSION, "ws_error:message=" + "é" * 100, url=LIVE_URL))
    assert long.reason == "é" * 61  # cut to whole characters within 123 bytes


def test_rate_limits_takes_the_recorded_limits_and_the_given_remaining() -> None:
    limits = {
        "type": "rate_limits.updated",
        "rate_limits": [
            {"name": "requests", "limit": 5000, "remaining": 4999, "reset_seconds": 0.01},
            {"name": "tokens", "limit": 40000, "remaining": 39000, "reset_seconds": 1.5},
        ],
    }
    session = WebSocketSession(
        messages=[
            WebSocketMessage.capture("server", 1.0, json.dumps({"type": "session.created"})),
            WebSocketMessage.capture("server", 2.0, json.dumps(limits)),
            WebSocketMessage.capture("server", 3.0, json.dumps({"type": "response.done"})),
        ]
    )
    play = _play(session, "ws_rate_limits:after=2,tokens=12,reset_s=20")
    assert isinstance(play.steps[2], Send)
    assert json.loads(play.steps[2].data)["rate_limits"] == [
        {"name": "requests", "limit": 5000, "remaining": 0, "reset_seconds": 20.0},
        {"name": "tokens", "limit": 40000, "remaining": 12, "reset_seconds": 20.0},
    ]
    before = _play(session, "ws_rate_limits:after=1").steps[1]
    assert isinstance(before, Send)
    assert json.loads(before.data)["rate_limits"][0] == {
        "name": "requests",
        "remaining": 0,
        "reset_seconds": 1.0,
    }


def test_rate_limits_exists_only_on_openai_realtime_sessions() -> None:
    plan = FaultPlan(["ws_rate_limits", "ws_close"])
    live = RequestInfo("GET", LIVE_URL)
    fired = plan.select(live, provider="gemini", streaming=True, websocket=True)
    assert [fault.name for fault, _ in fired] == ["ws_close"]
    realtime = RequestInfo("GET", REALTIME_URL)
    fired = plan.select(realtime, provider="openai", streaming=True, websocket=True)
    assert [(fault.name, call) for fault, call in fired] == [("ws_rate_limits", 1), ("ws_close", 2)]


# -- bytes ------------------------------------------------------------------------------------------


def test_malformed_cuts_the_next_server_messages_json_in_half_and_keeps_its_kind() -> None:
    play = _play(SESSION, "ws_malformed:after=1")
    assert play.steps[2] == Send('{"type": "s2"}'[:7], 20.0, None, None)
    assert play.steps[3:] == script_of(SESSION).steps[3:]
    binary = WebSocketSession(messages=[WebSocketMessage.capture("server", 0.0, b'{"setupComplete": {}}')])
    assert _play(binary, "ws_malformed:after=0", url=LIVE_URL).steps[0] == Send(b'{"setupCom', 0.0)


def test_malformed_past_the_end_changes_nothing() -> None:
    assert _play(SESSION, "ws_malformed:after=6") == script_of(SESSION)


def test_fragment_splits_every_server_message_or_only_the_chosen_one() -> None:
    every = _play(SESSION, "ws_fragment:size=4")
    sizes = [step.fragments for step in every.steps if isinstance(step, Send)]
    assert sizes == [(4, 4, 4, 2)] * 6  # '{"type": "s0"}' is 14 bytes
    one = _play(SESSION, "ws_fragment:size=1,after=2")
    assert [step.fragments for step in one.steps if isinstance(step, Send)] == [
        None,
        None,
        (1,) * 14,
        None,
        None,
        None,
    ]
    text = WebSocketSession(messages=[WebSocketMessage.capture("server", 0.0, '"°C"')])
    assert _play(text, "ws_fragment:size=2").steps[0] == Send(
        '"°C"', 0.0, (2, 2, 1), 0
    )  # bytes, not characters


def test_faults_apply_in_plan_order_each_on_what_the_last_left() -> None:
    play = _play(SESSION, "ws_error:after=1", "ws_close:after=2")
    # The error event is the second server message now, so the close replaces s2.
    assert _types(play) == ["s0", "c1", "error", "close"]


def test_a_status_fault_refuses_the_handshake_with_the_providers_error() -> None:
    context = SessionContext(url=REALTIME_URL, provider="openai", call=1)
    refused = apply_faults(script_of(SESSION), [(parse_fault("rate_limit:retry_after=7"), 1)], context)
    assert refused.steps == ()
    assert refused.refusal is not None
    assert refused.refusal.status == 429
    assert ("retry-after", "7") in refused.refusal.headers
    assert json.loads(refused.refusal.body)["error"]["type"] == "requests"  # OpenAI's 429 body
    live = SessionContext(url=LIVE_URL, provider="gemini", call=1)
    refused = apply_faults(script_of(SESSION), [(parse_fault("unauthorized"), 1)], live)
    assert refused.refusal is not None
    # Gemini answers a bad key with 400 INVALID_ARGUMENT (API_KEY_INVALID), as its profile knows.
    assert refused.refusal.status == 400
    assert json.loads(refused.refusal.body)["error"]["status"] == "INVALID_ARGUMENT"


# -- counting and parameters ------------------------------------------------------------------------


def test_sessions_and_http_requests_count_for_their_own_faults_only() -> None:
    plan = FaultPlan(["ws_drop:times=1", "stall:times=1", "unauthorized:times=2", "connect_error:times=1"])
    http = RequestInfo("POST", "https://api.openai.com/v1/chat/completions")
    handshake = RequestInfo("GET", REALTIME_URL)
    names = []
    for request, websocket in ((http, False), (handshake, True), (handshake, True)):
        fired = plan.select(request, provider="openai", streaming=True, websocket=websocket)
        names.append([fault.name for fault, _ in fired])
    # A status fault answers any request, a handshake too; a connection fault (an HTTP library's
    # exception) only HTTP requests; each family counts its own calls.
    assert names == [["stall", "unauthorized", "connect_error"], ["ws_drop", "unauthorized"], []]


def test_which_faults_leave_the_recording_for_a_reconnect() -> None:
    breaking = {"ws_close", "ws_drop", "ws_error", "ws_stall", "ws_malformed"}
    for fault in (WsClose(), WsDrop(), WsError(), WsStall(), WsMalformed(), WsRateLimits(), WsFragment()):
        assert isinstance(fault, SessionFault)
        assert fault.breaks_session == (fault.name in breaking), fault.name


def test_the_dialect_is_read_from_the_handshake_url() -> None:
    assert dialect_of(REALTIME_URL) == "openai-realtime"
    assert dialect_of("wss://x.openai.azure.com/openai/realtime?api-version=2025-04-01&deployment=gpt") == (
        "openai-realtime"
    )
    assert dialect_of(LIVE_URL) == "gemini-live"
    assert dialect_of("ws://127.0.0.1:9/chat") == "websocket"
    assert detect_profile(RequestInfo("GET", REALTIME_URL)).name == "openai"


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ("ws_close:code=1006", "code"),  # a code no close frame may carry
        ("ws_close:code=999", "code"),
        ("ws_close:code=5000", "code"),
        ("ws_close:reason=" + "é" * 62, "reason"),  # 124 bytes
        ("ws_close:after=-1", "after"),
        ("ws_stall:seconds=3601", "seconds"),
        ("ws_stall:seconds=inf", "seconds"),
        ("ws_fragment:size=0", "size"),
        ("ws_rate_limits:reset_s=nan", "reset_s"),
        ("ws_error:message=" + "x" * 1001, "message"),
    ],
)
def test_parameters_are_bounded(spec: str, field: str) -> None:
    with pytest.raises(ConfigError, match=rf"parameter `{field}`"):
        parse_fault(spec)


def test_the_models_round_trip_through_spec_strings() -> None:
    for fault in (
        WsClose(code=4000, reason="session expired", after=2, times=1),
        WsDrop(after=0),
        WsError(error_type="invalid_request_error", error_code="x", nth=2),
        WsRateLimits(requests=1, tokens=2, reset_s=0.5),
        WsStall(seconds=2.5, after=1),
        WsMalformed(after=3),
        WsFragment(size=3, after=1),
    ):
        assert parse_fault(fault.spec()) == fault


# -- properties -------------------------------------------------------------------------------------

_SESSIONS = st.lists(st.sampled_from("cs"), max_size=12).map(lambda senders: _session(*senders))


def _sends(script: SessionScript) -> list[Send]:
    return [step for step in script.steps if isinstance(step, Send)]


# No deadline: each example is pure and quick, but a loaded machine can pause any one of them.
@settings(deadline=None)
@given(session=_SESSIONS, after=st.integers(0, 14))
def test_an_ending_keeps_a_prefix_with_exactly_after_server_messages(
    session: WebSocketSession, after: int
) -> None:
    recorded = script_of(session).steps
    servers = len(_sends(script_of(session)))
    for spec in (f"ws_close:after={after}", f"ws_drop:after={after}"):
        play = _play(session, spec)
        *kept, end = play.steps
        assert tuple(kept) == recorded[: len(kept)]
        assert len(_sends(play)) == min(after, servers)
        assert isinstance(end, Close) and end.by in ("server", "none")


@settings(deadline=None)
@given(session=_SESSIONS, after=st.integers(0, 14), size=st.integers(1, 5))
def test_events_and_frames_lose_no_recorded_message(session: WebSocketSession, after: int, size: int) -> None:
    recorded = script_of(session).steps
    for spec in (f"ws_error:after={after}", f"ws_rate_limits:after={after}", f"ws_stall:after={after}"):
        play = _play(session, spec)
        assert tuple(step for step in play.steps if not _added(step)) == recorded
    fragmented = _play(session, f"ws_fragment:size={size}")
    for step, original in zip(fragmented.steps, recorded, strict=True):
        if isinstance(step, Send):
            assert step.fragments is not None and sum(step.fragments) == len(step.data.encode())
            assert max(step.fragments) <= size
            step = Send(step.data, step.offset_ms, None, step.index)
        assert step == original
    malformed = _play(session, f"ws_malformed:after={after}")
    for step, original in zip(malformed.steps, recorded, strict=True):
        if step != original:
            assert isinstance(step, Send) and isinstance(original, Send)
            assert original.data.startswith(step.data) and len(step.data) < len(original.data)


def _added(step: object) -> bool:
    return isinstance(step, Pause) or (isinstance(step, Send) and step.index is None)
