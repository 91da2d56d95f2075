"""
Reading cassette files from disk and writing them back, atomically.

Reading accepts llmcassette's own files and the vcrpy family (plain vcrpy YAML or JSON,
pytest-recording, pydantic-ai's serializer), with or without ``version``. Errors name the file,
the interaction and the field. Writing goes to a temporary file in the same folder that is then
renamed over the target, so a reader never sees half a cassette. Written ``vcrpy_compatible``,
a file keeps every body as vcrpy's text (``body`` / ``body.string``), which plain vcrpy replays;
the chunk boundaries and timing stay under ``response.stream``, which vcrpy ignores.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

from ._block_text import set_aside
from ._bodies import is_text
from ._eventstream import frames_data
from ._exceptions import CassetteError, CassetteFormatError, CassetteNotFound
from ._file_errors import read_error, write_error, writing
from ._layout import dump_cassette_yaml, load_cassette_yaml
from ._models import (
    CassetteDocument,
    Interaction,
    RecordedRequest,
    RecordedResponse,
    StreamEnd,
    StreamRecord,
)
from ._yaml import YAMLError

__all__ = [
    "WILDCARD_REQUEST",
    "cassette_lock",
    "check_complete",
    "completeness_checked",
    "document_to_data",
    "dumps_cassette",
    "file_state",
    "format_validation_error",
    "load_cassette",
    "parse_cassette",
    "read_cassette_bytes",
    "save_cassette",
]

_REPAIR_HINT = "Fix the file by hand, or delete it and record the cassette again."


def load_cassette(path: str | Path) -> CassetteDocument:
    """Read and validate the cassette at ``path`` (llmcassette, vcrpy or pydantic-ai layout)."""
    path = Path(path)
    return parse_cassette(read_cassette_bytes(path), path=path)


def read_cassette_bytes(path: Path) -> bytes:
    """The bytes of the cassette file at ``path``, or :class:`CassetteNotFound`."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CassetteNotFound(
            f"llmcassette: cassette file {str(path)!r} does not exist.", path=path
        ) from None
    except OSError as exc:
        raise read_error(path, exc) from exc


def parse_cassette(raw: bytes, *, path: Path) -> CassetteDocument:
    """Validate the text of a cassette file; ``path`` is only used in error messages."""
    check_complete(raw, path=path)
    data = _parse_text(raw, path)
    if data is None:
        data = {"interactions": []}
    if not isinstance(data, dict):
        raise CassetteFormatError(
            f"llmcassette: cassette {str(path)!r} is not a cassette: its top level is a "
            f"{type(data).__name__}, not a mapping with `interactions`. {_REPAIR_HINT}",
            path=path,
        )
    if "interactions" not in data and _is_bare_response(data):
        data = {"interactions": [{"request": dict(WILDCARD_REQUEST), "response": _bare_response(data)}]}
    if "interactions" not in data:
        raise CassetteFormatError(
            f"llmcassette: cassette {str(path)!r} has no `interactions` list. {_REPAIR_HINT}",
            path=path,
            field="interactions",
        )
    if data["interactions"] is None:
        data["interactions"] = []
    try:
        return CassetteDocument.model_validate(data)
    except ValidationError as exc:
        raise format_validation_error(exc, path) from None


def completeness_checked(path: Path) -> bool:
    """Whether :func:`check_complete` judges a file of this name (a ``.json`` file it takes as it is)."""
    return path.suffix != ".json"


def check_complete(raw: bytes, *, path: Path) -> None:
    """
    Refuse a YAML cassette that was cut short (a full disk, an interrupted copy) when what is left
    may still parse. Checked on the bytes, before parsing, so that a cut which also breaks the
    YAML is reported as what it is.

    - A file llmcassette wrote declares ``llmcassette_schema`` and ends with a ``...`` line: one
      that declares the schema and lacks the line is incomplete.
    - vcrpy, pytest-recording and pydantic-ai write ``version: 1`` last, and every YAML writer
      ends the file with a line break: a file of interactions with neither was cut mid-line. A
      cut at a line break between two interactions of such a file cannot be told apart from a
      shorter file.
    """
    if not completeness_checked(path) or not raw or raw.isspace():  # no copy of a large file
        return
    if _has_top_level_key(raw, b"llmcassette_schema"):
        if not _ends_with_marker(raw):
            raise _incomplete(
                path,
                "llmcassette ends every cassette with a `...` line and this file stops before it",
                "if it is whole (a tool that rewrote it dropped the line), add `...` as its last line",
            )
    elif (
        not raw.endswith((b"\n", b"\r"))
        and _has_top_level_key(raw, b"interactions")
        and not _has_top_level_key(raw, b"version")
    ):
        raise _incomplete(
            path,
            "it stops in the middle of a line and has no `version` line, which vcrpy writes last",
            "if it is whole, end it with a line break",
        )


def _incomplete(path: Path, why: str, if_whole: str) -> CassetteFormatError:
    return CassetteFormatError(
        f"llmcassette: cassette {str(path)!r} is incomplete: {why}, so it was cut short (a full "
        "disk, an interrupted copy) and interactions or bytes of a body may be missing. Restore "
        f"it from version control, or delete it and record the cassette again; {if_whole}.",
        path=path,
    )


def _has_top_level_key(raw: bytes, key: bytes) -> bool:
    # Only a top-level key starts at the first column (block text and nested keys are indented).
    key += b":"
    return raw.startswith(key) or b"\n" + key in raw


def _ends_with_marker(raw: bytes) -> bool:
    # The last line that is not blank or a comment (YAML allows both after the marker), found
    # from the end without copying the file.
    end = len(raw)
    while True:
        while end > 0 and raw[end - 1] in b" \t\r\n":
            end -= 1
        start = raw.rfind(b"\n", 0, end) + 1
        line = raw[start:end]
        if not line.startswith(b"#"):
            return line == b"..." or line.startswith((b"... ", b"...\t"))
        if start == 0:
            return False
        end = start


#: The request of an interaction that answers any request: what a response-only file becomes.
WILDCARD_REQUEST = {"method": "*", "uri": "*"}


def _is_bare_response(data: dict[str, Any]) -> bool:
    # A response saved on its own (`{status, headers, body}`), as some fixtures are.
    return ("status" in data or "status_code" in data) and set(data) <= {
        "status",
        "status_code",
        "headers",
        "body",
        "parsed_body",
    }


def _bare_response(data: dict[str, Any]) -> dict[str, Any]:
    status = data.get("status", data.get("status_code"))
    response: dict[str, Any] = {
        "status": {"code": status, "message": ""} if not isinstance(status, dict) else status,
        "headers": data.get("headers") or {},
    }
    body = data.get("body")
    if "parsed_body" in data:
        response["parsed_body"] = data["parsed_body"]
    elif isinstance(body, dict) and set(body) == {"string"}:
        response["body"] = body
    elif isinstance(body, dict | list):
        response["parsed_body"] = body
    else:
        response["body"] = {"string": "" if body is None else body}
    return response


def _not_utf8(raw: bytes, path: Path) -> CassetteFormatError | None:
    # Where a file that does not parse is not UTF-8, the readers say so without a line (libyaml:
    # "unacceptable character #x007d: invalid trailing UTF-8 octet", the character after the
    # culprit), or by byte offset (json): found here, only once the file has failed to parse.
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return None  # UTF-16, with its mark: both readers take it
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - raw.rfind(b"\n", 0, exc.start)
        return CassetteFormatError(
            f"llmcassette: cassette {str(path)!r} is not UTF-8 text: the byte 0x{raw[exc.start]:02x} at "
            f"line {line}, column {column} is not UTF-8 (was the file saved as Latin-1 or Windows-1252?). "
            "Save it as UTF-8.",
            path=path,
        )
    return None


def _parse_text(raw: bytes, path: Path) -> Any:
    if path.suffix == ".json":
        try:
            return json.loads(raw, object_pairs_hook=_without_duplicate_keys)
        except ValueError as exc:
            not_utf8 = _not_utf8(raw, path)
            if not_utf8 is not None:
                raise not_utf8 from None
            raise CassetteFormatError(
                f"llmcassette: cassette {str(path)!r} is not valid JSON: {exc}. {_REPAIR_HINT}", path=path
            ) from None
        except RecursionError:
            # (YAML's reader stops at a depth of its own, and says so: this is JSON's)
            raise CassetteFormatError(
                f"llmcassette: cassette {str(path)!r} is not valid JSON: it is nested deeper than "
                f"Python's JSON reader goes. {_REPAIR_HINT}",
                path=path,
            ) from None
    try:
        return load_cassette_yaml(raw)
    except YAMLError as exc:
        not_utf8 = _not_utf8(raw, path)
        if not_utf8 is not None:
            raise not_utf8 from None
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise CassetteFormatError(
            f"llmcassette: cassette {str(path)!r} is not valid YAML{where}: {problem}. {_REPAIR_HINT}",
            path=path,
        ) from None


def _without_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # JSON, like YAML, lets the last of two equal keys win, silently dropping the first value.
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise ValueError(f"an object has the key {key!r} twice")
        data[key] = value
    return data


def format_validation_error(
    exc: ValidationError, path: Path, *, prefix: tuple[str | int, ...] = ()
) -> CassetteFormatError:
    """A pydantic error as a sentence naming the file, the interaction and the field."""
    errors = exc.errors()
    # One problem per field: a value that fits no member of a union gets an error from each.
    fields = list(dict.fromkeys(_field_loc(error["loc"]) for error in errors))
    first = errors[0]
    loc = [*prefix, *fields[0]]
    index: int | None = None
    if len(loc) >= 2 and loc[0] == "interactions" and isinstance(loc[1], int):
        index = loc[1]
        loc = loc[2:]
    field = ".".join(str(part) for part in loc) or "(top level)"
    where = f"interaction {index}, field `{field}`" if index is not None else f"field `{field}`"
    more = len(fields) - 1
    tail = f" ({more} more problem{'s' if more > 1 else ''} after this one)" if more else ""
    # A newer llmcassette's file is not damaged: the message already says what to do.
    hint = "" if first["type"] == "newer_schema" else f" {_REPAIR_HINT}"
    return CassetteFormatError(
        f"llmcassette: cassette {str(path)!r} is not valid: {where}: {first['msg']}{tail}.{hint}",
        path=path,
        interaction=index,
        field=field,
    )


# pydantic ends the location of a union's error with the member type that refused the value
# (`body.str`, `body.bytes`): a type, not a field the reader could look for.
_UNION_MEMBERS = frozenset({"str", "bytes", "int", "float", "bool"})


def _field_loc(loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    end = len(loc)
    while end > 1 and loc[end - 1] in _UNION_MEMBERS:
        end -= 1
    return loc[:end]


def _extras(model: Any) -> dict[str, Any]:
    return dict(model.model_extra or {})


def _vcrpy_body(content: bytes) -> str | bytes:
    # vcrpy encodes text back to UTF-8 and takes bytes (YAML `!!binary`) as they are: either way
    # it gets the recorded bytes, with no llmcassette key to interpret.
    return content.decode("utf-8") if is_text(content) else content


def _request_data(request: RecordedRequest, vcrpy: bool) -> dict[str, Any]:
    data: dict[str, Any] = {"method": request.method, "uri": request.uri, "headers": request.headers}
    if vcrpy and "parsed_body" in request.model_fields_set:
        # vcrpy builds its request from exactly these keys: `parsed_body` would be refused.
        data["body"] = _vcrpy_body(request.content)
    elif "parsed_body" in request.model_fields_set:
        data["parsed_body"] = request.parsed_body
        if request.json_format:
            data["json_format"] = request.json_format
    else:
        data["body"] = request.body
    data.update(_extras(request))
    return data


def _stream_data(stream: StreamRecord) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if stream.chunks is not None:
        data["chunks"] = stream.chunks
    if stream.offsets_ms is not None:
        data["offsets_ms"] = stream.offsets_ms
    if stream.end is not StreamEnd.COMPLETE:
        data["end"] = stream.end.value
    if stream.error is not None:
        data["error"] = {"type": stream.error.type, "message": stream.error.message}
    data.update(_extras(stream))
    return data


def _response_data(response: RecordedResponse, vcrpy: bool) -> dict[str, Any]:
    if response.status is None:
        # A connection that failed before any answer: no head, no body, only how it failed.
        data: dict[str, Any] = {}
        if response.elapsed_ms is not None:
            data["elapsed_ms"] = response.elapsed_ms
        if response.stream is not None:
            data["stream"] = _stream_data(response.stream)
        data.update(_extras(response))
        return data
    data = {
        "status": {"code": response.status.code, "message": response.status.message},
        "headers": response.headers,
    }
    if response.eventstream is not None and not vcrpy:
        data["eventstream"] = frames_data(response.eventstream)
    elif vcrpy and (
        "parsed_body" in response.model_fields_set
        or response.eventstream is not None
        or response.stored_body().line_endings
    ):
        # vcrpy plays `body.string` as it is: neither `parsed_body`, `eventstream` nor
        # `line_endings` would be applied, so the stored text is the body's own bytes.
        data["body"] = {"string": _vcrpy_body(response.content)}
    elif "parsed_body" in response.model_fields_set:
        data["parsed_body"] = response.parsed_body
        if response.json_format:
            data["json_format"] = response.json_format
    else:
        body = response.body
        data["body"] = {"string": body.string if body is not None else ""}
        if body is not None and body.line_endings:
            data["body"]["line_endings"] = body.line_endings
    if response.elapsed_ms is not None:
        data["elapsed_ms"] = response.elapsed_ms
    if response.stream is not None:
        data["stream"] = _stream_data(response.stream)
    data.update(_extras(response))
    return data


def _interaction_data(interaction: Interaction, vcrpy: bool) -> dict[str, Any]:
    data = {
        "request": _request_data(interaction.request, vcrpy),
        "response": _response_data(interaction.response, vcrpy),
    }
    if interaction.websocket is not None:
        data["websocket"] = interaction.websocket.to_data()
    data.update(_extras(interaction))
    return data


def document_to_data(document: CassetteDocument, *, vcrpy_compatible: bool = False) -> dict[str, Any]:
    """
    The plain data of a cassette, keys in the order a reader expects. ``vcrpy_compatible`` writes
    every body as text (or bytes) that plain vcrpy replays, instead of ``parsed_body``.
    """
    data: dict[str, Any] = {
        "version": document.version,
        "llmcassette_schema": document.schema_needed(),
        "interactions": [_interaction_data(i, vcrpy_compatible) for i in document.interactions],
    }
    data.update(_extras(document))
    return data


def dumps_cassette(
    document: CassetteDocument, *, json_file: bool = False, vcrpy_compatible: bool = False
) -> str:
    """The text of a cassette file: YAML, or JSON for a ``.json`` path (see ``document_to_data``)."""
    return "".join(_cassette_pieces(document, json_file=json_file, vcrpy_compatible=vcrpy_compatible))


def _cassette_pieces(document: CassetteDocument, *, json_file: bool, vcrpy_compatible: bool) -> Iterable[str]:
    # The text in pieces: a long text body is written a slice at a time, never copied whole
    # (see `_block_text`). Whatever can fail (a value JSON cannot hold) fails here, before a
    # piece is written.
    data = document_to_data(document, vcrpy_compatible=vcrpy_compatible)
    if json_file:
        return [json.dumps(data, indent=2, ensure_ascii=False, default=_json_default) + "\n"]
    aside = set_aside(data)
    try:
        text = dump_cassette_yaml(data)
    finally:
        aside.restore()
    pieces = aside.pieces(text) if aside.bodies else None
    if pieces is None:
        if aside.bodies:  # pragma: no cover - the emitter wrote a placeholder otherwise
            text = dump_cassette_yaml(data)
        pieces = iter([text])
    return _with_end_marker(pieces)


def _with_end_marker(pieces: Iterator[str]) -> Iterator[str]:
    # The end marker tells a whole file from one cut short (see `check_complete`). PyYAML writes
    # it already after a document that ends open (a `|+` block).
    tail = ""
    for piece in pieces:
        if piece:
            tail = (tail + piece)[-5:]
            yield piece
    if tail != "\n...\n":
        yield "...\n"


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        raise TypeError(
            "it has a binary body, which JSON cannot hold; use a .yaml path (bytes are written as !!binary)"
        )
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def file_state(path: Path) -> tuple[int, int, int] | None:
    """What identifies a version of the file on disk (inode, size, mtime), or None if absent."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:  # a symbolic link loop, a file where a folder should be
        raise read_error(path, exc) from exc
    return (info.st_ino, info.st_size, info.st_mtime_ns)


@contextlib.contextmanager
def cassette_lock(path: Path) -> Iterator[None]:
    """
    Hold an exclusive lock for writing cassettes in ``path``'s folder, across processes (pytest-xdist
    workers). The folder itself is locked, so no lock file is left beside the cassettes.
    """
    with writing(path, "creating the folder"):
        path.parent.mkdir(parents=True, exist_ok=True)
    if fcntl is None:  # pragma: no cover - not POSIX: atomic renames still keep files whole
        yield
        return
    with writing(path, "locking the folder"):
        fd = os.open(path.parent, os.O_RDONLY)
    try:
        with writing(path, "locking the folder"):
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def save_cassette(path: str | Path, document: CassetteDocument, *, vcrpy_compatible: bool = False) -> None:
    """
    Write ``document`` to ``path`` atomically: a temporary file, then a rename.
    ``vcrpy_compatible`` keeps every body in the form plain vcrpy reads (see ``document_to_data``).
    """
    path = Path(path)
    try:
        pieces = _cassette_pieces(
            document, json_file=path.suffix == ".json", vcrpy_compatible=vcrpy_compatible
        )
    except TypeError as exc:
        raise CassetteError(f"llmcassette: cannot write cassette {str(path)!r}: {exc}.", path=path) from None
    with writing(path, "creating the folder"):
        path.parent.mkdir(parents=True, exist_ok=True)
    with writing(path, "creating a temporary file beside it"):
        fd, tmp = _create_temporary(path)
    doing = "writing a temporary file beside it"
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            for piece in pieces:
                handle.write(piece)
            handle.flush()
            os.fsync(handle.fileno())
        doing = "renaming the temporary file over it"
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise write_error(path, exc, doing=doing) from exc
        raise


def _create_temporary(path: Path) -> tuple[int, str]:
    # Not tempfile.mkstemp: it creates the file with mode 0600, which the rename would hand on to
    # the cassette. Created this way the umask applies, as for any new file, and a cassette that
    # is written again keeps the mode it had.
    while True:
        tmp = str(path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        break
    with contextlib.suppress(OSError):
        os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))
    return fd, tmp
