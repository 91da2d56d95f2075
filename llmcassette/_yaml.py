"""
YAML reading and writing, with libyaml's C loader and emitter.

Writing aims at a file that reads well in a pull request: multi-line text (SSE, NDJSON) as a
literal block, one line per line; short lists of scalars in flow style; keys in a fixed, logical
order. Reading is the safe loader: no YAML tag can construct anything but plain data.
"""

from __future__ import annotations

import binascii
import enum
import re
import sys
from typing import Any

import yaml

__all__ = ["MisencodedBinary", "YAMLError", "dump_yaml", "load_yaml"]

YAMLError = yaml.YAMLError

# NOTE: libyaml is what makes loading fast (about 70x the pure-Python loader on large cassettes);
# PyYAML wheels ship it, but a source build may not.
_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BaseDumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Loader(_BaseLoader):  # type: ignore[misc]
    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key_node, _ in node.value:
                # Keys that a merge (`<<`) brings in may be overridden; written keys may not.
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _MERGE_TAG:
                    continue
                key = self.construct_object(key_node)
                if key in seen:
                    raise _duplicate_key(key, key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _duplicate_key(key: Any, mark: Any) -> yaml.YAMLError:
    # YAML lets the last of two equal keys win; in a cassette that silently drops a value.
    return yaml.constructor.ConstructorError(None, None, f"found the key {key!r} twice in one mapping", mark)


def _construct_python_str(loader: Any, node: Any) -> str:
    # Cassettes written by vcrpy under Python 2 tag text as python/unicode or python/str.
    return str(loader.construct_scalar(node))


def _construct_timestamp_text(loader: Any, node: Any) -> str:
    # YAML 1.1 reads a plain `2024-01-02` as a date. Nothing in a cassette is a date (headers and
    # bodies are text and JSON, and JSON has none), and a date in a hand-written `parsed_body`
    # could never be sent: it stays the text it was written as.
    return str(loader.construct_scalar(node))


class MisencodedBinary(bytes):
    """
    A ``!!binary`` value whose text is not base64: the bytes PyYAML's decoder would have made of
    it, and :attr:`problem`, why it is not. Every field of the cassette models that takes bytes
    refuses it (``_values.binary_checked``), naming the interaction and the field.
    """

    problem: str


#: What may stand between the letters of a `!!binary` value: YAML's line breaks, and indentation.
_BASE64_SPACE = b" \t\r\n"
_BASE64_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")


def _construct_binary(loader: Any, node: Any) -> bytes:
    # PyYAML decodes with `base64.decodebytes`, which skips any character outside base64: a
    # hand-edited body with one loses bits of its bytes in silence. The value is decoded strictly
    # here; one that does not decode is kept, marked, for the models to refuse with its place.
    text = loader.construct_scalar(node)
    letters = text.encode("utf-8").translate(None, _BASE64_SPACE)
    try:
        return binascii.a2b_base64(letters, strict_mode=True)  # (in C, where b64decode's check is a regex)
    except binascii.Error as exc:
        strangers = sorted({ch for ch in text if ch not in _BASE64_LETTERS and ch not in " \t\r\n"})
        if strangers:
            named = [repr(ch) for ch in strangers[:5]] + (["more"] if len(strangers) > 5 else [])
            shown = named[0] if len(named) == 1 else ", ".join(named[:-1]) + " and " + named[-1]
            problem = (
                f"its `!!binary` text holds {shown}, which base64 has not (YAML's decoder would "
                "skip them, changing the bytes)"
            )
        else:
            problem = f"its `!!binary` text is not base64 ({str(exc).rstrip('.')})"
        try:  # (what PyYAML's decoder made of it, for code that reads it before the models do)
            lenient = binascii.a2b_base64(letters.decode("ascii", "ignore") + "===")
        except binascii.Error:
            lenient = b""
        marked = MisencodedBinary(lenient)
        marked.problem = problem
        return marked


def _too_long(value: str, mark: Any) -> yaml.YAMLError:
    # Python reads integers of at most 4300 digits (a guard against slow conversions): a longer
    # one is the file's error, at its place, not a ValueError from deep inside the loader.
    limit = sys.get_int_max_str_digits()
    return yaml.constructor.ConstructorError(
        None,
        None,
        f"a number of {len(value)} characters, longer than the {limit} digits Python reads; quote it "
        "if it is text, or shorten it",
        mark,
    )


def _construct_int(loader: Any, node: Any) -> Any:
    try:
        value = yaml.constructor.SafeConstructor.construct_yaml_int(loader, node)
    except ValueError:
        raise _too_long(node.value, node.start_mark) from None
    limit = sys.get_int_max_str_digits()
    # Hexadecimal, octal and binary text is read whatever its length, into a number no JSON body
    # can be written with (its decimal digits are limited too): refused as well, a little before
    # the limit (3 bits a digit, where a digit is 3.32 bits).
    if limit and value.bit_length() >= 3 * limit:
        raise _too_long(node.value, node.start_mark)
    return value


_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_BINARY_TAG = "tag:yaml.org,2002:binary"
_Loader.add_constructor("tag:yaml.org,2002:python/unicode", _construct_python_str)
_Loader.add_constructor("tag:yaml.org,2002:python/str", _construct_python_str)
_Loader.add_constructor(_TIMESTAMP_TAG, _construct_timestamp_text)
_Loader.add_constructor(_BINARY_TAG, _construct_binary)


class _Dumper(_BaseDumper):  # type: ignore[misc]
    pass


# libyaml counts every character outside the BMP (emoji, for one) as unprintable and escapes it,
# which turns a whole SSE body into one double-quoted line. PyYAML's own emitter writes them as
# they are; it is slower, so it only runs when libyaml had to escape such a character.
class _PyDumper(yaml.SafeDumper):
    pass


# Characters YAML treats as line breaks or strips; a literal block would not give them back.
_NOT_IN_BLOCK = ("\r", "\x85", "\u2028", "\u2029", "\ufeff")


def _represent_str(dumper: Any, data: str) -> Any:
    if any(ch in data for ch in _NOT_IN_BLOCK):
        # Only the double-quoted style escapes them; PyYAML's emitter would write a NEL (U+0085)
        # raw into a single-quoted scalar, where the reader folds it away.
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style='"')
    if "\n" in data:
        # The emitter falls back to a quoted style by itself when a block cannot hold the text
        # exactly (for example a line with trailing spaces).
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


def _represent_enum(dumper: Any, data: enum.Enum) -> Any:
    return dumper.represent_data(data.value)


for _dumper_class in (_Dumper, _PyDumper):
    _dumper_class.add_representer(str, _represent_str)
    _dumper_class.add_multi_representer(enum.Enum, _represent_enum)


_STR_TAG = "tag:yaml.org,2002:str"
_INT_TAG = "tag:yaml.org,2002:int"
_Loader.add_constructor(_INT_TAG, _construct_int)
_FLOAT_TAG = "tag:yaml.org,2002:float"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_COLLECTION_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")
_IMPLICIT = yaml.SafeLoader.yaml_implicit_resolvers
_WILDCARD = _IMPLICIT.get(None, [])
_PLAIN_INT = re.compile(r"-?(?:0|[1-9][0-9]*)\Z")
_PLAIN_FLOAT = re.compile(r"-?(?:0|[1-9][0-9]*)\.[0-9]+\Z")
_NO_KEY = object()


class _Unsupported(Exception):
    """The fast loader met YAML it leaves to the standard loader (merge keys, complex keys)."""


def _resolve_plain(value: str) -> str:
    # The same implicit resolution as PyYAML's safe loader, from the same table.
    for tag, regexp in _IMPLICIT.get(value[:1] if value else "", []) + _WILDCARD:
        if regexp.match(value):
            return str(tag)
    return _STR_TAG


class _ScalarConstructor(yaml.SafeLoader):
    pass


_ScalarConstructor.add_constructor("tag:yaml.org,2002:python/unicode", _construct_python_str)
_ScalarConstructor.add_constructor("tag:yaml.org,2002:python/str", _construct_python_str)
_ScalarConstructor.add_constructor(_TIMESTAMP_TAG, _construct_timestamp_text)
_ScalarConstructor.add_constructor(_BINARY_TAG, _construct_binary)
_ScalarConstructor.add_constructor(_INT_TAG, _construct_int)
_scalar_constructor = _ScalarConstructor("")


def _construct_scalar(tag: str, value: str, style: Any) -> Any:
    if tag == _INT_TAG and _PLAIN_INT.match(value):
        return int(value)
    if tag == _FLOAT_TAG and _PLAIN_FLOAT.match(value):
        return float(value)
    if tag == _MERGE_TAG:
        raise _Unsupported
    try:
        return _scalar_constructor.construct_object(yaml.ScalarNode(tag, value, style=style), deep=True)
    finally:
        # The constructor remembers every node it built, for aliases; these nodes are never seen
        # again, and keeping them would hold every `!!binary` body loaded so far.
        _scalar_constructor.constructed_objects.clear()


def _fast_load(text: str | bytes) -> Any:
    # Builds the data straight from libyaml's events, skipping the node graph the standard
    # loader composes first: about five times faster on cassettes, and the same result.
    parser = _BaseLoader(text)
    events = yaml.events
    scalar, mapping_start, sequence_start = (
        events.ScalarEvent,
        events.MappingStartEvent,
        events.SequenceStartEvent,
    )
    collection_end = (events.MappingEndEvent, events.SequenceEndEvent)
    stack: list[Any] = []
    keys: list[Any] = []
    anchors: dict[str, Any] = {}
    root: Any = None
    documents = 0
    try:
        while True:
            event = parser.get_event()
            kind = type(event)
            if kind is scalar:
                tag = event.tag
                if tag is None or tag == "!":
                    tag = _resolve_plain(event.value) if event.implicit[0] else _STR_TAG
                try:
                    value: Any = (
                        event.value if tag == _STR_TAG else _construct_scalar(tag, event.value, event.style)
                    )
                except ValueError:
                    raise _too_long(event.value, event.start_mark) from None
                except yaml.constructor.ConstructorError as exc:
                    # (built from a node of its own, with no place in the file: given the event's)
                    if exc.problem_mark is None:
                        exc.problem_mark = event.start_mark
                    raise
            elif kind is mapping_start or kind is sequence_start:
                if not event.implicit and event.tag not in _COLLECTION_TAGS:
                    # A tagged collection (`!!set`, `!!omap`, an unknown tag the safe loader
                    # refuses) is built, or refused, by the standard loader.
                    raise _Unsupported
                value = {} if kind is mapping_start else []
            elif kind in collection_end:
                stack.pop()
                keys.pop()
                continue
            elif kind is events.AliasEvent:
                if event.anchor not in anchors:
                    raise _Unsupported  # the standard loader reports the undefined alias
                value = anchors[event.anchor]
            elif kind is events.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise _Unsupported
                continue
            elif kind is events.StreamEndEvent:
                return root
            elif kind is events.StreamStartEvent or kind is events.DocumentEndEvent:
                continue
            else:
                # An event this loader does not know (or none: the stream is exhausted, which
                # happens when PyYAML was imported twice and its event classes differ): leave it
                # to the standard loader rather than loop.
                raise _Unsupported
            anchor = getattr(event, "anchor", None)
            if anchor is not None:
                anchors[anchor] = value
            if not stack:
                root = value
            elif type(stack[-1]) is list:
                stack[-1].append(value)
            elif keys[-1] is _NO_KEY:
                if isinstance(value, dict | list):
                    raise _Unsupported
                if value in stack[-1]:
                    raise _duplicate_key(value, event.start_mark)
                keys[-1] = value
            else:
                stack[-1][keys[-1]] = value
                keys[-1] = _NO_KEY
            if kind is mapping_start or kind is sequence_start:
                stack.append(value)
                keys.append(_NO_KEY)
    finally:
        parser.dispose()


def load_yaml(text: str | bytes) -> Any:
    """Parse YAML text into plain Python data, as PyYAML's safe loader would."""
    if _BaseLoader is yaml.SafeLoader:
        return yaml.load(text, Loader=_Loader)
    try:
        return _fast_load(text)
    except _Unsupported:
        return yaml.load(text, Loader=_Loader)


def dump_yaml(data: Any) -> str:
    """Write plain Python data as readable YAML."""
    text = _dump(data, _Dumper)
    if "\\U" in text:
        # Escaped astral characters (or a literal backslash-U, which costs only the slower pass).
        text = _dump(data, _PyDumper)
    return text


def _dump(data: Any, dumper: Any) -> str:
    text: str = yaml.dump(
        data,
        Dumper=dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=None,
        width=120,
    )
    return text
