"""
llmcassette on pytest-recording's ``vcr`` tests: the suite-wide switch and the shared file.

With ``llmcassette_vcr = true`` (ini) or ``--llm-vcr``, every ``@pytest.mark.vcr`` test runs under
an llmcassette cassette on the file pytest-recording names, as if it carried the ``llm_cassette``
marker. Whenever llmcassette answers a ``vcr`` test from vcrpy's file (switched, or marked), the
two libraries share that one file:

- llmcassette answers the libraries it intercepts (httpx, httpx2, aiohttp, and requests, urllib3
  and boto3 through ``http.client``), which vcrpy skips; vcrpy keeps every other library it
  patches (httplib2, tornado), loading the same file.
- vcrpy's request and response hooks, as the suite's ``vcr_config`` builds them (``filter_headers``,
  ``filter_query_parameters``, ``ignore_hosts``, ``ignore_localhost``, ``before_record_request``,
  ``before_record_response``, ``decode_compressed_response``), are applied by llmcassette too, on
  the requests it matches and records and on the responses it replays and records.
- llmcassette owns the file: vcrpy's persister is replaced by one that never writes, and what
  vcrpy recorded is appended to the file after llmcassette wrote its own interactions, so neither
  library's recordings are lost.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ._exceptions import MissCandidate, NoMatchingInteraction
from ._filters import LiveRequest

if TYPE_CHECKING:
    from ._models import Interaction, RecordedRequest, RecordedResponse
    from ._scrub import Scrubber

# The plugin registers the switch at start-up: the cassette model, vcrpy and the recording code
# are imported when a test is switched, not before.

__all__ = ["INI", "OPTION", "SharedFile", "VcrFilter", "add_options", "routes", "share_file", "vcr_hooks"]

#: The ini setting and the command-line option that switch a whole suite.
INI = "llmcassette_vcr"
OPTION = "--llm-vcr"

_SHARED = pytest.StashKey["SharedFile"]()


def add_options(parser: pytest.Parser, group: pytest.OptionGroup) -> None:
    """Register the switch: the ini setting and the command-line option."""
    group.addoption(
        OPTION,
        action="store_true",
        default=False,
        help="Answer every @pytest.mark.vcr test with llmcassette, from the same cassette files "
        f"(as the ini setting {INI} = true).",
    )
    parser.addini(
        INI,
        type="bool",
        default=False,
        help="Answer every @pytest.mark.vcr test with llmcassette, from the same cassette files.",
    )


def _switched(config: pytest.Config) -> bool:
    return bool(config.getoption(OPTION, False) or config.getini(INI))


def routes(item: pytest.Item) -> bool:
    """Whether the switch gives this test an llmcassette cassette: a ``vcr`` test, switched on."""
    config = item.config
    return (
        item.get_closest_marker("vcr") is not None
        and _switched(config)
        and config.pluginmanager.hasplugin("recording")
        and not config.getoption("--disable-recording", False)
    )


@dataclass
class SharedFile:
    """One ``vcr`` test's file, shared by vcrpy's cassette and llmcassette's."""

    #: vcrpy's cassette, once loaded, and how many interactions it loaded from the file.
    vcr_cassette: Any = None
    loaded: int = 0
    scrubber: Scrubber | None = None

    def bind(self, vcr_cassette: Any, scrubber: Scrubber | None) -> VcrFilter:
        """Attach vcrpy's loaded cassette; the filter llmcassette's cassette applies its hooks with."""
        self.vcr_cassette = vcr_cassette
        self.loaded = len(vcr_cassette.data)
        self.scrubber = scrubber
        return VcrFilter(vcr_cassette)

    def append_vcr_recordings(self, path: str | Path) -> None:
        """Add what vcrpy recorded in this test to the file llmcassette wrote (or creates)."""
        from ._models import CassetteDocument
        from ._storage import cassette_lock, load_cassette, save_cassette

        if self.vcr_cassette is None:
            return
        recorded = [self._interaction(req, resp) for req, resp in self.vcr_cassette.data[self.loaded :]]
        self.loaded = len(self.vcr_cassette.data)
        if not recorded:
            return
        path = Path(path)
        with cassette_lock(path):
            document = load_cassette(path) if path.exists() else CassetteDocument()
            document.interactions.extend(recorded)
            save_cassette(path, document, vcrpy_compatible=True)

    def _interaction(self, request: Any, response: dict[str, Any]) -> Interaction:
        from ._models import Interaction, RecordedResponse
        from ._recording import build_request

        stored = build_request(
            method=request.method,
            url=request.uri,
            raw_headers=_raw_headers(request.headers),
            body=_body_bytes(request.body),
            scrubber=self.scrubber,
        )
        headers = {
            str(name): [values] if isinstance(values, str) else list(values)
            for name, values in response.get("headers", {}).items()
        }
        body = _body_bytes((response.get("body") or {}).get("string"))
        if self.scrubber is not None:
            headers = self.scrubber.scrub_headers(headers)
            body = self.scrubber.scrub_body(body)
        # Keys of vcrpy's own beyond these (aiohttp's `url`) are kept for vcrpy's replay.
        extras = {key: value for key, value in response.items() if key not in ("status", "headers", "body")}
        stored_response = RecordedResponse.model_validate(
            {
                **extras,
                "status": response["status"],
                "headers": headers,
                "body": {"string": _text_or_bytes(body)},
            }
        )
        return Interaction(request=stored, response=stored_response)


class _Persister:
    """vcrpy's persister for a shared file: it loads as before, and hands writing to llmcassette."""

    def __init__(self, inner: Any, shared: SharedFile) -> None:
        self._inner = inner
        self._shared = shared

    def load_cassette(self, cassette_path: Any, serializer: Any) -> Any:
        return self._inner.load_cassette(cassette_path, serializer)

    def save_cassette(self, cassette_path: Any, cassette_dict: Any, serializer: Any) -> None:
        # vcrpy saves after llmcassette did (its fixture closes last): only its own new
        # interactions are added, to the file as llmcassette left it.
        self._shared.append_vcr_recordings(cassette_path)


def share_file(item: pytest.Item, vcr: Any) -> None:
    """
    Before vcrpy loads the file of a ``vcr`` test that uses llmcassette: share the file, unless
    the ``llm_cassette`` marker gives llmcassette one of its own.
    """
    from ._exceptions import ConfigError
    from ._pytest_support import marker_options

    try:
        if marker_options(item)[0] is not None:
            return
    except ConfigError:
        pass  # the `llm_cassette` fixture reports it
    shared = SharedFile()
    item.stash[_SHARED] = shared
    vcr.register_persister(_Persister(vcr.persister, shared))


def vcr_hooks(item: pytest.Item, vcr_cassette: Any, scrub: Any) -> VcrFilter | None:
    """
    The filter that applies vcrpy's hooks to llmcassette's traffic on a test whose file is
    shared (None on any other); ``scrub`` is the cassette's option, used on vcrpy's recordings.
    """
    from ._scrub import Scrubber

    shared = item.stash.get(_SHARED, None)
    if shared is None:
        return None
    scrubber = scrub if isinstance(scrub, Scrubber) else (Scrubber() if scrub else None)
    return shared.bind(vcr_cassette, scrubber)


@functools.cache
def vcr_miss_type() -> type[NoMatchingInteraction]:
    """llmcassette's miss on a ``vcr`` test, which is also vcrpy's, so a suite's checks still hold."""
    from vcr.errors import CannotOverwriteExistingCassetteException

    class VcrMiss(NoMatchingInteraction, CannotOverwriteExistingCassetteException):  # type: ignore[misc]
        """A request the shared file cannot answer, as llmcassette and as vcrpy name it."""

        def __init__(
            self, message: str, *, method: str, url: str, candidates: Sequence[MissCandidate] = ()
        ) -> None:
            # vcrpy's own constructor wants its cassette and request objects: the message is ours.
            Exception.__init__(self, message)
            self.method = method
            self.url = url
            self.candidates = list(candidates)
            self.cassette: Any = None
            self.failed_request: Any = None
            self.reason = "no_match"
            self.similar_requests: list[Any] = []

    # Reported under the name a failing test shows for every other miss.
    VcrMiss.__module__ = NoMatchingInteraction.__module__
    VcrMiss.__name__ = VcrMiss.__qualname__ = NoMatchingInteraction.__name__
    return VcrMiss


class VcrFilter:
    """vcrpy's request and response hooks of one cassette, applied to llmcassette's messages."""

    def __init__(self, vcr_cassette: Any) -> None:
        self._cassette = vcr_cassette
        self.miss_type = vcr_miss_type()

    def _filter_request(self, method: str, url: str, headers: dict[str, list[str]], body: bytes) -> Any:
        from vcr.request import Request

        request = Request(method, url, body, {name: values[0] for name, values in headers.items() if values})
        return self._cassette.filter_request(request)

    def live_request(self, request: LiveRequest) -> LiveRequest | None:
        from ._recording import headers_to_map

        headers = headers_to_map(request.raw_headers)
        filtered = self._filter_request(request.method, request.url, headers, request.body)
        if not filtered:
            return None
        # vcrpy keeps one value per header: a header the hooks left alone keeps all its values.
        kept = {str(name).lower(): str(value) for name, value in filtered.headers.items()}
        first = {name.lower(): values[0] for name, values in reversed(headers.items())}
        raw: list[tuple[bytes, bytes]] = []
        changed: set[str] = set()
        for name, value in request.raw_headers:
            lname = name.decode("latin-1").lower()
            if lname not in kept:
                continue  # the hooks removed it
            if kept[lname] == first[lname]:
                raw.append((name, value))
            elif lname not in changed:
                changed.add(lname)
                raw.append((name, kept[lname].encode("latin-1")))
        raw += [(n.encode("latin-1"), v.encode("latin-1")) for n, v in kept.items() if n not in first]
        return LiveRequest(filtered.method, filtered.uri, raw, _body_bytes(filtered.body))

    def stored_request(self, request: RecordedRequest) -> RecordedRequest | None:
        from ._models import RecordedRequest

        content = request.content
        filtered = self._filter_request(request.method, request.uri, request.headers, content)
        if not filtered:
            return None
        body = _body_bytes(filtered.body)
        if (filtered.method, filtered.uri, body) == (request.method, request.uri, content):
            return request
        return RecordedRequest.model_validate(
            {"method": filtered.method, "uri": filtered.uri, "headers": request.headers, "body": body}
        )

    def response(self, response: RecordedResponse) -> RecordedResponse | None:
        from ._models import RecordedResponse

        if response.status is None:
            return response  # an upstream that hung up: vcrpy has no form for it
        # Called with vcrpy's form of the response (`body.string` as bytes), as vcrpy calls it.
        content = response.content
        data = {
            "status": {"code": response.status.code, "message": response.status.message},
            "headers": {name: list(values) for name, values in response.headers.items()},
            "body": {"string": content},
        }
        before = copy.deepcopy(data)  # hooks usually change the dict they are given, in place
        # vcrpy keeps the response hooks it built from `vcr_config` on the cassette, with no public
        # name (vcrpy 9.4 to 9.x, the versions llmcassette allows); the request hooks have one.
        filtered = self._cassette._before_record_response(data)
        if filtered is None:
            return None
        body = _body_bytes((filtered.get("body") or {}).get("string"))
        status = filtered.get("status", before["status"])
        headers = filtered.get("headers", before["headers"])
        if body == content and status == before["status"] and headers == before["headers"]:
            return response
        fields: dict[str, Any] = {
            "status": status,
            "headers": headers,
            "body": {"string": _text_or_bytes(body)},
        }
        if body == content:
            # Same bytes: the recorded chunk boundaries and timing still describe them.
            fields["stream"] = response.stream
            fields["elapsed_ms"] = response.elapsed_ms
        return RecordedResponse.model_validate(fields)


def _raw_headers(headers: Any) -> list[tuple[bytes, bytes]]:
    return [(str(name).encode("latin-1"), str(value).encode("latin-1")) for name, value in headers.items()]


def _body_bytes(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, bytes | bytearray):
        return bytes(body)
    if hasattr(body, "read"):
        return bytes(body.read())
    return b"".join(body)


def _text_or_bytes(body: bytes) -> str | bytes:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body
