"""WebSocket faults as pure functions of a recorded session: what each plays instead of it."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, strategies as st

from llmcassette import ConfigError
from llmcassette._exchange import RequestInfo
from llmcassette._websocket._models import WebSocketClose, WebSocketMessage, WebSocketSession
from llmcassette.faults import (
    FaultPlan,
    RateLimit,
    SessionPlay,
    Stall,
    WsClose,
    WsDrop,
    WsError,
    WsFragment,
    WsMalformed,
    WsRateLimits,
    WsStall,
    parse_fault,
    play_session,
)
from llmcassette.faults._session import dialect_of
from llmcassette.providers import detect_profile
from tests.faults import make_context

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


def _types(play: SessionPlay) -> list[str]:
    return [played.message.json_value["type"] for played in play.messages]


def _play(session: WebSocketSession, *faults: Any, url: str = REALTIME_URL, call: int = 1) -> SessionPlay:
    context = make_context(url=url, call=call, streaming=True)
    return play_session(session, [(parse_fault(fault), call) for fault in faults], context)


SESSION = _session("s", "c", "s", "s", "c", "s", "s", "s")  # server messages: 0, 2, 3, 5, 6, 7


def test_without_faults_the_recording_plays_as_it_is() -> None:
    play = _play(SESSION)
    assert [played.message for played in play.messages] == SESSION.messages
    assert play.close == SESSION.close
    assert (play.faults, play.broken, play.close_pause_ms) == ((), False, 0.0)


# -- endings ----------------------------------------------------------------------------------------


def test_close_after_n_server_messages_keeps_what_came_before_and_closes_with_the_code() -> None:
    play = _play(SESSION, "ws_close:code=1008,reason=bye,after=3")
    assert _types(play) == ["s0", "c1", "s2", "s3"]
    assert play.close == WebSocketClose(code=1008, reason="bye", by="server", offset_ms=30.0)
    assert play.faults == ("ws_close:after=3,code=1008,reason=bye",)
    assert play.broken


def test_close_after_zero_waits_for_nothing_the_server_sent() -> None:
    client_first = _session("c", "s", "s")
    assert _types(_play(client_first, "ws_close:after=0")) == ["c0"]  # the client's opening message stays
    assert _types(_play(SESSION, "ws_close:after=0")) == []


def test_close_past_the_last_server_message_replaces_the_recorded_close() -> None:
    play = _play(_session("s", "c", "s", "c"), "ws_close:after=99,code=4000,reason=session expired")
    assert _types(play) == ["s0", "c1", "s2"]
    assert play.close is not None
    assert (play.close.code, play.close.reason, play.close.by) == (4000, "session expired", "server")


def test_the_default_place_is_half_of_the_server_messages() -> None:
    assert _types(_play(SESSION, "ws_close")) == ["s0", "c1", "s2", "s3"]  # 3 of 6
    assert _types(_play(_session("s"), "ws_drop")) == ["s0"]  # at least one, when there is one
    assert _types(_play(_session("c"), "ws_drop")) == ["c0"]


@pytest.mark.parametrize(
    ("url", "code", "reason"),
    [(REALTIME_URL, 1011, "Internal server error"), (LIVE_URL, 1011, "Internal error encountered.")],
)
def test_a_close_without_a_reason_sends_the_usual_one(url: str, code: int, reason: str) -> None:
    play = _play(SESSION, "ws_close", url=url)
    assert play.close is not None
    assert (play.close.code, play.close.reason) == (code, reason)
    assert _play(SESSION, "ws_close:code=1013", url=LIVE_URL).close.reason == (  # type: ignore[union-attr]
        "The service is currently unavailable."
    )


def test_drop_ends_without_a_close_frame() -> None:
    play = _play(SESSION, "ws_drop:after=1")
    assert _types(play) == ["s0"]
    assert play.close == WebSocketClose(by="none", offset_ms=0.0)
    assert play.broken


def test_a_stall_silences_the_next_server_message_for_ever_or_for_seconds() -> None:
    forever = _play(SESSION, "ws_stall:after=2")
    assert [played.pause_ms for played in forever.messages] == [0, 0, 0, math.inf, 0, 0, 0, 0]
    assert forever.messages[3].fault == "ws_stall:after=2"
    assert forever.broken
    paused = _play(SESSION, "ws_stall:after=2,seconds=1.5")
    assert paused.messages[3].pause_ms == 1500.0
    assert _types(paused) == _types(forever) == _types(_play(SESSION))  # nothing is lost


def test_a_stall_past_the_last_server_message_holds_the_close() -> None:
    play = _play(SESSION, "ws_stall:after=6")
    assert all(played.pause_ms == 0 for played in play.messages)
    assert play.close_pause_ms == math.inf


# -- provider events --------------------------------------------------------------------------------


def test_an_openai_error_event_is_inserted_and_the_session_goes_on() -> None:
    play = _play(SESSION, "ws_error:after=2,error_code=server_error,message=boom", call=3)
    assert _types(play) == ["s0", "c1", "s2", "error", "s3", "c4", "s5", "s6", "s7"]
    event = play.messages[3]
    assert event.message.json_value == {
        "type": "error",
        "event_id": "event_llmcassette_error_3_1",
        "error": {
            "type": "server_error",
            "code": "server_error",
            "message": "boom",
            "param": None,
            "event_id": None,
        },
    }
    assert event.message.offset_ms == 20.0  # when the message before it was recorded
    assert event.fault == play.faults[0]
    assert play.close == SESSION.close
    assert not play.broken
    # Its text is what the service sends: compact JSON.
    assert event.message.data == json.dumps(event.message.json_value, separators=(",", ":"))


def test_gemini_live_has_no_error_event_so_its_error_is_a_1011_close() -> None:
    play = _play(SESSION, "ws_error:after=2", url=LIVE_URL)
    assert _types(play) == ["s0", "c1", "s2"]
    assert play.close == WebSocketClose(
        code=1011, reason="Internal error encountered.", by="server", offset_ms=20.0
    )
    long = _play(SESSION, "ws_error:message=" + "é" * 100, url=LIVE_URL).close
    assert long is not None and long.reason is not None
    assert len(long.reason.encode()) <= 123 and long.reason == "é" * 61  # cut whole characters


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
    event = play.messages[2].message.json_value
    assert event["rate_limits"] == [
        {"name": "requests", "limit": 5000, "remaining": 0, "reset_seconds": 20.0},
        {"name": "tokens", "limit": 40000, "remaining": 12, "reset_seconds": 20.0},
    ]
    before = _play(session, "ws_rate_limits:after=1").messages[1].message.json_value
    assert before["rate_limits"][0] == {
        "name": "requests",
        "remaining": 0,
        "reset_seconds": 1.0,
    }  # no limit known yet


def test_rate_limits_exists_only_on_openai_realtime_sessions() -> None:
    plan = FaultPlan(["ws_rate_limits", "ws_close"])
    live = RequestInfo("GET", LIVE_URL)
    assert [
        fault.name for fault, _ in plan.select(live, provider="gemini", streaming=True, websocket=True)
    ] == ["ws_close"]
    realtime = RequestInfo("GET", REALTIME_URL)
    fired = plan.select(realtime, provider="openai", streaming=True, websocket=True)
    assert [(fault.name, call) for fault, call in fired] == [("ws_rate_limits", 1), ("ws_close", 2)]


# -- bytes ------------------------------------------------------------------------------------------


def test_malformed_cuts_the_next_server_messages_json_in_half_and_keeps_its_kind() -> None:
    play = _play(SESSION, "ws_malformed:after=1")
    cut = play.messages[2].message
    assert cut.text == '{"type": "s2"}'[:7]
    assert _types(_play(SESSION))[3:] == [played.message.json_value["type"] for played in play.messages[3:]]
    binary = WebSocketSession(messages=[WebSocketMessage.capture("server", 0.0, b'{"setupComplete": {}}')])
    assert _play(binary, "ws_malformed:after=0", url=LIVE_URL).messages[0].message.binary == b'{"setupCom'


def test_malformed_past_the_end_changes_nothing() -> None:
    play = _play(SESSION, "ws_malformed:after=6")
    assert [played.message for played in play.messages] == SESSION.messages
    assert not play.broken


def test_fragment_marks_every_server_message_or_only_the_chosen_one() -> None:
    every = _play(SESSION, "ws_fragment:size=1")
    assert [played.fragment_bytes for played in every.messages] == [1, None, 1, 1, None, 1, 1, 1]
    one = _play(SESSION, "ws_fragment:size=4,after=2")
    assert [played.fragment_bytes for played in one.messages] == [None, None, None, 4, None, None, None, None]
    assert every.faults == ("ws_fragment:size=1",) and not every.broken


def test_faults_apply_in_plan_order_each_on_what_the_last_left() -> None:
    play = _play(SESSION, "ws_error:after=1", "ws_close:after=2")
    assert _types(play) == ["s0", "error"]  # the error event is the second server message now
    assert len(play.faults) == 2


def test_other_faults_in_the_fired_list_are_not_the_sessions() -> None:
    context = make_context(url=REALTIME_URL, streaming=True)
    play = play_session(SESSION, [(RateLimit(), 1), (Stall(), 1)], context)
    assert play == SessionPlay.of(SESSION)


# -- counting and parameters ------------------------------------------------------------------------


def test_sessions_and_http_requests_count_for_their_own_faults_only() -> None:
    plan = FaultPlan(["ws_drop:times=1", "stall:times=1", "unauthorized:times=2"])
    http = RequestInfo("POST", "https://api.openai.com/v1/chat/completions")
    handshake = RequestInfo("GET", REALTIME_URL)
    names = []
    for request, websocket in ((http, False), (handshake, True), (handshake, True)):
        fired = plan.select(request, provider="openai", streaming=True, websocket=websocket)
        names.append([fault.name for fault, _ in fired])
    # A status fault answers any request, a handshake too; each family counts its own calls.
    assert names == [["stall", "unauthorized"], ["ws_drop", "unauthorized"], []]


def test_the_dialect_is_read_from_the_handshake_url() -> None:
    assert dialect_of(RequestInfo("GET", REALTIME_URL)) == "openai-realtime"
    azure = "wss://x.openai.azure.com/openai/realtime?api-version=2025-04-01&deployment=gpt"
    assert dialect_of(RequestInfo("GET", azure)) == "openai-realtime"
    assert dialect_of(RequestInfo("GET", LIVE_URL)) == "gemini-live"
    assert dialect_of(RequestInfo("GET", "ws://127.0.0.1:9/chat")) == "websocket"
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


@given(session=_SESSIONS, after=st.integers(0, 14))
def test_an_ending_keeps_a_prefix_with_exactly_after_server_messages(
    session: WebSocketSession, after: int
) -> None:
    servers = sum(message.sender == "server" for message in session.messages)
    for spec in (f"ws_close:after={after}", f"ws_drop:after={after}"):
        play = _play(session, spec)
        kept = [played.message for played in play.messages]
        assert kept == session.messages[: len(kept)]
        assert sum(message.sender == "server" for message in kept) == min(after, servers)
        assert not kept or kept[-1].sender == "server" or after == 0 or servers == 0


@given(session=_SESSIONS, after=st.integers(0, 14), size=st.integers(1, 5))
def test_events_and_frames_lose_no_recorded_message(session: WebSocketSession, after: int, size: int) -> None:
    for spec in (f"ws_error:after={after}", f"ws_rate_limits:after={after}", f"ws_fragment:size={size}"):
        play = _play(session, spec)
        recorded = [played.message for played in play.messages if played.fault is None or "fragment" in spec]
        assert recorded == session.messages
    malformed = _play(session, f"ws_malformed:after={after}")
    for played, message in zip(malformed.messages, session.messages, strict=True):
        if played.fault is None:
            assert played.message == message
        else:
            assert message.data.startswith(played.message.data) and played.message.json_value is None
