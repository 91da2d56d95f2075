"""
The in-process doors of HTTP libraries other than httpx and httpx2 (whose transports are patched
in :mod:`llmcassette._intercept`), one module per library. Each only translates its library's
request, chunks and exceptions to and from the engine (:class:`llmcassette._cassette.Cassette`):
matching, faults, scrubbing, the attempt log and the cassette format never know which library
carried a request.
"""

#: Each door by the module that defines the classes it patches: (module, door module in this
#: package). A door is opened only when its module is imported, before the cassette or under it
#: (:mod:`llmcassette._intercept`), so entering a cassette never imports a library itself.
DOORS: tuple[tuple[str, str], ...] = (
    ("http.client", "http_client"),
    ("urllib3.connection", "http_client"),
    ("urllib3.connectionpool", "urllib3_pool"),
    ("botocore.httpsession", "botocore_session"),
    ("requests.adapters", "requests_adapter"),
    ("urllib.request", "urllib_request"),
    ("aiohttp.connector", "aiohttp"),
    ("websockets.asyncio.client", "websockets"),
    ("websockets.sync.client", "websockets"),
)
