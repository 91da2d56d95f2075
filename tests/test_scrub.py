"""
Scrubbing: secrets in headers, URLs and bodies never reach a cassette, and chunk boundaries of a
scrubbed stream still add up and never cut a placeholder in two.

The keys below are made up in each provider's shape; none is real.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings, strategies as st

from llmcassette._scrub import (
    DEFAULT_SECRET_HEADERS,
    PLACEHOLDER,
    Scrubber,
    remap_chunks,
    strip_userinfo,
)

OPENAI_KEY = "sk-proj-" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"
ANTHROPIC_KEY = "sk-ant-api03-" + "q" * 24 + "_" + "Z" * 20
OPENROUTER_KEY = "sk-or-v1-" + "0123456789abcdef" * 4
GOOGLE_KEY = "AIza" + "SyD" + "x" * 32
GROQ_KEY = "gsk_" + "A1b2C3d4E5f6G7h8I9j0K1l2"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0ZXN0LXVzZXIifQ.c2lnbmF0dXJlLXZhbHVl"

SCRUBBER = Scrubber()


# --- headers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        pytest.param("Authorization", f"Bearer {OPENAI_KEY}", "Bearer REDACTED", id="bearer-keeps-scheme"),
        pytest.param("authorization", "bearer tok", "bearer REDACTED", id="scheme-case-kept"),
        pytest.param("Authorization", "Basic dXNlcjpwYXNz", "Basic REDACTED", id="basic"),
        pytest.param(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261124/us-east-1/bedrock/aws4_request",
            "AWS4-HMAC-SHA256 REDACTED",
            id="sigv4",
        ),
        pytest.param("Authorization", OPENAI_KEY, PLACEHOLDER, id="no-scheme"),
        pytest.param("X-Api-Key", ANTHROPIC_KEY, PLACEHOLDER, id="anthropic-x-api-key"),
        pytest.param("api-key", "0123456789abcdef", PLACEHOLDER, id="azure-api-key"),
        pytest.param("x-goog-api-key", GOOGLE_KEY, PLACEHOLDER, id="gemini-header"),
        pytest.param("OpenAI-Organization", "org-acme", PLACEHOLDER, id="openai-org"),
        pytest.param("anthropic-organization-id", "0b1c-uuid", PLACEHOLDER, id="anthropic-org"),
        pytest.param("Cookie", "__cf_bm=abc; _cfuvid=def", "__cf_bm=REDACTED; _cfuvid=REDACTED", id="cookie"),
        pytest.param("cookie", "a=1;b=2; flag", "a=REDACTED;b=REDACTED; flag", id="cookie-separators-kept"),
        pytest.param(
            "Set-Cookie",
            "__cf_bm=abc.def; path=/; expires=Tue, 24-Nov-26 18:42:00 GMT; HttpOnly",
            "__cf_bm=REDACTED; path=/; expires=Tue, 24-Nov-26 18:42:00 GMT; HttpOnly",
            id="set-cookie-keeps-attributes",
        ),
        pytest.param("x-request-id", "req_0123", "req_0123", id="not-secret"),
        pytest.param("x-debug", f"used {GROQ_KEY}", "used REDACTED-groq-key", id="key-in-other-header"),
    ],
)
def test_scrub_header_value(name: str, value: str, expected: str) -> None:
    assert SCRUBBER.scrub_header_value(name, value) == expected


def test_scrub_headers_keeps_order_and_repeats() -> None:
    headers = {"Set-Cookie": ["a=1", "b=2; Path=/"], "content-type": ["application/json"], "x-api-key": ["k"]}
    assert SCRUBBER.scrub_headers(headers) == {
        "Set-Cookie": ["a=REDACTED", "b=REDACTED; Path=/"],
        "content-type": ["application/json"],
        "x-api-key": [PLACEHOLDER],
    }


def test_extra_secret_headers_ignore_case() -> None:
    scrubber = Scrubber(secret_headers=DEFAULT_SECRET_HEADERS | {"X-My-Gateway-Token"})
    assert scrubber.scrub_header_value("x-my-gateway-token", "t0ken") == PLACEHOLDER
    assert scrubber.scrub_header_value("authorization", "Bearer t") == "Bearer REDACTED"


# --- URLs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param(
            f"https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent"
            f"?alt=sse&key={GOOGLE_KEY}",
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent"
            "?alt=sse&key=REDACTED",
            id="gemini-key",
        ),
        pytest.param("https://h/p?KEY=abc&x=1", "https://h/p?KEY=REDACTED&x=1", id="name-any-case"),
        pytest.param("https://h/p?api%5Fkey=abc", "https://h/p?api%5Fkey=REDACTED", id="encoded-name"),
        pytest.param(
            "https://h/p?q=a%20b&r=c+d&s=%3A&key=k#frag",
            "https://h/p?q=a%20b&r=c+d&s=%3A&key=REDACTED#frag",
            id="rest-of-query-untouched",
        ),
        pytest.param("https://h/p?stream&key=k", "https://h/p?stream&key=REDACTED", id="valueless-flag-kept"),
        pytest.param("https://h/p?key", "https://h/p?key", id="key-without-value"),
        pytest.param("https://h/p?a=1#key=x", "https://h/p?a=1#key=x", id="fragment-is-not-query"),
        pytest.param("https://h/p?monkey=1", "https://h/p?monkey=1", id="similar-name"),
        pytest.param("https://h/p", "https://h/p", id="no-query"),
        pytest.param(f"https://h/keys/{OPENAI_KEY}", "https://h/keys/REDACTED-openai-key", id="key-in-path"),
        pytest.param(
            "https://s3.test/o?X-Amz-Signature=abc&X-Amz-Credential=AK%2F1",
            "https://s3.test/o?X-Amz-Signature=REDACTED&X-Amz-Credential=REDACTED",
            id="presigned",
        ),
    ],
)
def test_scrub_url(url: str, expected: str) -> None:
    assert SCRUBBER.scrub_url(url) == expected


# --- bodies --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("secret", "kind"),
    [
        pytest.param(OPENAI_KEY, "openai-key", id="openai"),
        pytest.param("sk-" + "a" * 48, "openai-key", id="openai-legacy"),
        pytest.param(ANTHROPIC_KEY, "anthropic-key", id="anthropic"),
        pytest.param(OPENROUTER_KEY, "openrouter-key", id="openrouter"),
        pytest.param(GOOGLE_KEY, "google-key", id="google"),
        pytest.param("ya29." + "a0Af" * 8, "google-oauth-token", id="google-oauth"),
        pytest.param(GROQ_KEY, "groq-key", id="groq"),
        pytest.param("xai-" + "Q" * 30, "xai-key", id="xai"),
        pytest.param("hf_" + "abcdEFGH" * 4, "huggingface-token", id="huggingface"),
        pytest.param("AKIAIOSFODNN7EXAMPLE", "aws-access-key", id="aws"),
        pytest.param("ghp_" + "x" * 36, "github-token", id="github"),
        pytest.param(JWT, "jwt", id="jwt"),
    ],
)
def test_key_shaped_strings_in_bodies(secret: str, kind: str) -> None:
    body = f'{{"messages": [{{"role": "user", "content": "my key is {secret}, thanks"}}]}}'.encode()
    scrubbed = SCRUBBER.scrub_body(body)
    assert secret.encode() not in scrubbed
    assert f"my key is REDACTED-{kind}, thanks".encode() in scrubbed


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("task-sk-" + "a" * 30, id="inside-a-longer-token"),
        pytest.param("sk-short", id="too-short"),
        pytest.param("AKIAIOSFODNN7EXAMPLEX", id="aws-too-long"),
        pytest.param("the word risk-free", id="prose"),
    ],
)
def test_lookalikes_are_left_alone(text: str) -> None:
    assert SCRUBBER.scrub_body(text.encode()) == text.encode()


def test_literal_secrets_are_replaced_everywhere() -> None:
    scrubber = Scrubber(secrets=("hunter2", ""))
    assert scrubber.scrub_body(b"pw=hunter2&again=xhunter2") == b"pw=REDACTED-secret&again=xREDACTED-secret"
    assert scrubber.scrub_url("https://h/hunter2?a=hunter2") == "https://h/REDACTED-secret?a=REDACTED-secret"
    assert scrubber.scrub_header_value("x-custom", "hunter2") == "REDACTED-secret"


def test_literal_secrets_are_escaped_not_patterns() -> None:
    scrubber = Scrubber(key_patterns=(), secrets=("a.c",))
    assert scrubber.scrub_body(b"abc a.c") == b"abc REDACTED-secret"


def test_a_scrubber_with_nothing_to_look_for_changes_nothing() -> None:
    scrubber = Scrubber(key_patterns=())
    body = f"key {OPENAI_KEY}".encode()
    assert scrubber.scrub_body(body) is body
    assert scrubber.scrub_body_spans(body) == (body, [])


def test_scrubbers_compare_by_configuration() -> None:
    assert Scrubber() == Scrubber()
    assert dataclasses.replace(Scrubber(), secrets=("x",)) != Scrubber()


def test_body_spans_say_what_changed() -> None:
    body = f'data: {{"k": "{OPENAI_KEY}"}}\n\ndata: {{"g": "{GOOGLE_KEY}"}}\n\n'.encode()
    scrubbed, spans = SCRUBBER.scrub_body_spans(body)
    assert scrubbed == SCRUBBER.scrub_body(body)
    first = body.index(OPENAI_KEY.encode())
    second = body.index(GOOGLE_KEY.encode())
    assert spans == [
        (first, first + len(OPENAI_KEY), len("REDACTED-openai-key")),
        (second, second + len(GOOGLE_KEY), len("REDACTED-google-key")),
    ]


def test_no_spans_for_a_clean_body() -> None:
    body = b'data: {"content": "nothing secret"}\n\n'
    scrubbed, spans = SCRUBBER.scrub_body_spans(body)
    assert scrubbed is body and spans == []


# --- chunk boundaries ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("chunks", "spans", "expected"),
    [
        pytest.param([5, 5, 5], [], [5, 5, 5], id="no-spans"),
        pytest.param([5, 5, 5], [(3, 8, 2)], [5, 2, 5], id="boundary-inside-moves-to-placeholder-end"),
        pytest.param([3, 3], [(3, 4, 10)], [3, 12], id="boundary-at-span-start-stays"),
        pytest.param([4, 2], [(2, 4, 10)], [12, 2], id="boundary-at-span-end-shifts"),
        pytest.param([2, 1, 3], [(1, 4, 5)], [6, 0, 2], id="two-boundaries-in-one-span"),
        pytest.param([10], [(1, 2, 4), (5, 9, 1)], [10], id="many-spans-one-chunk"),
        pytest.param([3, 0, 3], [(0, 6, 2)], [2, 0, 0], id="empty-chunk"),
    ],
)
def test_remap_chunks(chunks: list[int], spans: list[tuple[int, int, int]], expected: list[int]) -> None:
    assert remap_chunks(chunks, spans) == expected


def boundaries(chunks: list[int]) -> list[int]:
    total, out = 0, []
    for length in chunks:
        total += length
        out.append(total)
    return out


_KEYS = st.sampled_from([OPENAI_KEY, ANTHROPIC_KEY, OPENROUTER_KEY, GOOGLE_KEY, GROQ_KEY, JWT, "hunter2"])
_FILLER = st.text(st.sampled_from(' ab"{}:\n-_'), max_size=12)


@st.composite
def scrubbed_streams(draw: st.DrawFn) -> tuple[bytes, list[int]]:
    pieces = draw(st.lists(st.tuples(_FILLER, _KEYS), max_size=4))
    body = ("".join(f + k for f, k in pieces) + draw(_FILLER)).encode()
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=8)))
    chunks = [b - a for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    return body, chunks


@settings(max_examples=200, deadline=None)
@given(stream=scrubbed_streams())
def test_remapped_chunks_fit_the_scrubbed_body(stream: tuple[bytes, list[int]]) -> None:
    body, chunks = stream
    scrubber = Scrubber(secrets=("hunter2",))
    scrubbed, spans = scrubber.scrub_body_spans(body)
    new_chunks = remap_chunks(chunks, spans)
    # One length per recorded chunk (offsets_ms stays aligned), all adding up to the new body.
    assert len(new_chunks) == len(chunks)
    assert all(length >= 0 for length in new_chunks)
    assert sum(new_chunks) == len(scrubbed)
    # The spans are in order and cover exactly the placeholders of the new body.
    placeholders = []
    shift = 0
    for start, end, new_len in spans:
        placeholders.append((start + shift, start + shift + new_len))
        assert scrubbed[start + shift : start + shift + new_len].startswith(PLACEHOLDER.encode())
        shift += new_len - (end - start)
    for boundary in boundaries(new_chunks):
        assert not any(a < boundary < b for a, b in placeholders)
    # A boundary outside every secret keeps its place in the text around it.
    for old, new in zip(boundaries(chunks), boundaries(new_chunks), strict=True):
        if not any(start < old < end for start, end, _ in spans):
            delta = sum(new_len - (end - start) for start, end, new_len in spans if end <= old)
            assert new == old + delta


@st.composite
def chunks_and_spans(draw: st.DrawFn) -> tuple[list[int], list[tuple[int, int, int]]]:
    chunks = draw(st.lists(st.integers(0, 20), min_size=1, max_size=8))
    total = sum(chunks)
    points = sorted(set(draw(st.lists(st.integers(0, total), max_size=8))))
    spans = [
        (a, b, draw(st.integers(1, 25))) for a, b in zip(points[::2], points[1::2], strict=False) if a < b
    ]
    return chunks, spans


@settings(max_examples=200, deadline=None)
@given(case=chunks_and_spans())
def test_remap_chunks_never_splits_a_replacement(case: tuple[list[int], list[tuple[int, int, int]]]) -> None:
    chunks, spans = case
    new_chunks = remap_chunks(chunks, spans)
    growth = sum(new_len - (end - start) for start, end, new_len in spans)
    assert len(new_chunks) == len(chunks)
    assert sum(new_chunks) == sum(chunks) + growth
    assert all(length >= 0 for length in new_chunks)
    shift = 0
    replaced = []
    for start, end, new_len in spans:
        replaced.append((start + shift, start + shift + new_len))
        shift += new_len - (end - start)
    for boundary in boundaries(new_chunks):
        assert not any(a < boundary < b for a, b in replaced)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://alice:pw@host:8080/v1?a=b", "http://host:8080/v1?a=b"),
        ("https://TOKEN@host", "https://host"),
        ("http://a:b@c@host/x", "http://host/x"),  # the userinfo ends at the last `@`
        ("HTTP://u:p@[::1]:8/x", "HTTP://[::1]:8/x"),
        ("http://host/users/a@b?to=x@y#at@z", "http://host/users/a@b?to=x@y#at@z"),
        ("http://host?x=@y", "http://host?x=@y"),
        ("/path?next=http://u:p@h/", "/path?next=http://u:p@h/"),
        ("*", "*"),
    ],
)
def test_userinfo_is_stripped_where_urlsplit_finds_it(url: str, expected: str) -> None:
    from urllib.parse import urlsplit

    assert strip_userinfo(url) == expected
    assert SCRUBBER.scrub_url(url) == expected
    if "://" in url.partition("?")[0]:
        parts = urlsplit(url)
        assert urlsplit(expected)._replace(netloc=parts.netloc) == parts


@pytest.mark.parametrize("surrogate", ["\ud801", "\udfff", "\udcff"])
def test_scrub_text_keeps_any_lone_surrogate(surrogate: str) -> None:
    # A JSON body may escape a UTF-16 surrogate alone (`"\ud801"`), which reaches a miss message's
    # differences as that character: encoding it for the scan raised UnicodeEncodeError, so the
    # miss came out as a traceback (a 500 from `serve`) instead of NoMatchingInteraction.
    # (\udcff is how a byte that is not UTF-8 is read, and comes back as that byte's character.)
    key = "sk-proj-" + "a1B2c3D4" * 5
    replaced = SCRUBBER.scrub_text(key)
    assert replaced != key
    text = f"body differs: 'x{surrogate}y {key}'"
    assert SCRUBBER.scrub_text(text) == f"body differs: 'x{surrogate}y {replaced}'"
    assert SCRUBBER.scrub_text(f"x{surrogate}y") == f"x{surrogate}y"
