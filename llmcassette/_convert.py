"""
Importing cassettes: vcrpy, pytest-recording and pydantic-ai files rewritten in llmcassette's form.

Loading already accepts those files as they are; importing rewrites them so that they read well
and hold no secrets. Each body is decoded and stored as llmcassette records it: a gzip or deflate
body is decompressed (its ``Content-Encoding`` dropped), a ``!!binary`` body that is text becomes
text, JSON becomes ``parsed_body``, and secrets are scrubbed as when recording. Nothing the client
sees changes except the scrubbed values: every body keeps its bytes, and a body with recorded
chunk boundaries (``stream.chunks``) keeps them. A streamed body without boundaries gets none
invented: replay hands it over one event per chunk, which for a stream that was gzip-compressed
(one opaque chunk before) now means real event boundaries.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._bodies import store_body
from ._exceptions import CassetteError
from ._models import (
    CassetteDocument,
    Interaction,
    RecordedRequest,
    RecordedResponse,
    header_get,
    message_content,
)
from ._playback import recorded_chunks
from ._recording import decompress, parsed_fields, scrub_body, shift_content_length
from ._scrub import Scrubber, remap_chunks
from ._storage import WILDCARD_REQUEST, parse_cassette, read_cassette_bytes, save_cassette

__all__ = [
    "CASSETTE_SUFFIXES",
    "Changes",
    "ImportReport",
    "ImportResult",
    "convert_document",
    "decompress",
    "cassettes_under",
    "find_cassettes",
    "import_cassettes",
    "looks_like_cassette",
    "plan_import",
]

#: File name endings of cassette files, as a folder is searched for them.
CASSETTE_SUFFIXES = (".yaml", ".yml", ".json")
# Folders that never hold a project's cassettes, and are large: skipped when searching.
_SKIPPED_DIRS = frozenset({"__pycache__", "node_modules"})
# A top-level key of a cassette: `interactions:`, `status:` of a response saved on its own, or
# llmcassette's schema line (a file cut short before its interactions is still a cassette).
_YAML_CASSETTE_KEY = re.compile(
    rb"""^["']?(?:interactions|status|llmcassette_schema)["']?[ \t]*:""", re.MULTILINE
)


# -- finding cassette files ----------------------------------------------------------------------


def find_cassettes(root: Path) -> list[Path]:
    """
    Files under ``root`` that may be cassettes (``*.yaml``, ``*.yml``, ``*.json``), sorted.
    Hidden files and folders (``.git``, ``.venv``) are skipped.
    """
    found: list[Path] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIPPED_DIRS)
        base = Path(folder)
        found.extend(
            base / name
            for name in sorted(files)
            if name.endswith(CASSETTE_SUFFIXES) and not name.startswith(".")
        )
    return found


def cassettes_under(root: Path) -> list[Path]:
    """
    The files under ``root`` that are cassettes: :func:`find_cassettes`' files whose content
    :func:`looks_like_cassette`. One that cannot be read is kept, for loading it to say why.
    """
    found: list[Path] = []
    for path in find_cassettes(root):
        try:
            raw = path.read_bytes()
        except OSError:
            found.append(path)
            continue
        if looks_like_cassette(raw, json_file=path.suffix == ".json"):
            found.append(path)
    return found


def looks_like_cassette(raw: bytes, *, json_file: bool) -> bool:
    """
    Whether a file found in a folder is worth reading as a cassette: a YAML file with a top-level
    ``interactions`` (or ``status``, a response saved on its own) key, a JSON file whose top level
    is an object naming either. Other YAML and JSON files (CI settings, a MANIFEST.json list) are
    not cassettes; a file named explicitly is always read.
    """
    if raw.lstrip()[:1] == b"{":  # JSON, or YAML in flow style
        return b"interactions" in raw or b"status" in raw
    return not json_file and _YAML_CASSETTE_KEY.search(raw) is not None


# -- conversion ----------------------------------------------------------------------------------


@dataclass
class Changes:
    """What importing changed in a cassette."""

    #: Bodies whose gzip or deflate encoding was undone.
    decompressed: int = 0
    #: Bodies stored as bytes (``!!binary``) that are now text or structured JSON.
    as_text: int = 0
    #: Values the scrubber replaced: header values, URLs and key-shaped strings in bodies.
    scrubbed: int = 0

    def add(self, other: Changes) -> None:
        self.decompressed += other.decompressed
        self.as_text += other.as_text
        self.scrubbed += other.scrubbed


def _extras(model: Any) -> dict[str, Any]:
    return dict(model.model_extra or {})


def _scrub_headers(
    headers: dict[str, list[str]], scrubber: Scrubber, changes: Changes
) -> dict[str, list[str]]:
    scrubbed = scrubber.scrub_headers(headers)
    changes.scrubbed += sum(
        old != new for name in headers for old, new in zip(headers[name], scrubbed[name], strict=True)
    )
    return scrubbed


def _convert_request(
    request: RecordedRequest, *, path: Path, index: int, scrubber: Scrubber | None, changes: Changes
) -> RecordedRequest:
    if request.method == WILDCARD_REQUEST["method"] and request.uri == WILDCARD_REQUEST["uri"]:
        return request.model_copy(deep=True)
    parsed = "parsed_body" in request.model_fields_set
    uri, headers = request.uri, dict(request.headers)
    content = message_content(request, path=path, index=index, side="request")
    if scrubber is not None:
        scrubbed_uri = scrubber.scrub_url(uri)
        changes.scrubbed += scrubbed_uri != uri
        uri = scrubbed_uri
        headers = _scrub_headers(headers, scrubber, changes)
        scrubbed, spans = scrub_body(scrubber, content, header_get(headers, "content-type"))
        changes.scrubbed += len(spans)
        headers = shift_content_length(headers, len(scrubbed) - len(content))
        content = scrubbed
    fields: dict[str, Any] = {"method": request.method, "uri": uri, "headers": headers}
    if request.body is None and not parsed and not content:
        fields["body"] = None  # vcrpy's `body: null` for a request without one stays as it was
    else:
        # A request body has no room for `line_endings` (vcrpy stores it bare), so CRs stay in it.
        stored = store_body(content, content_type=header_get(headers, "content-type"), crlf_as_lf=False)
        fields.update(parsed_fields(stored))
        if not stored.is_parsed:
            fields["body"] = stored.string
        if isinstance(request.body, bytes) and not parsed and not isinstance(stored.string, bytes):
            changes.as_text += 1
    fields.update(_extras(request))
    return RecordedRequest.model_validate(fields)


def _convert_response(
    response: RecordedResponse, *, path: Path, index: int, scrubber: Scrubber | None, changes: Changes
) -> RecordedResponse:
    content = message_content(response, path=path, index=index, side="response")
    headers = dict(response.headers)
    chunks = recorded_chunks(
        response,
        content,
        path=path,
        index=index,
        fix="Delete `stream.chunks` (replay then sends one chunk per event), then import the file again.",
    )
    parsed = "parsed_body" in response.model_fields_set
    was_bytes = not parsed and response.body is not None and isinstance(response.body.string, bytes)
    decoded = decompress(chunks if chunks is not None else [content], header_get(headers, "content-encoding"))
    if decoded is not None:
        changes.decompressed += 1
        content = b"".join(decoded)
        chunks = decoded if chunks is not None else None
        headers = {k: v for k, v in headers.items() if k.lower() != "content-encoding"}
        headers = {k: [str(len(content))] if k.lower() == "content-length" else v for k, v in headers.items()}
    lengths = [len(chunk) for chunk in chunks] if chunks is not None else None
    if scrubber is not None:
        headers = _scrub_headers(headers, scrubber, changes)
        scrubbed, spans = scrub_body(scrubber, content, header_get(headers, "content-type"))
        changes.scrubbed += len(spans)
        headers = shift_content_length(headers, len(scrubbed) - len(content))
        if lengths is not None:
            lengths = remap_chunks(lengths, spans)
        content = scrubbed
    stored = store_body(content, content_type=header_get(headers, "content-type"))
    fields: dict[str, Any] = {"status": response.status, "headers": headers}
    fields.update(parsed_fields(stored))
    if stored.frames is not None:
        fields["eventstream"] = stored.frames
    elif not stored.is_parsed:
        fields["body"] = {"string": stored.string if stored.string is not None else ""}
        if stored.line_endings:
            fields["body"]["line_endings"] = stored.line_endings
    if was_bytes and not isinstance(stored.string, bytes):
        changes.as_text += 1
    if response.elapsed_ms is not None:
        fields["elapsed_ms"] = response.elapsed_ms
    if response.stream is not None:
        fields["stream"] = response.stream.model_copy(update={"chunks": lengths})
    fields.update(_extras(response))
    return RecordedResponse.model_validate(fields)


def convert_document(
    document: CassetteDocument, *, path: Path, scrubber: Scrubber | None = None
) -> tuple[CassetteDocument, Changes]:
    """
    ``document`` in llmcassette's readable form (see the module docstring), scrubbed by
    ``scrubber`` when one is given; ``path`` names the file in errors.
    """
    changes = Changes()
    interactions = []
    for index, interaction in enumerate(document.interactions):
        request = _convert_request(
            interaction.request, path=path, index=index, scrubber=scrubber, changes=changes
        )
        response = _convert_response(
            interaction.response, path=path, index=index, scrubber=scrubber, changes=changes
        )
        interactions.append(Interaction(request=request, response=response, **_extras(interaction)))
    converted = CassetteDocument(version=document.version, interactions=interactions, **_extras(document))
    return converted, changes


# -- importing files -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportResult:
    """One imported cassette."""

    source: Path
    dest: Path
    interactions: int
    changes: Changes


@dataclass
class ImportReport:
    """What an import did: the files written, and those skipped as not cassettes."""

    results: list[ImportResult] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)


def plan_import(
    src: Path, dest: Path, *, dest_is_folder: bool = False
) -> tuple[list[tuple[Path, Path]], list[Path]]:
    """
    The ``(source, destination)`` pairs of importing ``src`` to ``dest``, and the files found in a
    source folder that are not cassettes. A file goes to ``dest``, or into it when ``dest`` is a
    folder (an existing one, or ``dest_is_folder``); a folder's cassettes go to the same places
    under ``dest``.
    """
    if not src.exists():
        raise CassetteError(f"llmcassette: {str(src)!r} does not exist; give a cassette file or a folder.")
    if not src.is_dir():
        return [(src, dest / src.name if dest_is_folder or dest.is_dir() else dest)], []
    if dest.exists() and not dest.is_dir():
        raise CassetteError(
            f"llmcassette: {str(dest)!r} is a file, but importing the folder {str(src)!r} writes a folder "
            "of cassettes; give a folder as the destination."
        )
    pairs: list[tuple[Path, Path]] = []
    skipped: list[Path] = []
    for path in find_cassettes(src):
        if looks_like_cassette(path.read_bytes(), json_file=path.suffix == ".json"):
            pairs.append((path, dest / path.relative_to(src)))
        else:
            skipped.append(path)
    if not pairs:
        raise CassetteError(
            f"llmcassette: no cassette files ({', '.join('*' + s for s in CASSETTE_SUFFIXES)}) were found "
            f"under {str(src)!r}; give the folder that holds your cassettes."
        )
    return pairs, skipped


def import_cassettes(
    src: str | Path,
    dest: str | Path,
    *,
    scrub: bool | Scrubber = True,
    force: bool = False,
    vcrpy_compatible: bool = False,
) -> ImportReport:
    """
    Import the cassette ``src``, or every cassette under the folder ``src``, to ``dest`` (see
    :func:`plan_import`; a ``dest`` string that ends in ``/`` is a folder). Nothing is written
    unless every source loads and, without ``force``, no destination exists yet. Each file is
    written atomically. ``vcrpy_compatible`` keeps every body as text that plain vcrpy replays,
    instead of ``parsed_body``.
    """
    # `out/` names a folder even before it exists; Path() would drop the slash that says so.
    dest_is_folder = isinstance(dest, str) and dest.endswith(("/", os.sep))
    pairs, skipped = plan_import(Path(src), Path(dest), dest_is_folder=dest_is_folder)
    if not force:
        existing = [target for _, target in pairs if target.exists()]
        if existing:
            more = (
                f" (and {len(existing) - 1} more of the {len(pairs)} destinations)"
                if len(existing) > 1
                else ""
            )
            raise CassetteError(
                f"llmcassette: {str(existing[0])!r} already exists{more}; overwrite it with --force "
                "(force=True in Python), or choose another destination.",
                path=existing[0],
            )
    scrubber = scrub if isinstance(scrub, Scrubber) else Scrubber() if scrub else None
    converted: list[tuple[Path, Path, CassetteDocument, Changes]] = []
    for source, target in pairs:
        document = parse_cassette(read_cassette_bytes(source), path=source)
        new, changes = convert_document(document, path=source, scrubber=scrubber)
        converted.append((source, target, new, changes))
    report = ImportReport(skipped=skipped)
    for source, target, new, changes in converted:
        save_cassette(target, new, vcrpy_compatible=vcrpy_compatible)  # or a CassetteWriteError
        report.results.append(ImportResult(source, target, len(new.interactions), changes))
    return report
