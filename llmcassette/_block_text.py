"""
Long text bodies written into a cassette as YAML literal blocks, a slice at a time.

Handed a body of megabytes, the YAML emitter copies it several times over (its input converted,
its output buffer, the text returned, the bytes encoded for the file): recording a 50 MB stream
took five times its size in memory to save. A text body of at least
:data:`~llmcassette._file_bodies.FILE_BODY_MIN_BYTES` characters is therefore set aside before
the rest of the cassette is dumped, a short placeholder in its place, and written where the
placeholder is as the literal block YAML's emitter writes for it (same indentation, same
indentation and chomping indicators), in slices of 256 Ki characters.

Only text a literal block gives back exactly is set aside: with a line break, and without the
characters YAML folds, strips or refuses there (CR, NEL, the Unicode line and paragraph
separators, a byte order mark, control characters). Anything else is dumped as before.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from typing import Any

from . import _file_bodies

__all__ = ["TextSetAside", "set_aside"]

_SLICE_CHARS = 256 * 1024
# What a literal block cannot hold as it is: characters YAML reads as line breaks or strips, and
# those it refuses unescaped (outside its printable set).
_NOT_LITERAL = re.compile(
    "[^\t\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
)
_LINE_START = re.compile(r"^(?=[^\n])", re.MULTILINE)


class TextSetAside:
    """The bodies taken out of a cassette's data, and where to put them back in its text."""

    def __init__(self) -> None:
        self.token = f"llmcassette-text-{secrets.token_hex(6)}"
        self.bodies: list[str] = []
        self._places: list[tuple[dict[str, Any], str, str]] = []
        # The placeholder is text with a line break, so that the emitter writes it as a literal
        # block too, in block style: `key: |` and the placeholder on the next line, indented.
        self._placeholder = re.compile(rf"^( *)([a-z_]+): \|\n( +){self.token}-([0-9]+)\n", re.MULTILINE)

    def take(self, holder: dict[str, Any], key: str) -> None:
        """Set ``holder[key]`` aside when it is a long text a literal block holds exactly."""
        text = holder.get(key)
        if (
            not isinstance(text, str)
            or len(text) < _file_bodies.FILE_BODY_MIN_BYTES
            or "\n" not in text
            or _NOT_LITERAL.search(text)
        ):
            return
        self._places.append((holder, key, text))
        holder[key] = f"{self.token}-{len(self.bodies)}\n"
        self.bodies.append(text)

    def restore(self) -> None:
        """Put every body back into the data it was taken from."""
        for holder, key, text in self._places:
            holder[key] = text
        self._places.clear()

    def pieces(self, text: str) -> Iterator[str] | None:
        """
        ``text`` (the YAML of the data with the placeholders) in pieces, each body written in
        its place; None when the emitter wrote a placeholder otherwise than expected.
        """
        found = list(self._placeholder.finditer(text))
        if sorted(int(match.group(4)) for match in found) != list(range(len(self.bodies))):
            return None
        return self._pieces(text, found)

    def _pieces(self, text: str, found: list[re.Match[str]]) -> Iterator[str]:
        at = 0
        for match in found:
            key_indent, key, indent = match.group(1), match.group(2), match.group(3)
            body = self.bodies[int(match.group(4))]
            yield text[at : match.start()]
            yield f"{key_indent}{key}: |{_hints(body, len(indent) - len(key_indent))}\n"
            yield from _lines(body, indent)
            at = match.end()
        yield text[at:]


def _hints(body: str, indent_step: int) -> str:
    # As PyYAML's emitter decides them: the indentation when the first line starts with a space
    # or is empty (else the reader would take it from there), and how the final line breaks go.
    # A first line that starts with a tab needs it too: libyaml refuses a tab where it looks for
    # the indentation (the emitter never meets one, as it quotes any text with a tab).
    hints = str(indent_step) if body[0] in " \n\t" else ""
    if not body.endswith("\n"):
        hints += "-"
    elif len(body) == 1 or body[-2] == "\n":
        hints += "+"
    return hints


def _lines(body: str, indent: str) -> Iterator[str]:
    # Every line that is not empty indented; slices end at a line break.
    start = 0
    while start < len(body):
        end = body.find("\n", start + _SLICE_CHARS)
        end = len(body) if end < 0 else end + 1
        yield _LINE_START.sub(indent, body[start:end])
        start = end
    if not body.endswith("\n"):
        yield "\n"


def set_aside(data: dict[str, Any]) -> TextSetAside:
    """Take every long text body of a cassette's data aside (see :class:`TextSetAside`)."""
    aside = TextSetAside()
    for interaction in data.get("interactions") or ():
        if not isinstance(interaction, dict):
            continue
        request, response = interaction.get("request"), interaction.get("response")
        if isinstance(request, dict):
            aside.take(request, "body")
        if isinstance(response, dict) and isinstance(response.get("body"), dict):
            aside.take(response["body"], "string")
    return aside
