"""
Request matching: which requests count as the same, and how a near miss is explained.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import example, given, settings, strategies as st

from llmcassette._bodies import MAX_JSON_DEPTH
from llmcassette._exceptions import ConfigError
from llmcassette._matching import (
    DEFAULT_MATCH_ON,
    MATCHERS,
    Matcher,
    RequestParts,
    _ignored_value,
    _without,
    json_differences,
    prepare_body,
)

CHAT_URL = "https://api.openai.com/v1/chat/completions"
CHAT_BODY = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
    "stream": True,
}


def parts(url: str = CHAT_URL, body: Any = b"", method: str = "POST") -> RequestParts:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return RequestParts(method=method, url=url, body=raw)


MATCHER = Matcher()


# --- URLs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        pytest.param(
            "HTTPS://API.OpenAI.com/v1/models", "https://api.openai.com/v1/models", id="scheme-host-case"
        ),
        pytest.param("https://h:443/v1", "https://h/v1", id="default-https-port"),
        pytest.param("http://localhost:80/api/chat", "http://localhost/api/chat", id="default-http-port"),
        pytest.param("https://h/p?b=2&a=1", "https://h/p?a=1&b=2", id="query-order"),
        pytest.param("https://h/p?a=1#section", "https://h/p?a=1", id="fragment"),
        pytest.param(
            "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-v2%3A1/invoke",
            "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-v2:1/invoke",
            id="percent-encoded-colon",
        ),
        pytest.param("https://h/p?x=%3A", "https://h/p?x=:", id="percent-encoded-query"),
        pytest.param("https://h/p?x=a+b", "https://h/p?x=a%20b", id="plus-is-space"),
        pytest.param("https://h", "https://h/", id="empty-path-is-root"),
        pytest.param("http://[::1]:80/", "http://[::1]/", id="ipv6-default-port"),
    ],
)
def test_equivalent_urls_match(a: str, b: str) -> None:
    assert MATCHER.key(parts(a)) == MATCHER.key(parts(b))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        pytest.param("https://h/v1", "http://h/v1", id="scheme"),
        pytest.param("https://h:8443/v1", "https://h/v1", id="other-port"),
        pytest.param("https://h/V1", "https://h/v1", id="path-case"),
        pytest.param("https://h/a%2Fb", "https://h/a/b", id="encoded-slash-is-not-a-slash"),
        pytest.param("https://h/p?a=1", "https://h/p?a=2", id="query-value"),
        pytest.param("https://h/p?a=1", "https://h/p", id="query-missing"),
        pytest.param("https://h/p/", "https://h/p", id="trailing-slash"),
    ],
)
def test_different_urls_do_not_match(a: str, b: str) -> None:
    assert MATCHER.key(parts(a)) != MATCHER.key(parts(b))


def test_method_case_does_not_matter() -> None:
    assert MATCHER.key(parts(method="post")) == MATCHER.key(parts(method="POST"))
    assert MATCHER.key(parts(method="GET")) != MATCHER.key(parts(method="POST"))


# --- bodies --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        pytest.param(
            json.dumps(CHAT_BODY).encode(),
            json.dumps(CHAT_BODY, separators=(",", ":"), indent=None).encode(),
            id="whitespace",
        ),
        pytest.param(b'{"model": "m", "stream": true}', b'{"stream": true, "model": "m"}', id="key-order"),
        pytest.param(b'{"t": "\\u00e9"}', '{"t": "é"}'.encode(), id="unicode-escapes"),
        pytest.param(
            b'{"model": "m", "user": "u-1"}', b'{"model": "m", "user": "u-2"}', id="openai-user-ignored"
        ),
        pytest.param(
            b'{"metadata": {"user_id": "a", "k": 1}}',
            b'{"metadata": {"user_id": "b", "k": 1}}',
            id="anthropic-user-id-ignored",
        ),
        pytest.param(b'{"prompt_cache_key": "x", "m": 1}', b'{"m": 1}', id="cache-key-ignored"),
    ],
)
def test_equivalent_json_bodies_match(a: bytes, b: bytes) -> None:
    assert MATCHER.key(parts(body=a)) == MATCHER.key(parts(body=b))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        pytest.param(b'{"temperature": 1}', b'{"temperature": 1.0}', id="int-and-float"),
        pytest.param(b'{"stream": true}', b'{"stream": 1}', id="bool-and-int"),
        pytest.param(b'{"messages": [1, 2]}', b'{"messages": [2, 1]}', id="list-order"),
        pytest.param(b'{"metadata": {"k": 1}}', b'{"metadata": {"k": 2}}', id="sibling-of-ignored"),
        pytest.param(b"prompt=hi", b"prompt=ho", id="form"),
        pytest.param(b"{not json", b"{not  json", id="broken-json-compared-as-bytes"),
        pytest.param(b"", b"{}", id="empty-and-object"),
    ],
)
def test_different_bodies_do_not_match(a: bytes, b: bytes) -> None:
    assert MATCHER.key(parts(body=a)) != MATCHER.key(parts(body=b))


@pytest.mark.parametrize(
    ("ignored", "a", "b"),
    [
        pytest.param(
            ["messages.*.id"],
            {"messages": [{"id": 1, "c": "x"}, {"id": 2}]},
            {"messages": [{"id": 7, "c": "x"}, {"id": 8}]},
            id="wildcard-in-list",
        ),
        pytest.param(["tools.0"], {"tools": [1, 2]}, {"tools": [9, 2]}, id="list-index"),
        pytest.param(["tools.*"], {"tools": [1, {"a": 2}]}, {"tools": [3, 4]}, id="every-list-item"),
        pytest.param(["tools.5"], {"tools": [1]}, {"tools": [1]}, id="index-past-the-end"),
        pytest.param(
            ["*.seed"], {"a": {"seed": 1}, "b": {"seed": 2}}, {"a": {"seed": 3}, "b": {}}, id="wildcard-key"
        ),
        pytest.param(["request_id"], [{"request_id": 1}], [{"request_id": 1}], id="top-level-list-untouched"),
    ],
)
def test_ignored_body_fields(ignored: list[str], a: Any, b: Any) -> None:
    matcher = Matcher(ignored_body_fields=ignored)
    assert matcher.key(parts(body=a)) == matcher.key(parts(body=b))


def test_ignoring_fields_does_not_ignore_everything() -> None:
    matcher = Matcher(ignored_body_fields=["messages.*.id"])
    a = {"messages": [{"id": 1, "c": "x"}]}
    b = {"messages": [{"id": 1, "c": "y"}]}
    assert matcher.key(parts(body=a)) != matcher.key(parts(body=b))
    # Blanked list items still count: a list of another length is another request.
    matcher = Matcher(ignored_body_fields=["tools.*"])
    assert matcher.key(parts(body={"tools": [1]})) != matcher.key(parts(body={"tools": [1, 2]}))


def multipart(boundary: bytes, value: bytes = b"hello") -> bytes:
    """A multipart/form-data body as requests, httpx and aiohttp write one: a field and a file."""
    return (
        b"--" + boundary + b'\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n'
        b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
        b"Content-Type: audio/wav\r\n\r\n" + value + b"\r\n--" + boundary + b"--\r\n"
    )


def test_multipart_bodies_match_whatever_their_random_boundary() -> None:
    # Every client draws a new boundary per request (requests and httpx from os.urandom), so an
    # upload (a transcription, a file) recorded with one never matched the replayed one.
    a = parts(body=multipart(b"a1b2c3d4e5f6a7b8c9d0"))
    b = parts(body=multipart(b"0f9e8d7c6b5a4f3e2d1c"))
    assert MATCHER.key(a) == MATCHER.key(b)
    assert MATCHER.key(parts(body=multipart(b"x" * 70))) == MATCHER.key(a)
    # What the parts hold still counts, however long the body.
    assert MATCHER.key(a) != MATCHER.key(parts(body=multipart(b"a1b2c3d4e5f6a7b8c9d0", b"bye")))
    long = multipart(b"a1b2c3d4e5f6a7b8c9d0", b"x" * 10_000)
    assert MATCHER.key(parts(body=long)) == MATCHER.key(parts(body=multipart(b"ffff", b"x" * 10_000)))
    assert MATCHER.key(parts(body=long)) != MATCHER.key(parts(body=multipart(b"ffff", b"y" * 10_000)))
    prepared = prepare_body(multipart(b"a1b2c3d4e5f6a7b8c9d0"))
    assert MATCHER.probe(b, prepared=prepared).key == MATCHER.key(b)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"--a\r\nno closing delimiter\r\n", id="unclosed"),
        pytest.param(b"--\r\n\r\n----\r\n", id="empty-boundary"),
        pytest.param(b"--" + b"b" * 71 + b"\r\nx\r\n--" + b"b" * 71 + b"--\r\n", id="boundary-too-long"),
        pytest.param(b"-- a\r\nx\r\n-- a--\r\n", id="boundary-ends-in-space"),
    ],
)
def test_bodies_that_only_look_like_multipart_keep_their_bytes(body: bytes) -> None:
    assert MATCHER.key(parts(body=body)) != MATCHER.key(parts(body=body.replace(b"--", b"--z", 1)))


def test_keys_are_hashable() -> None:
    index = {MATCHER.key(parts(body=CHAT_BODY)): "recorded"}
    assert index[MATCHER.key(parts(body=CHAT_BODY))] == "recorded"


# --- match_on ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("match_on", "a", "b", "same"),
    [
        pytest.param(
            ["method"], parts("https://a/x"), parts("https://b/y", body=b"z"), True, id="method-only"
        ),
        pytest.param(["host"], parts("https://a/x"), parts("http://a:8080/y"), True, id="host"),
        pytest.param(["host"], parts("https://a/x"), parts("https://b/x"), False, id="host-differs"),
        pytest.param(["path"], parts("https://a/x?q=1"), parts("http://b/x"), True, id="path"),
        pytest.param(["query"], parts("https://a/x?q=1&r=2"), parts("https://b/y?r=2&q=1"), True, id="query"),
        pytest.param(["port"], parts("https://a/"), parts("https://b:443/"), True, id="port"),
        pytest.param(["scheme"], parts("https://a/"), parts("http://a/"), False, id="scheme"),
        pytest.param(["uri"], parts("https://a/x"), parts("https://A/x#f"), True, id="uri-is-url"),
        pytest.param(["method", "path"], parts(body=b"1"), parts(body=b"2"), True, id="body-left-out"),
    ],
)
def test_match_on(match_on: list[str], a: RequestParts, b: RequestParts, same: bool) -> None:
    matcher = Matcher(match_on)
    assert (matcher.key(a) == matcher.key(b)) is same


def test_defaults() -> None:
    assert MATCHER.match_on == DEFAULT_MATCH_ON == ("method", "url", "body")
    assert set(DEFAULT_MATCH_ON) <= set(MATCHERS)


def test_unknown_match_on_names_are_a_config_error() -> None:
    with pytest.raises(
        ConfigError, match=r"^llmcassette: `match_on` names unknown request parts \['headers'\]"
    ):
        Matcher(["method", "headers"])


def test_empty_match_on_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"^llmcassette: `match_on` is empty") as info:
        Matcher([])
    assert isinstance(info.value, ValueError)


# --- explaining a miss ---------------------------------------------------------------------------


def test_no_differences_for_a_match() -> None:
    assert MATCHER.differences(parts(body=CHAT_BODY), parts(body=CHAT_BODY)) == []


def test_differences_name_method_url_and_body_fields() -> None:
    sent = parts(body={**CHAT_BODY, "temperature": 0.5})
    recorded = parts(CHAT_URL + "?v=2", body={**CHAT_BODY, "model": "gpt-4o"}, method="PUT")
    assert MATCHER.differences(sent, recorded) == [
        "method differs: recorded PUT",
        f"URL differs: recorded {CHAT_URL + '?v=2'!r}",
        'body differs: `model` is "gpt-4o-mini", recorded "gpt-4o"; `temperature` sent but not recorded',
    ]


def test_body_differences_are_capped_at_three() -> None:
    sent = parts(body={"a": 1, "b": 2, "c": 3, "d": 4, "e": 5})
    recorded = parts(body={})
    (sentence,) = MATCHER.differences(sent, recorded)
    assert sentence.startswith("body differs: `a` sent but not recorded; ")
    assert sentence.endswith("; and 2 more")


def test_non_json_body_difference_gives_sizes() -> None:
    (sentence,) = MATCHER.differences(parts(body=b"prompt=hello"), parts(body=b"prompt=hi"))
    assert sentence == "body differs (9 bytes recorded, 12 bytes sent)"


def test_ignored_fields_are_not_reported() -> None:
    sent = parts(body={"model": "m", "user": "a", "n": 1})
    recorded = parts(body={"model": "m", "user": "b", "n": 2})
    assert MATCHER.differences(sent, recorded) == ["body differs: `n` is 1, recorded 2"]


def test_other_parts_show_the_recorded_value() -> None:
    matcher = Matcher(["host", "query"])
    assert matcher.differences(parts("https://a/?x=1"), parts("https://b/?x=2")) == [
        "host differs: recorded 'b'",
        "query differs: recorded (('x', '2'),)",
    ]


@pytest.mark.parametrize(
    ("recorded", "sent", "expected"),
    [
        pytest.param(
            {"a": {"b": [1, {"c": 2}]}},
            {"a": {"b": [1, {"c": 3}]}},
            ["`a.b[1].c` is 3, recorded 2"],
            id="path",
        ),
        pytest.param([1, 2], [1], ["`(root)` has 1 items, recorded 2"], id="list-length"),
        pytest.param({"a": True}, {"a": 1}, ["`a` is 1, recorded true"], id="bool-is-not-int"),
        pytest.param({"t": 1}, {"t": 1.0}, ["`t` is 1.0, recorded 1"], id="int-is-not-float"),
        pytest.param({"t": 0.0}, {"t": -0.0}, ["`t` is -0.0, recorded 0.0"], id="negative-zero"),
        pytest.param({"a": {}}, {"a": []}, ["`a` is [], recorded {}"], id="container-types"),
        pytest.param(
            {"x": "a" * 100}, {"x": "b"}, [f'`x` is "b", recorded "{"a" * 56}...'], id="long-value-cut"
        ),
        pytest.param({"n": float("nan")}, {"n": float("nan")}, [], id="nan-equals-nan"),
        pytest.param({"b": 1, "a": 2}, {"a": 2, "b": 1}, [], id="key-order"),
    ],
)
def test_json_differences(recorded: Any, sent: Any, expected: list[str]) -> None:
    assert json_differences(recorded, sent) == expected


# --- property ------------------------------------------------------------------------------------

# Few distinct leaves, so that generated bodies often nearly match: equal but for 1 and 1.0, for
# 0.0 and -0.0, for True and 1, or for the ignored `user` field.
_JSON = st.recursive(
    st.sampled_from([0, 0.0, -0.0, 1, 1.0, True, False, None, "", "a"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("ab"), inner, max_size=2),
    max_leaves=6,
)


_BODIES = st.dictionaries(st.sampled_from(["model", "user", "n"]), _JSON)


# Values Python finds equal (or nearly) that are different JSON.
_LOOK_ALIKES: dict[str, list[Any]] = {
    "0": [0.0, False],
    "0.0": [-0.0, 0],
    "-0.0": [0.0],
    "1": [1.0, True],
    "1.0": [1, True],
    "True": [1],
    "False": [0],
    "None": [""],
}


@st.composite
def body_pairs(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    first = draw(_BODIES)
    # The second body is the first with one field changed, to a look-alike when there is one, or
    # another body altogether.
    mutate = draw(st.booleans())
    if first and mutate:
        key = draw(st.sampled_from(sorted(first)))
        twins = _LOOK_ALIKES.get(repr(first[key]))
        return first, {**first, key: draw(st.sampled_from(twins) if twins else _JSON)}
    return first, draw(_BODIES)


@settings(max_examples=200, deadline=None)
@given(pair=body_pairs())
def test_a_miss_always_has_an_explanation(pair: tuple[dict[str, Any], dict[str, Any]]) -> None:
    # Whenever two bodies get different keys, the explanation must say something about the body;
    # when they get the same key there is nothing to explain.
    sent, recorded = parts(body=pair[0]), parts(body=pair[1])
    differences = MATCHER.differences(sent, recorded)
    if MATCHER.key(sent) == MATCHER.key(recorded):
        assert differences == []
    else:
        (sentence,) = differences
        assert sentence.startswith("body differs: `")


@settings(max_examples=200, deadline=None)
@given(
    body=st.dictionaries(st.text(max_size=4), _JSON, max_size=5),
    query=st.lists(
        st.tuples(st.sampled_from("abc"), st.sampled_from(["1", "x y", ":"])),
        max_size=4,
        unique_by=lambda p: p[0],
    ),
    seed=st.randoms(use_true_random=False),
)
def test_keys_ignore_order_and_spelling(
    body: dict[str, Any], query: list[tuple[str, str]], seed: Any
) -> None:
    shuffled_query = list(query)
    seed.shuffle(shuffled_query)
    items = list(body.items())
    seed.shuffle(items)
    url_a = CHAT_URL + "?" + "&".join(f"{k}={v.replace(' ', '+')}" for k, v in query)
    url_b = (
        CHAT_URL.upper().replace("/V1/CHAT/COMPLETIONS", "/v1/chat/completions")
        + "?"
        + "&".join(f"{k}={v.replace(' ', '%20').replace(':', '%3A')}" for k, v in shuffled_query)
    )
    body_a = json.dumps(body).encode()
    body_b = json.dumps(dict(items), separators=(",", ":"), ensure_ascii=False, indent=1).encode()
    assert MATCHER.key(parts(url_a, body_a)) == MATCHER.key(parts(url_b, body_b))


# --- large bodies --------------------------------------------------------------------------------


def test_long_strings_are_compared_by_digest_with_the_same_outcome() -> None:
    from llmcassette._matching import DIGEST_OVER

    long = "x" * (DIGEST_OVER + 1)
    assert MATCHER.key(parts(body=chat_with(long))) == MATCHER.key(parts(body=chat_with(long)))
    assert MATCHER.key(parts(body=chat_with(long))) != MATCHER.key(parts(body=chat_with(long[:-1] + "y")))
    # A non-JSON body too.
    assert MATCHER.key(parts(body=long.encode())) == MATCHER.key(parts(body=long.encode()))
    assert MATCHER.key(parts(body=long.encode())) != MATCHER.key(parts(body=long.encode() + b"!"))
    # A key holds no long string: it hashes and compares in no time, and crosses processes small.
    assert len(repr(MATCHER.key(parts(body=chat_with(long * 100))))) < 1000


def chat_with(content: str, **extra: Any) -> dict[str, Any]:
    return {**CHAT_BODY, "messages": [{"role": "user", "content": content}], **extra}


@pytest.mark.parametrize(
    "body",
    [
        json.dumps(chat_with("a" * 10_000, user="u-1", n=1.0)).encode(),
        json.dumps(chat_with("short", metadata={"user_id": "x"})).encode(),
        json.dumps([1, "b" * 5000, {"k": None, "t": True}]).encode(),
        b"not json, " * 1000,
        b"{broken json" + b"z" * 5000,
        b"",
    ],
)
def test_a_body_prepared_elsewhere_gets_the_key_and_explanation_it_would_get_here(body: bytes) -> None:
    from llmcassette._matching import prepare_body

    matcher = Matcher(ignored_body_fields=["user", "metadata.user_id"])
    here = matcher.probe(parts(body=body), volatile=("n",))
    there = matcher.probe(parts(body=body), volatile=("n",), prepared=prepare_body(body))
    assert there.key == here.key
    other = matcher.probe(parts(body=json.dumps(chat_with("other")).encode()))
    assert matcher.explain(there, other) == matcher.explain(here, other)


def test_a_long_differing_string_is_shown_by_its_start() -> None:
    sent = "sent " + "s" * 10_000
    (difference,) = MATCHER.differences(parts(body=chat_with(sent)), parts(body=chat_with("recorded")))
    assert difference == (f'body differs: `messages[0].content` is "sent {"s" * 51}..., recorded "recorded"')


# --- deeply nested JSON --------------------------------------------------------------------------


def nested(depth: int, leaf: str = "x") -> bytes:
    return b'{"a": ' * depth + json.dumps(leaf).encode() + b"}" * depth


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 5_000, 200_000])
def test_json_nested_deeper_than_the_limit_is_matched_as_bytes(depth: int) -> None:
    # Before: json.loads raised RecursionError from inside matching (or json.dumps did).
    body = nested(depth)
    assert MATCHER.key(parts(body=body)) == MATCHER.key(parts(body=body))
    assert MATCHER.key(parts(body=body)) != MATCHER.key(parts(body=nested(depth, "y")))
    # As bytes: a re-serialisation that JSON matching would ignore now counts.
    assert MATCHER.key(parts(body=body)) != MATCHER.key(parts(body=body.replace(b": ", b":")))
    assert MATCHER.differences(parts(body=body), parts(body=nested(depth, "y"))) == [
        f"body differs ({len(body)} bytes recorded, {len(body)} bytes sent)"
    ]


def test_json_at_the_limit_is_still_matched_as_json() -> None:
    body = nested(MAX_JSON_DEPTH)
    assert MAX_JSON_DEPTH == 100
    assert MATCHER.key(parts(body=body)) == MATCHER.key(parts(body=body.replace(b": ", b":")))


# --- keys made from a parsed body ----------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20,
)


@given(
    value=st.lists(JSON_VALUES, max_size=3) | st.dictionaries(st.text(max_size=5), JSON_VALUES, max_size=4)
)
@settings(max_examples=300)
def test_a_plain_value_keys_as_the_bytes_made_from_it_do(value: Any) -> None:
    from llmcassette._bodies import dump_json
    from llmcassette._matching import PreparedBody, plain_json

    assert plain_json(value)
    for json_format in (None, "compact", "indent2+nl"):
        body = dump_json(value, json_format)
        from_bytes = MATCHER.probe(parts(body=body), volatile=("model",))
        from_value = MATCHER.probe(
            parts(body=body), volatile=("model",), prepared=PreparedBody(True, value, len(body))
        )
        assert from_value.key == from_bytes.key


@pytest.mark.parametrize(
    "value",
    [
        {1: "a"},  # YAML reads `1:` as a number; its JSON text has the key "1"
        {"a": [(1, 2)]},
        {"when": __import__("datetime").date(2024, 1, 2)},
        json.loads(nested(MAX_JSON_DEPTH + 1)),
        "just text",
        5,
        None,
    ],
)
def test_values_that_are_not_plain_json_are_left_to_their_bytes(value: Any) -> None:
    from llmcassette._matching import plain_json

    assert not plain_json(value)


def test_json_at_the_limit_is_plain() -> None:
    from llmcassette._matching import plain_json

    assert plain_json(json.loads(nested(MAX_JSON_DEPTH)))


_FIELD_NAMES = st.sampled_from(["user", "metadata", "id", "*", "0", "1"])


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.integers(0, 2) | st.none(),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_FIELD_NAMES, inner, max_size=3),
        max_leaves=8,
    ),
    st.lists(st.lists(_FIELD_NAMES, max_size=3).map(tuple), max_size=4).map(tuple),
)
@example({"user": 1}, (("*",),))
@example({"id": {"user": 1}}, (("*", "user"), ("metadata",)))
@example([{"user": 1}], (("0", "user"),))
def test_a_body_without_ignored_fields_is_left_as_it_is_without_walking_it(
    value: Any, ignored: tuple[tuple[str, ...], ...]
) -> None:
    # The check of an object's keys against the fields' first keys gives what the walk gives.
    walked = value
    for path in ignored:
        walked = _without(walked, path)
    assert _ignored_value(value, ignored) == walked
