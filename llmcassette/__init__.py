"""
llmcassette: record/replay for LLM provider clients.

Real traffic through httpx and httpx2 (JSON and streamed SSE/NDJSON) is recorded into readable
YAML cassettes, chunk boundaries and timing included, and replayed offline::

    import llmcassette

    with llmcassette.use_cassette("cassettes/chat.yaml", record_mode="once") as cassette:
        ...  # any code that talks to OpenAI, Anthropic, Gemini, Ollama, a gateway
"""

from __future__ import annotations

import importlib
import typing

from .__version__ import __version__

if typing.TYPE_CHECKING:
    from . import faults, providers
    from ._api import CassetteContext, use_cassette
    from ._attempts import Attempt
    from ._cassette import Cassette
    from ._clock import VirtualClock
    from ._exceptions import (
        CassetteError,
        CassetteFormatError,
        CassetteNotFound,
        CassetteReadError,
        CassetteWriteError,
        ConfigError,
        LlmCassetteError,
        NoMatchingInteraction,
    )
    from ._framing import Framing
    from ._matching import DEFAULT_IGNORED_BODY_FIELDS, DEFAULT_MATCH_ON
    from ._models import (
        CassetteDocument,
        Interaction,
        RecordedRequest,
        RecordedResponse,
        StreamEnd,
        StreamRecord,
    )
    from ._modes import RecordMode
    from ._scrub import Scrubber
    from ._storage import load_cassette, save_cassette

__all__ = [
    "__version__",
    "Attempt",
    "Cassette",
    "CassetteContext",
    "CassetteDocument",
    "CassetteError",
    "CassetteFormatError",
    "CassetteNotFound",
    "CassetteReadError",
    "CassetteWriteError",
    "ConfigError",
    "DEFAULT_IGNORED_BODY_FIELDS",
    "DEFAULT_MATCH_ON",
    "faults",
    "Framing",
    "Interaction",
    "LlmCassetteError",
    "load_cassette",
    "NoMatchingInteraction",
    "providers",
    "RecordedRequest",
    "RecordedResponse",
    "RecordMode",
    "save_cassette",
    "Scrubber",
    "StreamEnd",
    "StreamRecord",
    "use_cassette",
    "VirtualClock",
]

# Where each public name lives. They are imported on first use, not with the package: the pytest
# plugin and the command line import `llmcassette` at every start, and most of those starts use
# none of pydantic, httpx or the fault models.
_SOURCES = {
    "faults": ".faults",
    "providers": ".providers",
    "CassetteContext": "._api",
    "use_cassette": "._api",
    "Attempt": "._attempts",
    "Cassette": "._cassette",
    "VirtualClock": "._clock",
    "CassetteError": "._exceptions",
    "CassetteFormatError": "._exceptions",
    "CassetteNotFound": "._exceptions",
    "CassetteReadError": "._exceptions",
    "CassetteWriteError": "._exceptions",
    "ConfigError": "._exceptions",
    "LlmCassetteError": "._exceptions",
    "NoMatchingInteraction": "._exceptions",
    "Framing": "._framing",
    "DEFAULT_IGNORED_BODY_FIELDS": "._matching",
    "DEFAULT_MATCH_ON": "._matching",
    "CassetteDocument": "._models",
    "Interaction": "._models",
    "RecordedRequest": "._models",
    "RecordedResponse": "._models",
    "StreamEnd": "._models",
    "StreamRecord": "._models",
    "RecordMode": "._modes",
    "Scrubber": "._scrub",
    "load_cassette": "._storage",
    "save_cassette": "._storage",
}


def __getattr__(name: str) -> typing.Any:
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(source, __name__)
    value = module if source == f".{name}" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
