"""
llmcassette: record/replay for LLM provider clients.

Real traffic through httpx and httpx2 (JSON and streamed SSE/NDJSON) is recorded into readable
YAML cassettes, chunk boundaries and timing included, and replayed offline::

    import llmcassette

    with llmcassette.use_cassette("cassettes/chat.yaml", record_mode="once") as cassette:
        ...  # any code that talks to OpenAI, Anthropic, Gemini, Ollama, a gateway
"""

from . import faults, providers
from .__version__ import __version__
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
