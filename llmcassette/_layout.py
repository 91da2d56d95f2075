"""
llmcassette's own YAML layout: JSON bodies written as JSON, and a reader that builds the data of
the files llmcassette writes without a general YAML parser.

Writing: a ``parsed_body`` is written as the JSON it is, indented two spaces a level, which YAML
reads as a flow collection. A reviewer sees the provider's JSON as JSON, and the reader hands it to
the C JSON parser instead of building a YAML node per value. A body that YAML would read otherwise
than JSON (a float with an exponent, a character YAML escapes, a very long key) is written as YAML
data, as before.

Reading: :func:`load_cassette_yaml` recognises the regular layout the writer emits (block mappings
and sequences, one-line scalars and flow collections of scalars, literal blocks, flow lists of
numbers over several lines, JSON bodies) and builds its data line by line. Anything else (a
comment, an anchor, a multi-line quoted scalar, a key that YAML would read as a number, a file of
another tool) raises :class:`Unrecognised` inside and goes to the general loader
(:func:`llmcassette._yaml.load_yaml`), which also reports every error: the reader never refuses a
file, it only declines one. For every text it accepts it gives what the general loader gives
(``tests/test_layout.py`` checks this over generated cassettes and every cassette of the corpus).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import marshal
import operator
import re
import secrets
from typing import Any, AnyStr

from ._bodies import DEFAULT_JSON_FORMAT, JSON_FORMATS, MAX_JSON_DEPTH, dump_json
from ._compiled import speedups
from ._yaml import (
    _INT_TAG,
    _PLAIN_FLOAT,
    _PLAIN_INT,
    _STR_TAG,
    YAMLError,
    _construct_scalar,
    _resolve_plain,
    _Unsupported,
    dump_yaml,
    load_yaml,
)

__all__ = [
    "NUMBER_BYTES",
    "JsonText",
    "Unrecognised",
    "dump_cassette_yaml",
    "load_cassette_yaml",
    "plain_characters",
    "read_layout",
    "read_literal",
    "render_json",
]


class Unrecognised(Exception):
    """The text is not in the layout the reader knows; the general loader reads it."""


def load_cassette_yaml(raw: str | bytes) -> Any:
    """The data of a cassette's YAML text: read directly when in llmcassette's layout, else by YAML."""
    try:
        return read_layout(raw)
    except Unrecognised:
        return load_yaml(raw)


# -- writing ----------------------------------------------------------------------------------

# Characters YAML will not take as they are (non-printable), or reads as line breaks or a byte
# order mark, anywhere in the text; a file holding one raw is left to the general loader, and a
# body holding one is written as YAML data (whose writer escapes them).
_NOT_PLAIN_TEXT = re.compile(
    "[^\t\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
)
_CONTROL = bytes([*range(9), *range(11, 32), 127])
# From this size on, the control characters are looked for one at a time (memchr, a vector scan:
# 30 of them cost a third of deleting them with one translate, a loop of a dozen instructions a
# byte, over a 25 KB stream); below it, a search's fixed cost is more than the loop's.
_SEARCH_CONTROL_FROM = 2048
# The same for the characters beyond ASCII, as UTF-8: C1 controls (NEL among them), the line and
# paragraph separators, the byte order mark, U+FFFE and U+FFFF; each with the byte that leads it.
# A lead byte is looked for first (memchr), and only a text that holds it is searched with a
# pattern that starts with it: one pattern of all four, which has no first byte of its own, made
# the regex engine test every byte against a set, 90 to 210 us over a 25 KB stream piece beyond
# ASCII (an accent, a dash or a quote of U+2000's block, a full-width sign), now 1 to 15.
_OTHER_UTF8 = (
    (b"\xc2", re.compile(rb"\xc2[\x80-\x9f]")),
    (b"\xe2", re.compile(rb"\xe2\x80[\xa8\xa9]")),
    (b"\xef", re.compile(rb"\xef(?:\xbb\xbf|\xbf[\xbe\xbf])")),
)
# A key and its colon on two lines (YAML takes a key on one line only); a tab, which JSON takes
# between values, is left to YAML. In JSON text without a tab (nor a CR, which the characters'
# check refuses), whitespace is spaces and line breaks, a string holds no line break and a colon
# outside strings follows a key: a key's colon is on a line after the key's exactly when it is the
# first character but spaces of its line. Looked for after each line break (a third fewer
# instructions than after each quote, which a body holds more of: 14k -> 10k over a 1 KB body).
_KEY_LINE_BREAK = re.compile(r"\n *+:")
# Escapes JSON and YAML read differently: `\/` (YAML 1.1 has none) and halves of surrogate pairs.
_ESCAPE_OTHER = re.compile(r"\\/|\\u[dD][89a-fA-F]")
# Longer keys are left to YAML, which reads a key as a key only within 1024 characters.
_LONGEST_KEY = 900


def _json_reads_as_yaml(text: str, *, checked: bool = False) -> bool:
    # True when YAML reads the JSON text `text`, which `_DECODER` parses, as the same data (the
    # decoder declines numbers YAML reads otherwise); `checked`: its characters were checked.
    # (an escape is looked for with a search of the regex only where a backslash is: memchr)
    if "\t" in text or ("\\" in text and _ESCAPE_OTHER.search(text)) or _KEY_LINE_BREAK.search(text):
        return False
    if not checked and _NOT_PLAIN_TEXT.search(text):
        return False
    return True


def render_json(value: Any) -> str | None:
    """``value`` as indented JSON that YAML reads as the same data, or None when there is none."""
    if not isinstance(value, dict | list):
        return None
    try:
        text = json.dumps(value, indent=2, ensure_ascii=False, allow_nan=False)
        # Only JSON's own types come back equal (not a tuple, not a key that is a number).
        same = _decoder().decode(text) == value
    except (TypeError, ValueError, RecursionError, Unrecognised):
        return None
    return text if same and _json_reads_as_yaml(text) else None


_BODY_LINE = re.compile(r"^( *)(- )?parsed_body: (llmcassette-json-[0-9a-f]+-([0-9]+))$", re.MULTILINE)


def dump_cassette_yaml(data: dict[str, Any]) -> str:
    """
    The YAML text of a cassette's data (as :func:`llmcassette._storage.document_to_data` gives
    it), each request's and response's ``parsed_body`` written as JSON where YAML reads it back
    the same.
    """
    token = f"llmcassette-json-{secrets.token_hex(6)}"
    bodies: list[str] = []
    originals: list[tuple[dict[str, Any], Any]] = []
    for interaction in data.get("interactions") or ():
        for side in ("request", "response"):
            part = interaction.get(side) if isinstance(interaction, dict) else None
            if not isinstance(part, dict) or "parsed_body" not in part:
                continue
            text = render_json(part["parsed_body"])
            if text is None:
                continue
            originals.append((part, part["parsed_body"]))
            part["parsed_body"] = f"{token}-{len(bodies)}"
            bodies.append(text)
    try:
        text = dump_yaml(data)
    finally:
        for part, value in originals:
            part["parsed_body"] = value
    if not bodies:
        return text
    placed = 0

    def place(match: re.Match[str]) -> str:
        nonlocal placed
        if not match.group(3).startswith(token):
            return match.group(0)
        placed += 1
        # The JSON's lines sit two columns right of the key: inside the key's value, as YAML's
        # rules for a flow collection in a block ask.
        pad = "\n" + " " * (len(match.group(1)) + len(match.group(2) or "") + 2)
        body = bodies[int(match.group(4))].replace("\n", pad)
        return f"{match.group(1)}{match.group(2) or ''}parsed_body: {body}"

    placed_text = _BODY_LINE.sub(place, text)
    if placed != len(bodies):  # pragma: no cover - the emitter wrote a token otherwise than plain
        return dump_yaml(data)
    return placed_text


# -- reading ----------------------------------------------------------------------------------

# A line of a block mapping: indentation, a sequence item's dash, a plain key, and its value.
_ENTRY = re.compile(r"( *)(- )?([A-Za-z0-9_][\w.\-/]*):(?: ([^\n]*))?")
_FLOW_SCALAR = re.compile(
    r"'((?:[^'\n]|'')*)'"
    r'|"([^"\\\n]*)"'
    r"|([^\s\-?:,\[\]{}#&*!|>'\"%@`](?:[^,\[\]{}:\n]*[^\s,\[\]{}:])?|-[^\s,\[\]{}:#](?:[^,\[\]{}:\n]*[^\s,\[\]{}:])?)"
)
_SINGLE_QUOTED = re.compile(r"'((?:[^'\n]|'')*)'")
_DOUBLE_QUOTED = re.compile(r'"([^"\\\n]*)"')
_NUMBERS = re.compile(r"[-0-9., \n]*")
#: The characters of a list of numbers written in flow style (`_NUMBERS`), as bytes.
NUMBER_BYTES = b"-0123456789., \n"
_NUMBER_CHARACTERS = NUMBER_BYTES.decode()
_NUMBER_LIST = json.JSONDecoder()
_PLAIN_START_OTHER = frozenset(" \t-?:,[]{}#&*!|>'\"%@`")
# The first characters of the plain scalars that YAML's implicit resolvers may read as other than
# text (PyYAML's table, with the characters that start no plain scalar).
_RESOLVED_FIRST = frozenset("+-.0123456789<=FNOTYfnoty~")
# Every character the implicit resolvers of a plain scalar that starts with a digit (an integer,
# a float, a timestamp) can match, and a few more: a scalar with another is text. (`rstrip`
# finds one in C; the resolvers' three regexes cost 11k instructions for `14ms`.)
_DIGITS = frozenset("0123456789")
_DIGIT_FIRST_MATCHED = "0123456789_.:+- \tabcdefABCDEFxXoObBtTZinfINFN"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_BINARY_TAG = "tag:yaml.org,2002:binary"
_block_ends: dict[int, re.Pattern[str]] = {}
_keys: dict[str, bool] = {}
_plains: dict[str, Any] = {}
_flows: dict[str, Any] = {}
_UNKNOWN = object()
# What a line says, by its text: the same lines recur in every interaction (a method, a URL, a
# header, a key that opens a body), and reading one afresh (the regex, its groups, the key's and
# the value's checks) cost three times what looking it up does. A line is only what its text
# says: (column, dash, key, kind, value), `kind` telling how the value is taken (below). Up to
# `_LINES_KEPT` lines shorter than `_LINE_KEPT_CHARS` are kept, then the memo starts afresh.
_lines: dict[str, tuple[int, bool, str, int, Any]] = {}
_LINES_KEPT = 4096
_LINE_KEPT_CHARS = 256
# What a run of lines builds, by its text: an item of a sequence at the first column (`- request:`)
# and its lines up to the first whose value goes on past its line (`parsed_body: {`). The same runs
# recur in every interaction (the request's method, URL and headers; a response's status and
# headers), and a run of six lines read line by line cost four times what building its data again
# from a copy does. A run is kept by its first line: its text, what its lines built (marshalled:
# loaded, it is a copy of its own), its last line, its lines, their slots, and its holes and pieces
# (below). What it built is its open collections as they are on the stack (the item first) and the
# mappings its slots are in, which marshal writes once each, as the item holds them. Only a run
# that starts at the first column is kept: its lines change nothing outside its item, whatever
# came before (a line at the first column ends it), so its text alone says what it builds.
#
# An answer recorded from a provider carries headers whose values differ in every answer (its
# date, its request id), so its run's text never matches a kept one; read line by line, its dozen
# header lines cost half the answer's reading. A line of the run that gives a key a one-line value
# (`_SCALAR`, `_FLOW`) is a slot: its text up to its value (`      date: `), the mapping its key
# is in, and the key. An item whose lines are the kept run's but for lines that fill a slot with
# another one-line value builds what the run built with those values in their slots (`_slotted`):
# the main loop's steps for a line (which collections it closes and opens, where its key goes,
# whether a key is given twice) depend on its column, its dash, its key and its kind only, and a
# slot's line and the run's agree on all four (the same text up to the value, a one-line value
# both), so every step is the same step, and a value is only stored, never looked at by a later
# line. The slots whose values differed are the run's holes, and the run's text cut around their
# values its pieces, which the next item is matched against first (`_filled`).
_Slot = tuple[str, int, str]
_Run = tuple[
    str,
    "bytes | _Built",
    tuple[int, str, int, Any],
    tuple[str, ...],
    tuple[_Slot | None, ...],
    tuple[tuple[int, str, int, str], ...],
    tuple[str, ...],
    bool,
]
# What a kept run builds, loaded: its open collections (the item first, as on the stack) and the
# mappings its slots are in.
_Built = tuple[tuple[tuple[int, Any, bool], ...], tuple[dict[str, Any], ...]]
_runs: dict[str, _Run] = {}
_RUNS_KEPT = 256
# How many times in a row a first line's kept run did not match its text. A run whose lines
# differ per item in more than their slots' values (a header that comes and goes) never matches,
# and keeping each again cost more than reading its lines (26k instructions a response of 13
# headers): it
# is kept again after 1, 2, 4, 8, then every 16 misses in a row, so a run that recurs from some
# item on is still found within 16 items.
_run_misses: dict[str, int] = {}
_RUN_KEPT_CHARS = 4096
_NO_VALUE = 0  # `key:` alone: a collection follows on deeper lines
_SCALAR = 1  # a plain or quoted scalar, read: the value itself (immutable)
_FLOW = 2  # a one-line flow collection, read: copied for each use
_MORE = 3  # a value that goes on past its line (JSON, a literal block, a list of numbers): its text


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        raise Unrecognised  # YAML refuses a key given twice: the general loader says so
    # (the keys' lengths looked at one by one only where they add up to that many: joining them
    # is one call into C, mapping `len` over them a call per key, three times as much)
    if len("".join(value)) >= _LONGEST_KEY and max(map(len, value)) >= _LONGEST_KEY:
        raise Unrecognised  # YAML takes a key as a key only within 1024 characters
    return value


def _decimal(word: str) -> float:
    # YAML 1.1 reads a number with an exponent as text unless it has a dot and a signed exponent.
    if "e" in word or "E" in word:
        raise Unrecognised
    return float(word)


def _no_constant(word: str) -> Any:
    raise Unrecognised  # NaN and Infinity are JSON's spelling, not YAML's


_DECODER = json.JSONDecoder(
    object_pairs_hook=_no_duplicates, parse_float=_decimal, parse_constant=_no_constant
)
_decoders: list[json.JSONDecoder] = []


def _decoder() -> json.JSONDecoder:
    # `_DECODER`, or where the C extension is built, the same decoder with its hook for each
    # object in C (the same objects, and Unrecognised where `_no_duplicates` raises it:
    # `tests/test_speedups.py`); a 1 KB body's parse, 12.4 -> 8 us.
    fast = speedups()
    if fast is None:
        return _DECODER
    if not _decoders:
        hook = functools.partial(fast.json_object, Unrecognised, _LONGEST_KEY)
        _decoders.append(
            json.JSONDecoder(object_pairs_hook=hook, parse_float=_decimal, parse_constant=_no_constant)
        )
    return _decoders[0]


def _plain(value: str) -> Any:
    # A plain scalar as YAML's safe loader resolves it; only the forms the writer emits. The
    # same values recur (methods, URLs, header values): each is resolved once.
    known = _plains.get(value, _UNKNOWN)
    if known is not _UNKNOWN:
        return known
    resolved = _resolve(value)
    if len(_plains) < 8192 and len(value) < 256:
        _plains[value] = resolved
    return resolved


def _resolve(value: str) -> Any:
    first = value[0]
    if first in _PLAIN_START_OTHER and not (first == "-" and len(value) > 1 and value[1] not in " \t"):
        raise Unrecognised
    if ": " in value or " #" in value or "\t" in value or value[-1] in " :":
        raise Unrecognised
    if first not in _RESOLVED_FIRST:
        return value
    if first in _DIGITS and value.rstrip(_DIGIT_FIRST_MATCHED):
        return value  # (a character no resolver for a digit matches: `14ms`, `8e81...-AMS`)
    tag = _resolve_plain(value)
    if tag == _STR_TAG:
        return value
    try:
        if tag == _INT_TAG and _PLAIN_INT.match(value):
            return int(value)
        if tag == _FLOAT_TAG and _PLAIN_FLOAT.match(value):
            return float(value)
        # Other numbers, booleans, null, dates: built by the general loader's own constructors.
        return _construct_scalar(tag, value, None)
    except (YAMLError, _Unsupported, ValueError):
        # A merge key (`<<`), a value its constructor refuses, an integer longer than Python
        # reads: the general loader reports it, at its place.
        raise Unrecognised from None


def _flow_scalar(match: re.Match[str]) -> Any:
    single, double, plain = match.groups()
    if single is not None:
        return single.replace("''", "'")
    if double is not None:
        return double
    return _plain(plain)


def _numbers(text: str) -> list[Any]:
    # A flow list of decimals: for those JSON and YAML agree (an integer without a dot, a float
    # with one), and JSON refuses what YAML reads otherwise (a leading zero, `.5`, `5.`).
    try:
        values = _NUMBER_LIST.decode(f"[{text}]")
    except ValueError:
        raise Unrecognised from None
    assert isinstance(values, list)
    return values


def _flow(text: str) -> Any:
    # A one-line flow sequence or mapping of scalars; the same ones recur (header values,
    # statuses), so each is read once, and copied out (the caller may change what it gets).
    if text[0] == "[" and text[-1] == "]":
        item = _one_item(text[1:-1])
        if item is not _UNKNOWN:
            return [item]
    known = _flows.get(text)
    if known is None:
        known = _read_flow(text)
        if len(_flows) < 8192 and len(text) < 256:
            _flows[text] = known
    return known.copy()


# A line's value that is a flow list of one scalar which `_value` reads as the scalar's text (see
# `_one_item`), in the forms most header values take: quoted without a quote in it; or plain
# without a space, a flow indicator or a colon, starting with a character that starts a plain
# scalar and makes it text whatever follows (neither an indicator nor one of `_RESOLVED_FIRST`),
# or with a digit and holding a character none of `_DIGIT_FIRST_MATCHED` (`14ms`). Read with one
# search of a pattern in place of `_value`'s three calls and their checks (`_filled`).
_PLAIN_ITEM_CHARACTER = r"[^\s,:\[\]{}]"
_ONE_ITEM = re.compile(
    r"\[(?:'([^'\n]*)'|("
    rf"[^\s\-?:,\[\]{{}}#&*!|>'\"%@`+.0-9<=FNOTYfnoty~]{_PLAIN_ITEM_CHARACTER}*"
    rf"|[0-9]{_PLAIN_ITEM_CHARACTER}*?[^\s,:\[\]{{}}0-9_.+\-a-fA-FxXoOtTZinIN]{_PLAIN_ITEM_CHARACTER}*"
    r"))\](?=\n)"
)


def _one_item(inner: str) -> Any:
    # The item of a flow list `[inner]` of one scalar in the forms the writer gives a header's
    # value (quoted without an escape, plain without a flow indicator), as `_read_flow` reads it;
    # `_UNKNOWN` for any other list, which `_read_flow` reads. A value that differs per answer
    # (`[req_4f0c...]`, `['1399']`) is read afresh each time, and a few searches of the string in
    # C cost a fraction of `_read_flow`'s two regexes (14.5k -> 2.6k instructions a quoted value,
    # 14.4k -> 4k a plain one, 24.8k -> 9.3k a plain one that starts with a digit).
    first = inner[:1]
    if first == "'" or first == '"':
        quoted = inner[1:-1]
        if len(inner) < 2 or inner[-1] != first or first in quoted or (first == '"' and "\\" in quoted):
            return _UNKNOWN  # (`''` in a single-quoted scalar, an escape, two scalars)
        return quoted
    # A plain scalar: `_FLOW_SCALAR`'s third branch matches all of `inner` exactly when it holds
    # no flow indicator nor colon, starts with no other indicator nor space (a dash only before
    # a character that is neither) and ends with no space; `_resolve` takes it when it holds no
    # ` #` nor tab, and gives it as it is when its first character resolves nothing else.
    if (
        not inner
        or "," in inner
        or ":" in inner
        or "[" in inner
        or "]" in inner
        or "{" in inner
        or "}" in inner
        or " #" in inner
        or "\t" in inner
        or inner[-1].isspace()
        or first.isspace()
    ):
        return _UNKNOWN
    if first not in _RESOLVED_FIRST:
        return _UNKNOWN if first in _PLAIN_START_OTHER else inner
    # (only digits, dots, dashes, commas and spaces are `_read_flow`'s to read as JSON numbers)
    if not inner.strip(_NUMBER_CHARACTERS) or (
        first == "-" and (len(inner) < 2 or inner[1].isspace() or inner[1] == "#")
    ):
        return _UNKNOWN
    return _plain(inner)


def _read_flow(text: str) -> Any:
    closing = "]" if text[0] == "[" else "}"
    if text[-1] != closing:
        raise Unrecognised
    if len(text) == 2:
        return [] if closing == "]" else {}
    if closing == "]" and _NUMBERS.fullmatch(text, 1, len(text) - 1):
        with contextlib.suppress(Unrecognised):
            return _numbers(text[1:-1])  # else scalars that look like numbers: `[0.49.0]`
    items: list[Any] = []
    mapping: dict[Any, Any] = {}
    position = 1
    end = len(text) - 1
    match_scalar = _FLOW_SCALAR.match
    while True:
        match = match_scalar(text, position)
        if match is None:
            raise Unrecognised
        position = match.end()
        if closing == "]":
            items.append(_flow_scalar(match))
        else:
            key = _flow_scalar(match)
            if not isinstance(key, str) or key in mapping or not text.startswith(": ", position):
                raise Unrecognised
            value = match_scalar(text, position + 2)
            if value is None:
                raise Unrecognised
            mapping[key] = _flow_scalar(value)
            position = value.end()
        if position == end:
            return items if closing == "]" else mapping
        if not text.startswith(", ", position):
            raise Unrecognised
        position += 2


def read_literal(
    text: AnyStr, start: int, header: AnyStr, column: int, size: int | None = None
) -> tuple[AnyStr, int]:
    """
    The content of a literal block scalar (``|``, ``|-``, ``|+``: ``header``) whose lines start at
    ``start``, and where the next line starts; :class:`Unrecognised` where the reader declines it.
    Its indentation is that of its first line, which must be deeper than the key's ``column`` and
    hold text (the writer gives a block that starts blank or indented an explicit indentation,
    which the general loader reads).

    Read in a text, or in a file's UTF-8 bytes up to ``size`` (where ``_lazy`` cuts a stream's
    body out): a block's line breaks, indentation and chomping are ASCII, which UTF-8 encodes as
    themselves and in no other character. (A text is read to its end by the block's passes.)
    """
    if isinstance(text, str):
        line_break, space, tab, clip, strip = "\n", " ", "\t", "|", "|-"
    else:
        line_break, space, tab, clip, strip = b"\n", b" ", b"\t", b"|", b"|-"
    stop = len(text) if size is None else size
    first_end = text.find(line_break, start, stop)
    if first_end < 0:
        raise Unrecognised
    line = text[start:first_end]
    indent = len(line) - len(line.lstrip(space))
    if indent <= column or indent == len(line) or line[indent : indent + 1] == tab:
        raise Unrecognised
    fast = speedups()
    # (the C extension's passes over the block, where it is built, in place of a regex search, a
    # split and a join: the same text and end, `tests/test_speedups.py`)
    if isinstance(text, str):
        block = _block_python if fast is None else fast.literal_block
        content, end = block(text, start, first_end, indent)
    else:
        in_bytes = _block_bytes_python if fast is None else fast.block_bytes
        content, end = in_bytes(text, start, first_end, indent, stop)
    if not text.endswith(line_break, 0, end):
        raise Unrecognised
    if header == clip:
        content = content.rstrip(line_break) + line_break
    elif header == strip:
        content = content.rstrip(line_break)
    return content, end


def _block_python(text: str, start: int, first_end: int, indent: int) -> tuple[str, int]:
    # The text of a literal block whose first line starts at `start`, ends at `first_end` and is
    # indented `indent` spaces, dedented, and where the next line starts (`read_literal`).
    ends = _block_ends.get(indent)
    if ends is None:
        # The first line that is neither empty nor indented as deep ends the block.
        ends = _block_ends[indent] = re.compile(f"\n(?=[^\n])(?! {{{indent}}})")
    found = ends.search(text, first_end)
    end = found.start() + 1 if found is not None else len(text)
    # Lines with spaces at their end, or of spaces only, read as YAML reads them: a line's
    # spaces past the indentation are text, and a line of fewer spaces ended the block above
    # (it is no key, so the file is declined). Looking for them cost as much as the dedent.
    # The first line's indentation is cut off by the slice, the others' by splitting at each
    # and joining (a quarter cheaper than a replace: 200 events, 23 -> 16 us).
    return "\n".join(text[start + indent : end].split("\n" + " " * indent)), end


_block_bytes_ends: dict[int, re.Pattern[bytes]] = {}


def _block_bytes_python(raw: bytes, start: int, first_end: int, indent: int, size: int) -> tuple[bytes, int]:
    # `_block_python` of the UTF-8 text `raw[:size]`, in its bytes (`read_literal`): a block's line
    # breaks and indentation are ASCII, which UTF-8 encodes as themselves and in no other character.
    ends = _block_bytes_ends.get(indent)
    if ends is None:
        # The first line that is neither empty nor indented as deep ends the block.
        ends = _block_bytes_ends[indent] = re.compile(b"\n(?=[^\n])(?! {%d})" % indent)
    found = ends.search(raw, first_end, size)
    end = found.start() + 1 if found is not None else size
    return b"\n".join(raw[start + indent : end].split(b"\n" + b" " * indent)), end


class JsonText:
    """
    A ``parsed_body`` left as the JSON text it is written as (:func:`read_layout` with
    ``json_as_text``), where the C extension read it without building it: a body that is played
    is only ever written again as bytes, and its text tells them (:meth:`dump`), in a fifth of
    what parsing it and writing its value cost (a 1 KB answer: 95k -> 20k instructions).
    :meth:`value` parses it, as the reader would have.
    """

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        #: The JSON text, and the line break after it.
        self.text = text

    def value(self) -> Any:
        """The value, as the reader parses it."""
        return _decoder().decode(self.text)

    def dump(self, json_format: str | None) -> bytes:
        """:func:`llmcassette._bodies.dump_json` of the value, in ``json_format``."""
        form = JSON_FORMATS[json_format or DEFAULT_JSON_FORMAT]
        fast = speedups()
        if fast is not None:
            item, key = form.separators
            found = fast.json_bytes(self.text, 0, MAX_JSON_DEPTH, item, key, form.ensure_ascii, form.indent)
            if found is not None and found[0] is not None:
                return found[0] + b"\n" if form.newline else found[0]
        return dump_json(self.value(), json_format)  # (without the extension, which read the text)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JsonText) and self.text == other.text

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"JsonText({self.text!r})"


def _json_bytes_python(
    text: str,
    start: int,
    most_brackets: int,
    item_separator: str | None,
    key_separator: str | None,
    ensure_ascii: bool,
    indent: int | None,
) -> tuple[bytes | None, int, int] | None:
    # The C extension's `json_bytes` (the oracle of `tests/test_speedups.py`, which it equals
    # wherever it does not decline): what `_json` reads of the JSON value at `start` (None where
    # it declines it), where it ends, its brackets' count, and with separators given, its bytes
    # as `_bodies.dump_json` writes it in a format of theirs (`ensure_ascii` and `indent` as
    # `json.dumps`'s). (`most_brackets` only bounds what the C reads.)
    try:
        value, end = _decoder().raw_decode(text, start)
    except (ValueError, RecursionError, Unrecognised):
        return None
    written = text[start:end]
    if not text.startswith("\n", end) or not _json_reads_as_yaml(written, checked=True):
        return None
    brackets = written.count("[") + written.count("{")
    if item_separator is None or key_separator is None:
        return None, end, brackets
    separators = (item_separator, key_separator)
    data = json.dumps(value, separators=separators, ensure_ascii=ensure_ascii, indent=indent).encode()
    return data, end, brackets


def _json(text: str, start: int, made: list[Any] | None, as_text: bool = False) -> tuple[Any, int]:
    fast = speedups() if as_text else None
    if fast is not None:
        # (read without building it where the C extension reads it: a `JsonText`; else parsed)
        found = fast.json_bytes(text, start, MAX_JSON_DEPTH, None, None, False, None)
        if found is not None:
            end = found[1] + 1
            return JsonText(text[start:end]), end
    try:
        value, end = _decoder().raw_decode(text, start)
    except (ValueError, RecursionError):
        raise Unrecognised from None
    written = text[start:end]
    if not text.startswith("\n", end) or not _json_reads_as_yaml(written, checked=True):
        raise Unrecognised
    if made is not None and written.count("[") + written.count("{") <= MAX_JSON_DEPTH:
        made.append(value)  # JSON's own types, nested no deeper than the models take
    return value, end + 1


def _key(key: str) -> str:
    known = _keys.get(key)
    if known is None:
        known = key[0] not in _RESOLVED_FIRST or _resolve_plain(key) == _STR_TAG
        if len(_keys) < 4096:
            _keys[key] = known
    if not known:
        raise Unrecognised
    return key


def _line(line: str) -> tuple[int, bool, str, int, Any] | None:
    # What `line` says (see `_lines`), or None when it is no line of a block mapping; raises
    # `Unrecognised` for a key or value the reader does not take.
    match = _ENTRY.fullmatch(line)
    if match is None:
        return None
    spaces, dash, key, value = match.groups()
    key = _key(key)
    found = (len(spaces), bool(dash), key, *_value(value))
    if len(line) < _LINE_KEPT_CHARS:
        if len(_lines) >= _LINES_KEPT:
            _lines.clear()
        _lines[line] = found
    return found


def _value(value: str | None) -> tuple[int, Any]:
    # How a line's value is taken, and what of it is kept (see `_lines`).
    if value is None:
        return _NO_VALUE, None
    first = value[:1]
    if first == "{" or first == "[":
        if value == "{" or value == "[":
            return _MORE, value
        if value[-1] in "]}":
            return _FLOW, _flow(value)
        if first == "[":
            return _MORE, value
        raise Unrecognised
    if first == "|":
        if value not in ("|", "|-", "|+"):
            raise Unrecognised
        return _MORE, value
    if first == "'":
        quoted = _SINGLE_QUOTED.fullmatch(value)
        if quoted is None:
            raise Unrecognised
        return _SCALAR, quoted.group(1).replace("''", "'")
    if first == '"':
        quoted = _DOUBLE_QUOTED.fullmatch(value)
        if quoted is None:
            raise Unrecognised
        return _SCALAR, quoted.group(1)
    if value in ("!!binary |", "!!binary |-", "!!binary |+"):
        return _MORE, value
    if first:
        return _SCALAR, _plain(value)
    raise Unrecognised


def _keep_run(
    first: str,
    run: str,
    item: int,
    stack: list[tuple[int, Any, bool]],
    last: tuple[int, str, int, Any],
    read: list[tuple[Any, str, int]],
) -> None:
    # Keeps the run `run` (see `_runs`), whose first line is `first`: `stack[item]` is its item,
    # `last` its last line, whose value is not read yet, and `read` the mapping, key and kind of
    # each line before it.
    if len(run) >= _RUN_KEPT_CHARS:
        return
    lines = tuple(run.split("\n"))
    # Each line after the first is deeper than the item: it goes in the item or a collection in it.
    mappings: dict[int, int] = {}
    kept: list[Any] = []
    slots: list[_Slot | None] = [None]  # (the first line is the run's name: always the same)
    for line, (mapping, key, kind) in zip(lines[1:-2], read[1:], strict=True):
        if kind is _SCALAR or kind is _FLOW:
            index = mappings.setdefault(id(mapping), len(kept))
            if index == len(kept):
                kept.append(mapping)
            # (a line's first colon ends its key: a key holds none)
            slots.append((line[: line.index(":") + 2], index, key))
        else:
            slots.append(None)
    slots += (None, None)  # (the last line, found as it is, and the empty text after it)
    try:
        # (marshal writes a collection met again as a reference to the first: loaded, the open
        # collections and the slots' mappings are the ones in the item)
        written = marshal.dumps((tuple(stack[item:]), tuple(kept)))
    except ValueError:
        return  # a value marshal does not write (a date): read line by line
    data: bytes | _Built = written
    fast = speedups()
    if fast is not None:
        # Kept loaded, for the C extension to copy for each item (see `_built`); as bytes when it
        # holds a value the copy does not take.
        loaded: _Built = marshal.loads(written)
        with contextlib.suppress(TypeError, ValueError):
            fast.copy_built(loaded)
            data = loaded
    if len(_runs) >= _RUNS_KEPT:
        _runs.clear()
        _run_misses.clear()
    _runs[first] = (run, data, last, lines, tuple(slots), (), (run,), True)


def _slotted(run: _Run, text: str, start: int) -> tuple[int, _Built] | None:
    # Where the item that starts at `start` ends its run, and what its lines build, when they are
    # the kept run `run`'s but for lines that fill a slot with a one-line value (see `_runs`);
    # else None, and it is read line by line. A value that the reader does not take raises
    # `Unrecognised`, as reading the lines before it, which build what they build in the run, and
    # then its own line would.
    holes = run[5]
    if holes:
        found = _filled(run, text, start)
        if found is not None:
            return found
    if not run[7]:
        return None
    lines = run[3]
    slots = run[4]
    # (its last line is found within twice the run's length: a run that long is read line by line)
    tail = "\n" + lines[-2] + "\n"
    at = text.find(tail, start, start + 2 * len(run[0]))
    read = text[start : at + len(tail)].split("\n") if at >= 0 else []
    differ = []
    if len(read) == len(lines):
        for index in itertools.compress(itertools.count(), map(operator.ne, lines, read)):
            slot = slots[index]
            if slot is None or not read[index].startswith(slot[0]):
                break
            differ.append((index, *slot))
        else:
            built = _fill(run, read, differ)
            if built is not None:
                chosen = {hole[0]: hole for hole in (*holes, *differ)}
                _runs[lines[0]] = _cut(run, tuple(sorted(chosen.values())))
                return at + len(tail), built
    # An item whose lines differ from the run's otherwise: the next are matched against the
    # run's pieces only, until it is kept again (see `_run_misses`).
    _runs[lines[0]] = (*run[:7], False)
    return None


def _fill(run: _Run, read: list[str], differ: list[tuple[int, str, int, str]]) -> _Built | None:
    # What the kept run `run` built, with the values of the lines `read` that fill its slots
    # `differ` (line, text up to the value, mapping, key); None when one is not a one-line value.
    built = _built(run)
    mappings = built[1]
    for index, prefix, where, key in differ:
        kind, value = _value(read[index][len(prefix) :])
        if kind is not _SCALAR and kind is not _FLOW:
            return None
        mappings[where][key] = value  # (a flow collection read afresh is its own)
    return built


def _built(run: _Run) -> _Built:
    # What the kept run `run` built, afresh: loaded from marshal's bytes, or where the C extension
    # is built, copied from the loaded value it keeps (the same value and the same sharing among
    # its collections, without making each text again: `tests/test_speedups.py`).
    data = run[1]
    if isinstance(data, bytes):
        loaded: _Built = marshal.loads(data)
        return loaded
    fast = speedups()
    assert fast is not None  # (a loaded value is only kept where it is built)
    copied: _Built = fast.copy_built(data)
    return copied


def _cut(run: _Run, holes: tuple[tuple[int, str, int, str], ...]) -> _Run:
    # The run `run` with the holes `holes` (line, text up to the value, mapping, key), and its
    # text cut around their values (see `_filled`).
    lines = run[3]
    pieces = []
    after = 0
    lead: list[str] = []
    for index, prefix, _, _ in holes:
        pieces.append("\n".join([*lead, *lines[after:index], prefix]))
        lead = [""]
        after = index + 1
    pieces.append("\n".join([*lead, *lines[after:]]))
    return (*run[:5], holes, tuple(pieces), run[7])


def _filled(run: _Run, text: str, start: int) -> tuple[int, _Built] | None:
    # `_slotted`, for a text whose lines differ from the kept run's in its holes only: the slots
    # whose values differed in an item read before, where the run's text is cut into pieces (the
    # text before the first hole's value, between the holes' values, and after the last). The
    # text is the pieces with a value of one line between each two: its lines are the run's, but
    # for each hole's line, which starts as the run's does, up to its value.
    pieces = run[6]
    if not text.startswith(pieces[0], start):
        return None
    position = start + len(pieces[0])
    built = _built(run)
    mappings = built[1]
    match_item = _ONE_ITEM.match
    for (_, _, where, key), piece in zip(run[5], pieces[1:], strict=True):
        item = match_item(text, position)
        if item is not None:
            quoted, plain = item.groups()
            mappings[where][key] = [plain if quoted is None else quoted]
            end = item.end()
        else:
            end = text.find("\n", position)  # (the text ends with a line break)
            kind, value = _value(text[position:end])
            if kind is not _SCALAR and kind is not _FLOW:
                return None
            mappings[where][key] = value
        if not text.startswith(piece, end):
            return None
        position = end + len(piece)
    return position, built


def _keep_again(first: str) -> bool:
    # True when the run that starts with `first`, whose kept run did not match, is to be kept
    # again (see `_run_misses`).
    misses = _run_misses.get(first, 0) + 1
    _run_misses[first] = misses
    return misses & (misses - 1) == 0 or misses % 16 == 0


def _place(sequence: list[Any], stack: list[tuple[int, Any, bool]], built: _Built) -> Any:
    # The item a kept run builds (`built`, see `_runs`), added to `sequence` with its open
    # collections on `stack`: the mapping its last line's key goes in.
    opens = built[0]
    sequence.append(opens[0][1])
    stack.extend(opens)
    return opens[-1][1]


def _has_control(raw: bytes) -> bool:
    # True when `raw` holds a character YAML refuses raw or reads as a line break (`_CONTROL`).
    if len(raw) < _SEARCH_CONTROL_FROM:
        return len(raw.translate(None, _CONTROL)) != len(raw)
    return any(map(raw.__contains__, _CONTROL))


def _other_utf8(raw: bytes) -> bool:
    # True when `raw` holds a character of `_OTHER_UTF8`.
    return any(lead in raw and found.search(raw) is not None for lead, found in _OTHER_UTF8)


def plain_characters(raw: bytes) -> bool:
    """
    True when ``raw`` holds no character YAML refuses raw or reads as a line break (the check
    :func:`read_layout` makes of every text it reads, unless told it was made).
    """
    fast = speedups()
    # (the C extension's one pass, where it is built: the same answer, `tests/test_speedups.py`)
    return _plain_characters_python(raw) if fast is None else fast.plain_characters(raw)


def _plain_characters_python(raw: bytes) -> bool:
    return not _has_control(raw) and (raw.isascii() or not _other_utf8(raw))


def read_layout(
    raw: str | bytes, *, made_json: list[Any] | None = None, checked: bool = False, json_as_text: bool = False
) -> Any:
    """
    The data of YAML text in the layout llmcassette writes, equal to what the general loader
    gives; :class:`Unrecognised` for any other text.

    ``made_json``, when given, receives each value the reader parsed as JSON text that is nested
    no deeper than :data:`~llmcassette._bodies.MAX_JSON_DEPTH` brackets: it holds JSON's own
    types only (string keys), so :func:`llmcassette._values.json_plain` holds for it without a
    walk through it. The list keeps them alive, so their ``id`` names them while it is held.

    ``checked``: :func:`plain_characters` was found true of the text ``raw`` was cut from, at
    line breaks (a file whose pieces are read one by one is checked once, not per piece).

    ``json_as_text``: a value written as JSON that the C extension reads is given as its text,
    a :class:`JsonText` (nested no deeper than ``MAX_JSON_DEPTH`` brackets, and not added to
    ``made_json``), for a caller that takes one: without the extension, it is parsed as ever.
    """
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    if not raw.endswith(b"\n") or (not checked and _has_control(raw)):
        raise Unrecognised
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Unrecognised from None
    # A text as long as its bytes is ASCII: the decoder's own pass tells it (a pass of `isascii`
    # over a 25 KB stream piece cost 21k instructions).
    if not checked and len(text) != len(raw) and _other_utf8(raw):
        raise Unrecognised
    # Open collections, innermost last: (column, container, is a mapping). A key given without a
    # value holds None until deeper lines give it a collection.
    stack: list[tuple[int, Any, bool]] = []
    pending: tuple[dict[Any, Any], str, int] | None = None
    root: Any = None
    position = 0
    size = len(text)
    find = text.find
    lines = _lines
    runs = _runs
    run_misses = _run_misses
    # The run of lines being read (see `_runs`): where it starts, its first line, and where its
    # item is on the stack; -1 while no run is read.
    run_at = -1
    run_line = ""
    run_item = 0
    run_read: list[tuple[Any, str, int]] = []  # (the mapping, key and kind of each of its lines)
    while position < size:
        end = find("\n", position)  # (the text ends with a line break)
        line = text[position:end]
        known = lines.get(line)
        if known is None:
            known = _line(line)
            if known is None:
                if line == "..." and end + 1 == size and stack:
                    break  # the end marker, last
                raise Unrecognised
        column, dash, key, kind, value = known
        start = position
        position = end + 1
        if not column:
            run_at = -1  # (a line at the first column ends a run)
        if dash:
            # An item of a sequence at `column`, which is a mapping whose first key is on this line.
            while stack and stack[-1][0] > column:
                stack.pop()
            if stack and stack[-1][0] == column and not stack[-1][2]:
                sequence = stack[-1][1]
            elif pending is not None and pending[2] <= column:
                sequence = []
                pending[0][pending[1]] = sequence
                stack.append((column, sequence, False))
            elif not stack and root is None:
                sequence = root = []
                stack.append((column, sequence, False))
            else:
                raise Unrecognised
            run = runs.get(line) if not column else None
            if run is not None and text.startswith(run[0], start):
                if run_misses:
                    run_misses.pop(line, None)
                mapping = _place(sequence, stack, _built(run))
                column, key, kind, value = run[2]
                position = start + len(run[0])
            elif run is not None and (slotted := _slotted(run, text, start)) is not None:
                if run_misses:
                    run_misses.pop(line, None)
                position, built = slotted
                mapping = _place(sequence, stack, built)
                column, key, kind, value = run[2]
            else:
                if not column and (run is None or _keep_again(line)):
                    run_at, run_line, run_item = start, line, len(stack)
                    run_read = []
                mapping = {}
                sequence.append(mapping)
                column += 2
                stack.append((column, mapping, True))
        else:
            if pending is not None and column > pending[2]:
                mapping = {}
                pending[0][pending[1]] = mapping
                stack.append((column, mapping, True))
            else:
                while stack and stack[-1][0] > column:
                    stack.pop()
                if not stack:
                    if root is not None or column:
                        raise Unrecognised
                    mapping = root = {}
                    stack.append((0, mapping, True))
                elif stack[-1][0] != column or not stack[-1][2]:
                    raise Unrecognised
                else:
                    mapping = stack[-1][1]
        pending = None
        if key in mapping:
            raise Unrecognised  # a key given twice: the general loader refuses it, and says where
        if run_at >= 0:
            if kind is _MORE:
                last = (column, key, kind, value)
                _keep_run(run_line, text[run_at:position], run_item, stack, last, run_read)
                run_at = -1
            else:
                run_read.append((mapping, key, kind))
        if kind is _SCALAR:
            mapping[key] = value
        elif kind is _FLOW:
            mapping[key] = value.copy()  # (the caller may change what it gets)
        elif kind is _NO_VALUE:
            mapping[key] = None
            pending = (mapping, key, column)
        elif value == "{" or value == "[":
            mapping[key], position = _json(text, position - 2, made_json, json_as_text)
        elif value[0] == "[":
            # A flow list of numbers over several lines (chunk lengths, offsets).
            close = find("]", position)
            if close < 0 or not text.startswith("\n", close + 1):
                raise Unrecognised
            inner = text[position - len(value) : close]
            # (`_NUMBERS.fullmatch`, with one deletion in C: the regex's class took a call
            # per character, and a stream's chunk lengths are a kilobyte)
            if not inner.isascii() or inner.encode("ascii").translate(None, NUMBER_BYTES):
                raise Unrecognised
            mapping[key] = _numbers(inner)
            position = close + 2
        elif value[0] == "|":
            mapping[key], position = read_literal(text, position, value, column)
        else:  # `!!binary |`, with its chomping
            content, position = read_literal(text, position, value[9:], column)
            try:
                mapping[key] = _construct_scalar(_BINARY_TAG, content, "|")
            except YAMLError:
                raise Unrecognised from None
    if root is None:
        raise Unrecognised
    return root
